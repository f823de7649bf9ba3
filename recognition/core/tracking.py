"""Faces over time: shot cuts, tracks built from keyframe detections, sample choice, naming.

Django-free and I/O-free: the functions here take boxes, small images and embeddings and
return values, so each rule can be tested on its own. `analysis.py` drives them over a video.

Boxes are (left, top, right, bottom) ints in pixels of the displayed frame, as in faces.py.
Frames are indices from 0 over all decoded frames. A track's frames are the half-open range
[first_frame, end): boxes are interpolated between the keyframes where the face was detected
and held after the last one for at most one keyframe gap, never past a cut.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment

Box = tuple[int, int, int, int]

__all__ = [
    "Box",
    "CutDetector",
    "Detection",
    "Sample",
    "Track",
    "Tracker",
    "Vote",
    "centre_distance",
    "detections_of",
    "iou",
    "keep_best_samples",
    "name_tracks",
    "overlapping_groups",
    "resolve_clashes",
    "sample_quality",
    "suppress",
    "vote",
]


# --------------------------------------------------------------------------- geometry


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes (0 when they do not touch)."""
    ix = min(a[2], b[2]) - max(a[0], b[0])
    iy = min(a[3], b[3]) - max(a[1], b[1])
    if ix <= 0 or iy <= 0:
        return 0.0
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def centre_distance(a: Box, b: Box) -> float:
    """Distance between box centres in units of their mean side (scale-free)."""
    side = ((a[2] - a[0]) + (a[3] - a[1]) + (b[2] - b[0]) + (b[3] - b[1])) / 4
    dx = (a[0] + a[2] - b[0] - b[2]) / 2
    dy = (a[1] + a[3] - b[1] - b[3]) / 2
    return math.hypot(dx, dy) / max(side, 1.0)


def _side(box: Box) -> float:
    return ((box[2] - box[0]) + (box[3] - box[1])) / 2


def suppress(
    found: Sequence[tuple[Box, float]], *, max_iou: float = 0.3
) -> list[tuple[Box, float]]:
    """Keep the strongest of overlapping detections: (box, score) pairs, strongest first."""
    kept: list[tuple[Box, float]] = []
    for box, score in sorted(found, key=lambda d: -d[1]):
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        # The same face found at two scales overlaps less than two faces side by side do, but
        # its centre always falls inside the other box.
        if any(
            iou(box, k) > max_iou or (k[0] <= cx <= k[2] and k[1] <= cy <= k[3]) for k, _ in kept
        ):
            continue
        kept.append((box, score))
    return kept


# --------------------------------------------------------------------------- shot cuts


class CutDetector:
    """Finds hard cuts from consecutive frames, on a tiny copy of each frame (about 0.1 ms).

    Two cues must agree: the hue-saturation histogram changes (a new scene, new light) and
    the picture itself changes (mean absolute difference of a 32x18 grey thumbnail). Either
    alone fires on things that are not cuts: a flash changes the histogram of a still
    picture, a fast pan changes pixels but keeps the colours.
    """

    def __init__(self, *, hist_threshold: float = 0.3, diff_threshold: float = 5.0) -> None:
        self.hist_threshold = hist_threshold
        self.diff_threshold = diff_threshold
        self._previous: tuple[np.ndarray, np.ndarray] | None = None

    @staticmethod
    def signature(frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(HS histogram, grey thumbnail) of an RGB frame."""
        # Nearest-neighbour sampling is 20x cheaper than area averaging on a full frame and
        # 128x72 samples are plenty for a colour histogram.
        small = cv2.resize(frame, (128, 72), interpolation=cv2.INTER_NEAREST)
        hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)
        hist = cv2.calcHist([hsv], [0, 1], None, [16, 8], [0, 180, 0, 256])
        cv2.normalize(hist, hist)
        grey = cv2.resize(
            cv2.cvtColor(small, cv2.COLOR_RGB2GRAY), (32, 18), interpolation=cv2.INTER_AREA
        )
        return hist, grey.astype(np.float32)

    def distance(
        self, a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]
    ) -> tuple[float, float]:
        """(histogram distance 0..1, mean absolute grey difference 0..255) between signatures."""
        hist = float(cv2.compareHist(a[0], b[0], cv2.HISTCMP_BHATTACHARYYA))
        return hist, float(np.abs(a[1] - b[1]).mean())

    def is_cut(self, a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> bool:
        """Whether b starts a new shot after a."""
        hist, diff = self.distance(a, b)
        return hist > self.hist_threshold and diff > self.diff_threshold

    def push(self, frame: np.ndarray) -> bool:
        """Feed the next frame; True when it starts a new shot (never for the first frame)."""
        current = self.signature(frame)
        previous, self._previous = self._previous, current
        return previous is not None and self.is_cut(previous, current)

    @property
    def last(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Signature of the last frame pushed."""
        return self._previous


# --------------------------------------------------------------------------- tracks


@dataclass(slots=True, eq=False)
class Sample:
    """A candidate picture of a track's face: where it was, how good, its chip and embedding."""

    frame: int
    box: Box
    quality: float
    chip: np.ndarray | None = None  # aligned 150 px chip, dropped once embedded
    embedding: np.ndarray | None = None


@dataclass(frozen=True, slots=True)
class Vote:
    """A track's naming evidence: the members it may be named, best first, and the runner-up."""

    choices: tuple[tuple[str, float], ...]  # members that pass the classifier's gates
    candidate: str | None  # most likely member, named or not
    score: float  # the candidate's fused score


@dataclass(eq=False)
class Track:
    """One face followed through one shot."""

    id: int
    keyframes: list[tuple[int, Box]] = field(default_factory=list)  # where it was detected
    end: int | None = None  # exclusive last frame; None while the track is open
    samples: list[Sample] = field(default_factory=list)
    label: str | None = None  # member slug, or None for unknown
    confidence: float = 0.0
    candidate: str | None = None  # most likely member even when unknown (for review pages)
    choices: tuple[tuple[str, float], ...] = ()  # names the track may take, best first
    embedding: np.ndarray | None = None  # mean of the sample embeddings
    thumbnail: np.ndarray | None = None  # chip of the best sample
    best_score: float = -math.inf  # highest detector score among its detections
    misses: int = 0  # consecutive searches that did not find it
    first_miss: int | None = None

    @property
    def first_frame(self) -> int:
        return self.keyframes[0][0]

    @property
    def last_keyframe(self) -> int:
        return self.keyframes[-1][0]

    @property
    def last_frame(self) -> int:
        """Last frame with a box (inclusive)."""
        return (self.end if self.end is not None else self.last_keyframe + 1) - 1

    @property
    def hits(self) -> int:
        return len(self.keyframes)

    def add(self, frame: int, box: Box) -> None:
        """Record a detection at a keyframe (keyframes stay in frame order)."""
        if self.keyframes and frame <= self.keyframes[-1][0]:
            index = bisect.bisect_left([f for f, _ in self.keyframes], frame)
            if index < len(self.keyframes) and self.keyframes[index][0] == frame:
                self.keyframes[index] = (frame, box)
            else:
                self.keyframes.insert(index, (frame, box))
            return
        self.keyframes.append((frame, box))

    def box_at(self, frame: int) -> Box | None:
        """The box at a frame: detected, interpolated between detections, or held; else None."""
        if not self.keyframes or frame < self.first_frame or frame > self.last_frame:
            return None
        frames = [f for f, _ in self.keyframes]
        index = bisect.bisect_right(frames, frame) - 1
        f0, b0 = self.keyframes[index]
        if frame == f0 or index + 1 == len(self.keyframes):
            return b0
        f1, b1 = self.keyframes[index + 1]
        a = (frame - f0) / (f1 - f0)
        return tuple(int(round(p + a * (q - p))) for p, q in zip(b0, b1, strict=True))  # type: ignore[return-value]

    def boxes(self) -> Iterator[tuple[int, Box]]:
        """(frame, box) for every frame of the track, in order."""
        keys = self.keyframes
        for (f0, b0), (f1, b1) in zip(keys, keys[1:], strict=False):
            for frame in range(f0, f1):
                a = (frame - f0) / (f1 - f0)
                yield frame, tuple(int(round(p + a * (q - p))) for p, q in zip(b0, b1, strict=True))  # type: ignore[misc]
        last, box = keys[-1]
        for frame in range(last, self.last_frame + 1):
            yield frame, box

    def predict(self, frame: int) -> Box:
        """Where the face should be at a later frame: its recent motion, its recent size."""
        recent = self.keyframes[-3:]
        f1, b1 = recent[-1]
        # Detector boxes jitter in size by 10-20% from one keyframe to the next; the median of
        # the last three is steadier than extrapolating the jitter.
        side = float(np.median([_side(b) for _, b in recent]))
        cx, cy = (b1[0] + b1[2]) / 2, (b1[1] + b1[3]) / 2
        if len(recent) > 1 and frame > f1:
            f0, b0 = recent[0]
            # Moving on for at most as long as the motion was seen, not into the blue.
            dt = min(frame - f1, f1 - f0)
            cx += dt * ((b1[0] + b1[2]) - (b0[0] + b0[2])) / 2 / (f1 - f0)
            cy += dt * ((b1[1] + b1[3]) - (b0[1] + b0[3])) / 2 / (f1 - f0)
        half = side / 2
        return (
            int(round(cx - half)),
            int(round(cy - half)),
            int(round(cx + half)),
            int(round(cy + half)),
        )

    def overlaps(self, other: Track) -> bool:
        """Whether the two tracks share a frame."""
        return self.first_frame <= other.last_frame and other.first_frame <= self.last_frame


@dataclass(frozen=True, slots=True)
class Detection:
    """One face box on one frame, belonging to a track."""

    frame: int
    box: Box
    track: int


def detections_of(tracks: Iterable[Track]) -> list[Detection]:
    """Every per-frame box of the tracks, ordered by frame then track id."""
    found = [Detection(frame, box, t.id) for t in tracks for frame, box in t.boxes()]
    found.sort(key=lambda d: (d.frame, d.track))
    return found


class Tracker:
    """Links keyframe detections into tracks by overlap, with a constant-velocity guess.

    The caller says at each keyframe which boxes were found, which open tracks were looked
    for (a track not looked for cannot be missed), and whether unmatched boxes may start new
    tracks. A track that is looked for and missed `max_misses` times running is closed half
    way between its last detection and its first miss (`max_hidden_misses` while its guessed
    box overlaps another face found there, which may be hiding it); a cut closes every open
    track. Boxes between two detections of a track are interpolated, so a face that comes
    out from behind another keeps its track and its frames in between.
    A closed track is kept only with `min_hits` detections, one of them scoring at least
    `min_score`: detectors run with a low threshold to follow turned and half-hidden faces,
    and a track must show a clear face once to count.
    """

    def __init__(
        self,
        *,
        keyframe_interval: int,
        first_id: int = 1,
        min_iou: float = 0.2,
        max_shift: float = 0.7,
        max_misses: int = 3,
        max_hidden_misses: int = 15,
        min_hits: int = 2,
        min_score: float = -math.inf,
    ) -> None:
        self.keyframe_interval = keyframe_interval
        self.next_id = first_id
        self.min_iou = min_iou
        # A face moving fast between keyframes may not overlap its guess; a centre within
        # max_shift sides and a similar size still link it.
        self.max_shift = max_shift
        self.max_misses = max_misses
        self.max_hidden_misses = max(max_misses, max_hidden_misses)
        self.min_hits = min_hits
        self.min_score = min_score
        self.open: list[Track] = []
        self.closed: list[Track] = []  # closed since the last take_closed()

    def update(
        self,
        frame: int,
        boxes: Sequence[Box],
        scores: Sequence[float] | None = None,
        *,
        searched: Iterable[Track] | None = None,
        may_start: Sequence[bool] | bool = True,
    ) -> list[Track | None]:
        """Match a keyframe's boxes to open tracks; returns the track of each box (or None)."""
        searched_ids = {t.id for t in (self.open if searched is None else searched)}
        starts = [may_start] * len(boxes) if isinstance(may_start, bool) else list(may_start)
        scores = [0.0] * len(boxes) if scores is None else list(scores)
        owners: list[Track | None] = [None] * len(boxes)
        if self.open and boxes:
            guesses = [t.predict(frame) for t in self.open]
            cost = np.array([[self._cost(g, b) for b in boxes] for g in guesses])
            rows, cols = linear_sum_assignment(cost)
            for r, c in zip(rows, cols, strict=True):
                if cost[r, c] < 1.0:
                    owners[c] = self.open[r]
        matched = {id(t) for t in owners if t is not None}
        for track, box, score in zip(owners, boxes, scores, strict=True):
            if track is not None:
                track.add(frame, box)
                track.best_score = max(track.best_score, score)
                track.misses, track.first_miss = 0, None
        found_here = [box for track, box in zip(owners, boxes, strict=True) if track is not None]
        for track in list(self.open):
            if id(track) in matched or track.id not in searched_ids:
                continue
            track.misses += 1
            if track.first_miss is None:
                track.first_miss = frame
            guess = track.predict(frame)
            # Behind another face that is still there: it may well come out again.
            hidden = any(iou(guess, box) > 0.1 for box in found_here)
            if track.misses >= (self.max_hidden_misses if hidden else self.max_misses):
                # It left somewhere between the last detection and the first miss.
                last = track.last_keyframe
                self._close(track, last + max(1, (track.first_miss - last + 1) // 2))
        for j, box in enumerate(boxes):
            if owners[j] is None and starts[j]:
                track = Track(id=self.next_id, keyframes=[(frame, box)], best_score=scores[j])
                self.next_id += 1
                self.open.append(track)
                owners[j] = track
        return owners

    def _cost(self, guess: Box, box: Box) -> float:
        overlap = iou(guess, box)
        if overlap >= self.min_iou:
            return 1.0 - overlap
        ratio = _side(box) / max(_side(guess), 1.0)
        shift = centre_distance(guess, box)
        if shift <= self.max_shift and 0.67 <= ratio <= 1.5:
            # Worse than any overlapping pair, better than no match.
            return 0.9 + 0.09 * shift / self.max_shift
        return 1.0

    def cut(self, frame: int) -> None:
        """A new shot starts at frame: every open track ends before it."""
        for track in list(self.open):
            self._close(track, frame)

    def finish(self, end: int) -> None:
        """The analysed range ends at end (exclusive): close what is open there."""
        for track in list(self.open):
            self._close(track, end, at_edge=True)

    def _close(self, track: Track, end: int, *, at_edge: bool = False) -> None:
        # Held at most one keyframe gap past the last detection, and never past `end`.
        track.end = min(end, track.last_keyframe + self.keyframe_interval)
        self.open.remove(track)
        # One detection is more often a false alarm than a face; at the edge of a segment it
        # may be the start of a track the next segment continues, so it stays.
        if (track.hits >= self.min_hits or at_edge) and track.best_score >= self.min_score:
            self.closed.append(track)

    def take_closed(self) -> list[Track]:
        """Tracks closed since the last call."""
        closed, self.closed = self.closed, []
        return closed


# --------------------------------------------------------------------------- samples


def sample_quality(chip: np.ndarray, marks: np.ndarray, side: float) -> float:
    """How good a face picture is for naming: larger, sharper and more frontal is better.

    chip is the aligned 150 px chip, marks the 5 dlib landmarks (eye corners, nose) in frame
    pixels, side the face box side in full-frame pixels.
    """
    grey = cv2.cvtColor(chip, cv2.COLOR_RGB2GRAY)
    # On the aligned chip a small or blurred face has been stretched, so its fine detail
    # (Laplacian variance) is low whatever its original size.
    inner = grey[30:-30, 30:-30]
    sharpness = float(cv2.Laplacian(inner, cv2.CV_32F).var())
    marks = np.asarray(marks, dtype=np.float64)
    eye_a, eye_b, nose = marks[0:2].mean(axis=0), marks[2:4].mean(axis=0), marks[4]
    da, db = np.linalg.norm(nose - eye_a), np.linalg.norm(nose - eye_b)
    # A turned head brings the nose towards one eye: 0 frontal, 1 full profile.
    turn = abs(da - db) / max(da + db, 1e-6)
    frontal = max(0.0, 1.0 - 2.5 * turn)
    # Past the chip's 150 px, size adds nothing: the chip is shrunk to the same picture.
    size = min(side, 150.0) / 150.0
    return float(size * frontal * math.log1p(sharpness))


def keep_best_samples(samples: list[Sample], new: Sample, *, keep: int, min_gap: int = 1) -> bool:
    """Add new to samples if it ranks among the best `keep` (in place); True when kept.

    Samples closer than min_gap frames to a better one are dropped, so the samples spread over
    the track instead of being near copies of one moment.
    """
    close = [s for s in samples if abs(s.frame - new.frame) < min_gap]
    if any(s.quality >= new.quality for s in close):
        return False
    for s in close:
        samples.remove(s)
    samples.append(new)
    samples.sort(key=lambda s: -s.quality)
    del samples[keep:]
    return any(s is new for s in samples)


# --------------------------------------------------------------------------- naming


def vote(classifier, embeddings: np.ndarray) -> Vote:
    """Fuse the per-sample scores of a track into the names it may take, best first.

    Scores are averaged over the samples (one blurred sample cannot veto the rest) and each
    member's distance is the median over samples; a member is a choice only if it passes the
    classifier's own gates with these fused values, so the first choice is the member
    classifier.predict_track() names.
    """
    X = np.asarray(embeddings, dtype=np.float64)
    S = classifier.scores(X)
    D = classifier.distances(X)
    fused, distance = S.mean(axis=0), np.median(D, axis=0)
    t = classifier.thresholds
    allowed = distance <= t.max_distance
    if classifier.mode == "svm":
        allowed &= fused >= t.min_probability
        order = np.argsort(-fused, kind="stable")
    else:
        order = np.argsort(distance, kind="stable")
    members = classifier.members
    choices = tuple((members[m], float(fused[m])) for m in order if allowed[m])
    best = int(order[0])
    return Vote(choices=choices, candidate=members[best], score=float(fused[best]))


def overlapping_groups(tracks: Iterable[Track]) -> list[list[Track]]:
    """Tracks grouped so that no track shares a frame with a track of another group."""
    groups: list[list[Track]] = []
    reach = -1  # last frame of the group being built
    for track in sorted(tracks, key=lambda t: (t.first_frame, t.id)):
        if groups and track.first_frame <= reach:
            groups[-1].append(track)
            reach = max(reach, track.last_frame)
        else:
            groups.append([track])
            reach = track.last_frame
    return groups


def resolve_clashes(tracks: Sequence[Track]) -> None:
    """Name tracks from their choices so a member is named at most once per frame (in place).

    All (track, member) pairs are taken strongest first: a track gets a member unless it is
    named already or a track it shares frames with holds that member. The weaker of two
    clashing tracks so falls back to its next choice, or to unknown.
    """
    pairs = sorted(
        ((score, rank, track.id, track, member) for track in tracks
         for rank, (member, score) in enumerate(track.choices)),
        key=lambda p: (-p[0], p[1], p[2]),
    )  # fmt: skip
    holders: dict[str, list[Track]] = {}
    named: set[int] = set()
    for score, _rank, _id, track, member in pairs:
        if id(track) in named:
            continue
        if any(other.overlaps(track) for other in holders.get(member, ())):
            continue
        holders.setdefault(member, []).append(track)
        named.add(id(track))
        track.label, track.confidence = member, score
    for track in tracks:
        if id(track) not in named:
            track.label = None
            # Unknown: the confidence says how sure the runner-up was, for review pages.
            track.confidence = track.choices[0][1] if track.choices else track.confidence


def name_tracks(tracks: Sequence[Track], classifier) -> None:
    """Name tracks from their sample embeddings with a classifier, then resolve clashes."""
    for track in tracks:
        vectors = [s.embedding for s in track.samples if s.embedding is not None]
        if not vectors:
            track.choices, track.candidate, track.confidence = (), None, 0.0
            continue
        result = vote(classifier, np.stack(vectors))
        track.choices, track.candidate, track.confidence = (
            result.choices,
            result.candidate,
            result.score,
        )
    for group in overlapping_groups(tracks):
        resolve_clashes(group)
