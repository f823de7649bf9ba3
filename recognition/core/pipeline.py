"""Video analysis: find faces on keyframes, link them into tracks, embed the best samples.

Django-free. `analyze` reads a video (or a frame range of it, for segments run as separate jobs)
and returns unnamed tracks with per-frame boxes and sample embeddings; `name_tracks` names them
with a classifier, so stored tracks can be named again by a new model without decoding anything.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import dlib
import numpy as np
from scipy.optimize import linear_sum_assignment

from recognition.core import faces, media

Box = tuple[int, int, int, int]


@dataclass
class Settings:
    """Knobs of the analysis; the defaults were measured on the dev stage videos."""

    analysis_width: int = 640  # detection runs on frames scaled to this width (never upscaled)
    keyframe_interval: int = 8  # frames between quick detection passes
    deep_interval: int = 90  # frames between thorough passes (upsampled, lower threshold)
    quick_threshold: float = -0.3  # HOG score cut-off, quick pass
    # Low: weak detections are dropped when their centre lies in a stronger box, and one-offs
    # never become tracks. Catches faces pressed against another face (dev video: Keanu, -0.81).
    deep_threshold: float = -0.9
    misses_allowed: int = 1  # quick passes a track may miss before it is closed
    # Between detections a correlation tracker follows each face; below this peak-to-sidelobe
    # ratio its answer is not trusted.
    min_tracker_psr: float = 7.0
    match_iou: float = 0.25  # a detection continues a track above this overlap
    # Bhattacharyya distance of hue-saturation histograms between frames: on the dev videos,
    # cuts score 0.75-0.96 and frames within a shot under 0.05.
    cut_threshold: float = 0.35
    samples_per_track: int = 5
    min_track_detections: int = 2  # one lone detection is more likely noise than a face


@dataclass
class Track:
    id: int
    keyframes: list[tuple[int, Box]] = field(default_factory=list)  # detections, full-size boxes
    quick_hits: int = 0
    misses: int = 0
    follower: object | None = None  # dlib.correlation_tracker on analysis frames
    last_box: Box | None = None  # latest known box, detected or followed (full size)
    last_deep: int = -1
    boxes: dict[int, Box] = field(default_factory=dict)  # every frame, after interpolation
    candidates: list[tuple[float, int, Box, np.ndarray]] = field(default_factory=list)
    samples: np.ndarray | None = None  # (n, 128) embeddings of the best chips
    sample_boxes: list[tuple[int, Box]] = field(default_factory=list)
    thumbnail: np.ndarray | None = None
    label: str | None = None
    candidate: str | None = None
    confidence: float = 0.0
    open: bool = True

    @property
    def first_frame(self) -> int:
        return min(self.boxes) if self.boxes else self.keyframes[0][0]

    @property
    def last_frame(self) -> int:
        return max(self.boxes) if self.boxes else self.keyframes[-1][0]

    def embedding(self) -> np.ndarray:
        return (
            self.samples.mean(axis=0)
            if self.samples is not None and len(self.samples)
            else np.zeros(128, np.float32)
        )


@dataclass
class Analysis:
    tracks: list[Track]
    frames: int
    cuts: list[int]
    timings: dict[str, float]


def _iou(a: Box, b: Box) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _strip(chips: list[np.ndarray], slots: int) -> np.ndarray:
    """The best chips side by side, best first, grey where a track has fewer: a review strip."""
    side = faces.CHIP_SIZE
    strip = np.full((side, side * slots, 3), 235, dtype=np.uint8)
    for k, chip in enumerate(chips[:slots]):
        strip[:, k * side : (k + 1) * side] = chip
    return strip


def _suppress(found: list[faces.Detection]) -> list[Box]:
    """Drop detections whose centre lies inside a stronger one (found is strongest first)."""
    kept: list[Box] = []
    for detection in found:
        left, top, right, bottom = detection.box
        cx, cy = (left + right) / 2, (top + bottom) / 2
        if not any(k[0] <= cx <= k[2] and k[1] <= cy <= k[3] for k in kept):
            kept.append(detection.box)
    return kept


def _histogram(frame: np.ndarray) -> np.ndarray:
    small = cv2.resize(frame, (64, 36), interpolation=cv2.INTER_NEAREST)
    hist = cv2.calcHist(
        [cv2.cvtColor(small, cv2.COLOR_RGB2HSV)], [0, 1], None, [16, 8], [0, 180, 0, 256]
    )
    return cv2.normalize(hist, hist)


def _sample_quality(chip: np.ndarray, marks: np.ndarray, side: int) -> float:
    """Larger, sharper, more frontal faces make better samples."""
    grey = cv2.cvtColor(chip, cv2.COLOR_RGB2GRAY)
    sharpness = float(cv2.Laplacian(grey, cv2.CV_32F).var())
    # 5-point landmarks: eye corners then nose; a turned head puts the nose off the eyes' middle.
    eyes = marks[:4].mean(axis=0)
    spread = max(float(np.linalg.norm(marks[0] - marks[2])), 1.0)
    yaw = abs(float(marks[4][0] - eyes[0])) / spread
    return min(side, 200) * (1.0 - min(yaw, 0.9)) * np.log1p(sharpness)


def analyze(
    path,
    *,
    info: media.VideoInfo | None = None,
    start: int = 0,
    end: int | None = None,
    settings: Settings | None = None,
    embedder: faces.Embedder | None = None,
    progress: Callable[[float, str], None] | None = None,
    first_track_id: int = 1,
) -> Analysis:
    """Tracks of faces in frames [start, end) of the video at `path`."""
    import time

    cfg = settings or Settings()
    info = info or media.probe(path)
    end = info.frames if end is None else min(end, info.frames)
    embedder = embedder or faces.Embedder()
    width = min(cfg.analysis_width, info.width)
    scale = info.width / width
    tracks: list[Track] = []
    active: list[Track] = []
    cuts: list[int] = []
    previous_thumb = None
    next_id = first_track_id
    t_detect = t_chips = 0.0
    t0 = time.perf_counter()
    total = max(end - start, 1)

    small_size = media.scaled_size(info, width)
    for index, full in media.read_frames(path, info, start=start, end=end):
        thumb = _histogram(full)
        cut = (
            previous_thumb is not None
            and cv2.compareHist(thumb, previous_thumb, cv2.HISTCMP_BHATTACHARYYA)
            > cfg.cut_threshold
        )
        previous_thumb = thumb
        first = index == start
        if cut:
            cuts.append(index)
            for track in active:
                track.open = False
            active = []
        since = index - start
        deep = first or cut or since % cfg.deep_interval == 0
        quick = since % cfg.keyframe_interval == 0
        if not (deep or quick):
            continue
        # Detection runs small; chips are cut from the full frame, which embeds better.
        frame = cv2.resize(full, small_size, interpolation=cv2.INTER_AREA) if scale > 1 else full
        t = time.perf_counter()
        if deep:
            # The thorough pass looks at twice the quick pass's resolution, at most the frame's.
            deep_scale = min(2.0, scale)
            big = (
                full
                if deep_scale == scale
                else cv2.resize(
                    full,
                    (round(small_size[0] * deep_scale), round(small_size[1] * deep_scale)),
                    interpolation=cv2.INTER_AREA,
                )
            )
            found = [
                faces.Detection(tuple(int(v / deep_scale) for v in d.box), d.score)
                for d in faces.detect_scored(big, upsample=0, threshold=cfg.deep_threshold)
            ]
            if deep_scale < 2.0:
                found += (
                    faces.detect_scored(frame, upsample=1, threshold=cfg.deep_threshold)
                    if scale < 1.01
                    else []
                )
                found.sort(key=lambda d: -d.score)
        else:
            found = faces.detect_scored(frame, upsample=0, threshold=cfg.quick_threshold)
        t_detect += time.perf_counter() - t
        small_boxes = _suppress(found)
        full_boxes = [
            (
                int(b[0] * scale),
                int(b[1] * scale),
                int(min(info.width - 1, b[2] * scale)),
                int(min(info.height - 1, b[3] * scale)),
            )
            for b in small_boxes
        ]
        # Match detections to open tracks by overlap with their last box.
        matched: dict[int, Track] = {}
        if active and full_boxes:
            cost = np.array(
                [[1.0 - _iou(t.keyframes[-1][1], b) for b in full_boxes] for t in active]
            )
            rows, cols = linear_sum_assignment(cost)
            for r, c in zip(rows, cols, strict=True):
                if 1.0 - cost[r, c] >= cfg.match_iou:
                    matched[c] = active[r]
        seen = set()
        owner_of: dict[int, Track] = {}
        for j, box in enumerate(full_boxes):
            track = matched.get(j)
            if track is None:
                track = Track(id=next_id)
                next_id += 1
                tracks.append(track)
                active.append(track)
            seen.add(track.id)
            track.misses = 0
            owner_of[j] = track
            track.keyframes.append((index, box))
            track.last_box = box
            track.follower = dlib.correlation_tracker()
            track.follower.start_track(frame, dlib.rectangle(*small_boxes[j]))
            if deep:
                track.last_deep = index
            else:
                track.quick_hits += 1
        # Tracks this pass could have seen but did not are gone. A quick pass only speaks for
        # tracks quick passes have found before; a deep pass speaks for all.
        for track in list(active):
            if track.id in seen:
                continue
            # Not detected here: follow it, and keep it while the tracker is sure.
            psr = track.follower.update(frame)
            rect = track.follower.get_position()
            followed = (
                int(rect.left() * scale),
                int(rect.top() * scale),
                int(min(info.width - 1, rect.right() * scale)),
                int(min(info.height - 1, rect.bottom() * scale)),
            )
            if (
                psr >= cfg.min_tracker_psr
                and followed[2] > followed[0]
                and followed[3] > followed[1]
            ):
                track.keyframes.append((index, followed))
                track.last_box = followed
                continue
            if deep or track.quick_hits:
                track.misses += 1
                if track.misses > cfg.misses_allowed:
                    track.open = False
                    active.remove(track)
        # Chips of this keyframe's faces, kept only if among the track's best so far.
        if small_boxes:
            t = time.perf_counter()
            marks = faces.landmarks(full, full_boxes)
            chips = faces.face_chips(full, full_boxes)
            for j, box in enumerate(small_boxes):
                track = owner_of[j]
                side = min(box[2] - box[0], box[3] - box[1])
                quality = _sample_quality(chips[j], marks[j], int(side * scale))
                track.candidates.append((quality, index, full_boxes[j], chips[j]))
                track.candidates.sort(key=lambda c: -c[0])
                del track.candidates[cfg.samples_per_track :]
            t_chips += time.perf_counter() - t
        if progress and since % 30 == 0:
            progress(100.0 * since / total, "finding faces")

    t_decode = time.perf_counter() - t0 - t_detect - t_chips
    tracks = [
        t
        for t in tracks
        if len(t.candidates) >= cfg.min_track_detections
        or (t.candidates and len(t.keyframes) >= 3 * cfg.min_track_detections)
    ]
    for track in tracks:
        track.follower = None
    boundaries = sorted([*cuts, end])
    t = time.perf_counter()
    chips, owners = [], []
    for track in tracks:
        _fill_boxes(track, boundaries, cfg, end)
        for _score, index, box, chip in track.candidates:
            chips.append(chip)
            owners.append((track, index, box))
        track.thumbnail = _strip([c[3] for c in track.candidates], cfg.samples_per_track)
    vectors = embedder.embed_chips(np.stack(chips)) if chips else np.empty((0, 128), np.float32)
    for track in tracks:
        rows = [k for k, (owner, _, _) in enumerate(owners) if owner is track]
        track.samples = vectors[rows]
        track.sample_boxes = [(owners[k][1], owners[k][2]) for k in rows]
        track.candidates = []
    t_embed = time.perf_counter() - t
    if progress:
        progress(100.0, "faces found")
    return Analysis(
        tracks=tracks,
        frames=end - start,
        cuts=cuts,
        timings={
            "decode": round(t_decode, 3),
            "detect": round(t_detect, 3),
            "chips": round(t_chips, 3),
            "embed": round(t_embed, 3),
        },
    )


def _fill_boxes(track: Track, boundaries: list[int], cfg: Settings, end: int) -> None:
    """Boxes for every frame: interpolated between detections, held until a pass that could
    have seen the face did not, never across a cut."""
    keys = track.keyframes
    for (f0, b0), (f1, b1) in zip(keys, keys[1:], strict=False):
        for f in range(f0, f1):
            a = (f - f0) / (f1 - f0)
            track.boxes[f] = tuple(int(round(p + a * (q - p))) for p, q in zip(b0, b1, strict=True))
    last, box = keys[-1]
    gap = cfg.keyframe_interval if track.quick_hits else cfg.deep_interval
    stop = min([b for b in boundaries if b > last] + [last + gap, end])
    for f in range(last, stop):
        track.boxes[f] = box


def name_tracks(tracks: list[Track], classifier) -> None:
    """Name each track from its samples; a member is named at most once per frame."""
    for track in tracks:
        if track.samples is None or not len(track.samples):
            track.label, track.confidence, track.candidate = None, 0.0, None
            continue
        prediction = classifier.predict_track(track.samples)
        track.label = prediction.label
        track.candidate = prediction.candidate
        track.confidence = float(prediction.confidence)
    # Clashes: two tracks on screen together with one name; the stronger keeps it.
    for track in sorted(tracks, key=lambda t: -t.confidence):
        if track.label is None:
            continue
        for other in tracks:
            if other is track or other.label != track.label or other.confidence > track.confidence:
                continue
            if other.first_frame <= track.last_frame and track.first_frame <= other.last_frame:
                if set(other.boxes) & set(track.boxes):
                    other.label = None


def join(parts: list[Analysis], starts: list[int], *, match_iou: float = 0.25) -> Analysis:
    """Join segment analyses into one, linking tracks that run across a seam."""
    tracks: list[Track] = []
    cuts: list[int] = []
    timings: dict[str, float] = {}
    for part, seam in zip(parts, starts, strict=True):
        cuts += part.cuts
        for key, value in part.timings.items():
            timings[key] = round(timings.get(key, 0.0) + value, 3)
        ending = [t for t in tracks if t.boxes and max(t.boxes) == seam - 1]
        for track in part.tracks:
            if min(track.boxes) == seam and seam not in part.cuts:
                box = track.boxes[seam]
                best = max(ending, key=lambda t: _iou(t.boxes[seam - 1], box), default=None)
                if best is not None and _iou(best.boxes[seam - 1], box) >= match_iou:
                    best.boxes.update(track.boxes)
                    best.keyframes += track.keyframes
                    best.samples = np.concatenate([best.samples, track.samples])
                    best.sample_boxes += track.sample_boxes
                    ending.remove(best)
                    continue
            tracks.append(track)
    for number, track in enumerate(sorted(tracks, key=lambda t: (t.first_frame, t.id)), start=1):
        track.id = number
    return Analysis(tracks=tracks, frames=sum(p.frames for p in parts), cuts=cuts, timings=timings)


def save(analysis: Analysis, path) -> None:
    """Write an analysis to an .npz (no pickle), e.g. a segment's result for the joining job."""
    import json

    meta = {
        "frames": analysis.frames,
        "cuts": analysis.cuts,
        "timings": analysis.timings,
        "tracks": [],
    }
    samples, thumbs = [], []
    for track in analysis.tracks:
        meta["tracks"].append(
            {
                "id": track.id,
                "keyframes": [[f, list(b)] for f, b in track.keyframes],
                "quick_hits": track.quick_hits,
                "boxes": [[f, *b] for f, b in sorted(track.boxes.items())],
                "sample_boxes": [[f, list(b)] for f, b in track.sample_boxes],
                "samples": len(track.samples),
            }
        )
        samples.append(track.samples)
        thumbs.append(track.thumbnail)
    np.savez(
        path,
        meta=np.array(json.dumps(meta)),
        samples=np.concatenate(samples) if samples else np.empty((0, 128), np.float32),
        thumbs=np.stack(thumbs) if thumbs else np.empty((0, 150, 0, 3), np.uint8),
    )


def load(path) -> Analysis:
    import json

    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        samples, thumbs = data["samples"], data["thumbs"]
    tracks, offset = [], 0
    for k, t in enumerate(meta["tracks"]):
        track = Track(id=t["id"], keyframes=[(f, tuple(b)) for f, b in t["keyframes"]])
        track.quick_hits = t["quick_hits"]
        track.boxes = {row[0]: tuple(row[1:]) for row in t["boxes"]}
        track.sample_boxes = [(f, tuple(b)) for f, b in t["sample_boxes"]]
        track.samples = samples[offset : offset + t["samples"]]
        track.thumbnail = thumbs[k]
        track.open = False
        offset += t["samples"]
        tracks.append(track)
    return Analysis(
        tracks=tracks, frames=meta["frames"], cuts=meta["cuts"], timings=meta["timings"]
    )
