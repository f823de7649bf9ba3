"""The faces a track is named by: its best chips, embedded, and where a track that jumped
from one person's face to another's is split in two."""

from __future__ import annotations

import cv2
import numpy as np

from core.tracking.tracks import Settings, Track


def sample_quality(chip: np.ndarray, keypoints: np.ndarray, side: int) -> float:
    """Larger, sharper, more frontal faces make better samples."""
    grey = cv2.cvtColor(chip, cv2.COLOR_RGB2GRAY)
    sharpness = float(cv2.Laplacian(grey, cv2.CV_32F).var())
    # SCRFD's keypoints: eyes, nose, mouth corners; a turned head puts the nose off the eyes'
    # middle.
    eyes = keypoints[:2].mean(axis=0)
    spread = max(float(np.linalg.norm(keypoints[0] - keypoints[1])), 1.0)
    yaw = abs(float(keypoints[2][0] - eyes[0])) / spread
    return min(side, 200) * (1.0 - min(yaw, 0.9)) * np.log1p(sharpness)


def strip(chips: list[np.ndarray], slots: int) -> np.ndarray:
    """The best chips side by side, best first, grey where a track has fewer: a review strip."""
    side = chips[0].shape[0] if chips else 112
    out = np.full((side, side * slots, 3), 235, dtype=np.uint8)
    for k, chip in enumerate(chips[:slots]):
        out[:, k * side : (k + 1) * side] = chip
    return out


class _Chips:
    """A track's candidate chips (in frame order), embedded on demand, each once."""

    def __init__(self, candidates: list, embedder) -> None:
        self.candidates, self.embedder = candidates, embedder
        self.cache: dict[int, np.ndarray] = {}

    def embed(self, positions) -> None:
        todo = [k for k in positions if k not in self.cache]
        if todo:
            vectors = self.embedder.embed_chips(np.stack([self.candidates[k][3] for k in todo]))
            self.cache.update(zip(todo, vectors, strict=True))

    def distance(self, a: int, b: int) -> float:
        self.embed([a, b])
        return float(np.linalg.norm(self.cache[a] - self.cache[b]))

    def best(self, positions) -> list[int]:
        return sorted(positions, key=lambda k: -self.candidates[k][0])

    def embedded(self, lo: int, hi: int) -> list[int]:
        return [k for k in self.cache if lo <= k < hi]

    def whole(self, positions) -> list[int]:
        return [k for k in positions if self.candidates[k][4]]


def identify(track: Track, embedder, cfg: Settings, first_id: int) -> list[Track]:
    """Embed a track's samples; split it where it jumped from one person's face to another's.

    Samples are the best chip of each of `samples_per_track` stretches of the track, so they
    span it. Where two neighbouring samples are further apart than `identity_distance` (two
    faces crossed and the track followed the wrong one), the chips between them are bisected,
    one embedding per step, down to the two detections the jump lies between. Parts keep
    their own samples (topped up with their best chips) and are named on their own later.
    """
    chips = _Chips(track.candidates, embedder)
    keyframes = track.keyframes  # part 0 is the track itself, and gets a list of its own
    cuts = _person_changes(chips, cfg, cfg.identity_distance or embedder.same_person_distance)
    edges = [0, *cuts, len(chips.candidates)]
    parts = []
    for number, (lo, hi) in enumerate(zip(edges, edges[1:], strict=False)):
        part = track if number == 0 else Track(id=first_id + number - 1)
        part.quick_hits = track.quick_hits
        first = chips.candidates[lo][1]
        after = chips.candidates[hi][1] if hi < len(chips.candidates) else None
        part.keyframes = [
            (f, b)
            for f, b in keyframes
            if f >= (first if number else 0) and (after is None or f < after)
        ]
        part.stop = after
        if cuts:
            part.detections = hi - lo
        _choose_samples(part, chips, lo, hi, cfg)
        parts.append(part)
    for part in parts:
        part.candidates = []
        if len(parts) > 1:
            part.kin = track.id
    return parts


def _person_changes(chips: _Chips, cfg: Settings, apart_limit: float) -> list[int]:
    """Positions among the chips where another person's face starts."""
    n = len(chips.candidates)
    stretches = np.array_split(np.arange(n), min(cfg.samples_per_track, n))
    probes = [int(chips.best(stretch)[0]) for stretch in stretches]  # ints, as JSON needs
    chips.embed(probes)
    cuts: list[int] = []
    for a, b in zip(probes, probes[1:], strict=False):
        if chips.distance(a, b) <= apart_limit:
            continue
        low, high = a, b
        while high - low > 1:
            middle = (low + high) // 2
            if chips.distance(middle, low) <= chips.distance(middle, high):
                low = middle
            else:
                high = middle
        # Two people only if the faces on either side agree among themselves: one odd chip
        # (a turned head, a blur) is not another person, nor is a part of one detection.
        previous = cuts[-1] if cuts else 0
        before = [chips.cache[k] for k in chips.embedded(previous, high)]
        after = [chips.cache[k] for k in chips.embedded(high, b + 1)]
        if (
            group_distance(before, after) > apart_limit
            and high - previous >= cfg.min_track_detections
            and n - high >= cfg.min_track_detections
        ):
            cuts.append(high)
    return cuts


def _choose_samples(part: Track, chips: _Chips, lo: int, hi: int, cfg: Settings) -> None:
    """The part's samples: its best chips, and the ones embedded already (spread over it)."""
    known = chips.embedded(lo, hi)
    chosen = known + [
        k for k in chips.best(range(lo, hi))[: cfg.samples_per_track] if k not in known
    ]
    # A face cut off by the frame edge, or overlapped by another, embeds as nobody in
    # particular (and mixes two people on the strip): left out where the
    # part has two whole faces to go on.
    whole = chips.whole(chosen)
    whole_in_part = chips.whole(range(lo, hi))
    if len(whole) >= 2:
        chosen = whole
    elif len(whole_in_part) >= 2:
        chosen = chips.best(whole_in_part)[: cfg.samples_per_track]
    chips.embed(chosen)
    chosen = chips.best(chosen)
    part.samples = np.stack([chips.cache[k] for k in chosen])
    part.sample_boxes = [(chips.candidates[k][1], chips.candidates[k][2]) for k in chosen]
    part.thumbnail = strip([chips.candidates[k][3] for k in chosen], cfg.samples_per_track)


def group_distance(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    """Distance between the mean directions of two groups of embeddings. Means of unit
    vectors are shorter than one, and closer together than any of their members; scaled back
    to the members' length they compare on the same scale as two samples do."""
    mean_a, mean_b = np.mean(a, axis=0), np.mean(b, axis=0)
    length = float(np.mean([np.linalg.norm(v) for v in (*a, *b)]))
    unit_a = mean_a / max(float(np.linalg.norm(mean_a)), 1e-12)
    unit_b = mean_b / max(float(np.linalg.norm(mean_b)), 1e-12)
    return length * float(np.linalg.norm(unit_a - unit_b))
