"""Video analysis: decode once at a reduced size, find and follow faces, name whole tracks.

Django-free. `analyze` reads frames [start, end) of a video through media.read_frames, one
frame in memory at a time plus a few recent keyframes, and returns named tracks with their
per-frame boxes in full-frame pixels. Long videos can be cut into segments analysed as
separate jobs and put back together with `join_segments`. `analyze_and_render` overlaps the
analysis with media.render: frames are drawn as soon as every track on them is named.

How faces are found, per keyframe (every `keyframe_interval` frames, every cut, the first
frame of the range):
- open tracks are searched for near where they should be, on a crop scaled so the face is
  about 100 px: a few milliseconds a face, and small faces are found as well as big ones;
- new faces are looked for over the whole frame, at `scan_width` every `scan_interval`
  frames, and at the full analysis width (which finds faces down to about 90 px, 7% of a
  1280 px frame) on every cut and every `thorough_interval` frames;
- a face found by a scan is also looked for on the keyframes kept since the last scans, so a
  face that appeared before it was first noticed gets its earlier frames too.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from recognition.core import faces, media
from recognition.core.tracking import (
    Box,
    CutDetector,
    Detection,
    Sample,
    Track,
    Tracker,
    centre_distance,
    detections_of,
    iou,
    keep_best_samples,
    overlapping_groups,
    resolve_clashes,
    sample_quality,
    suppress,
    vote,
)

__all__ = [
    "AnalysisResult",
    "Settings",
    "analyze",
    "analyze_and_render",
    "join_segments",
    "label_drawer",
    "member_color",
    "to_export",
]

Progress = Callable[[float, str], None]
Signature = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class Settings:
    """Knobs of the analysis. Defaults measured on stage-dev.mp4 (1280x720, 30 fps)."""

    keyframe_interval: int = 6  # frames between keyframes (5 a second at 30 fps)
    analysis_width: int = 1280  # frames are decoded at most this wide (never upscaled)
    scan_width: int = 640  # width of the frequent whole-frame search for new faces
    scan_interval: int = 30
    thorough_interval: int = 300  # whole-frame search at analysis width, besides cuts
    # HOG margins (dlib's default cut-off is 0). On stage-dev half the true faces score
    # under -0.6 at full size and a turned face scores about -1.1; false alarms score up to
    # -0.8, so a track is kept only if one of its detections reaches confirm_score.
    thorough_threshold: float = -1.2
    scan_threshold: float = -1.0
    local_threshold: float = -1.2
    confirm_score: float = -0.5
    local_face_px: int = 90  # a searched face is scaled to about this size (HOG's window: 80)
    local_context: float = 1.8  # crop side, in face sides
    samples_per_track: int = 3  # chips embedded per track
    min_hits: int = 2  # detections a track needs to be kept
    # Searches in a row a track may be missed and still continue; more while another face
    # may be hiding it. If it is not found again it ends half way to the first miss.
    max_misses: int = 3
    max_hidden_misses: int = 15
    backfill_frames: int = 36  # how far back a newly found face is looked for
    cut_hist: float = 0.3
    cut_diff: float = 5.0


@dataclass
class AnalysisResult:
    """Tracks found in frames [start, end) of a video, with what it took."""

    tracks: list[Track]
    start: int
    end: int
    width: int  # of the full (displayed) frame the boxes refer to
    height: int
    cuts: list[int] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    # Signatures of the first and last frame, so join_segments can tell a cut at a seam.
    first_signature: Signature | None = None
    last_signature: Signature | None = None

    @functools.cached_property
    def detections(self) -> list[Detection]:
        """Every per-frame box, ordered by frame then track."""
        return detections_of(self.tracks)

    def track(self, track_id: int) -> Track:
        """The track with this id."""
        return next(t for t in self.tracks if t.id == track_id)


# --------------------------------------------------------------------------- analysis


def analyze(
    path: str | os.PathLike[str],
    classifier=None,
    *,
    info: media.VideoInfo | None = None,
    start: int = 0,
    end: int | None = None,
    keyframe_interval: int | None = None,
    analysis_width: int | None = None,
    progress: Progress | None = None,
    settings: Settings | None = None,
    embedder: faces.Embedder | None = None,
    first_track_id: int = 1,
    on_final: Callable[[list[Track], int], None] | None = None,
) -> AnalysisResult:
    """Named face tracks of frames [start, end) of a video (classifier None: unnamed).

    on_final(tracks, safe) is called as tracks become final (named, clashes resolved, never
    to change): every frame before `safe` has all its tracks in the calls made so far.
    """
    cfg = settings or Settings()
    if keyframe_interval is not None:
        cfg = replace(cfg, keyframe_interval=keyframe_interval)
    if analysis_width is not None:
        cfg = replace(cfg, analysis_width=analysis_width)
    if cfg.keyframe_interval < 1:
        raise ValueError("keyframe_interval must be at least 1")
    info = info or media.probe(path)
    end = info.frames if end is None else min(end, info.frames)
    if not 0 <= start <= end:
        raise ValueError(f"bad frame range start={start} end={end}")
    run = _Run(cfg, info, classifier, embedder or faces.Embedder(), start, end, first_track_id)
    run.on_final = on_final
    total = max(end - start, 1)
    step = max(1, total // 50)
    t0 = time.perf_counter()
    frames = media.read_frames(path, info, scale_to_width=cfg.analysis_width, start=start, end=end)
    try:
        waited = time.perf_counter()
        for index, frame in frames:
            run.timings["decode"] += time.perf_counter() - waited
            run.frame(index, frame)
            if progress and (index - start) % step == 0:
                progress(100.0 * (index - start) / total, "analysis")
            waited = time.perf_counter()
    finally:
        close = getattr(frames, "close", None)
        if close:
            close()
    result = run.finish()
    result.timings["total"] = time.perf_counter() - t0
    result.timings = {k: round(v, 3) for k, v in result.timings.items()}
    if progress:
        progress(100.0, "analysis")
    return result


class _Run:
    """State of one analysis over a frame range."""

    def __init__(
        self,
        cfg: Settings,
        info: media.VideoInfo,
        classifier,
        embedder: faces.Embedder,
        start: int,
        end: int,
        first_id: int,
    ) -> None:
        self.cfg, self.info, self.classifier, self.embedder = cfg, info, classifier, embedder
        self.start, self.end, self.first_id = start, end, first_id
        width, _ = media.scaled_size(info, cfg.analysis_width)
        self.scale = info.width / width  # analysis pixels -> full-frame pixels
        self.tracker = Tracker(
            keyframe_interval=cfg.keyframe_interval,
            first_id=first_id,
            max_misses=cfg.max_misses,
            max_hidden_misses=cfg.max_hidden_misses,
            min_hits=cfg.min_hits,
            min_score=cfg.confirm_score,
        )
        self.cuts = CutDetector(hist_threshold=cfg.cut_hist, diff_threshold=cfg.cut_diff)
        self.cut_frames: list[int] = []
        self.shot_start = start
        self.last_index = start - 1
        self.first_signature: Signature | None = None
        self.recent: deque[tuple[int, np.ndarray]] = deque()  # keyframes kept for backfill
        self.pending: list[Track] = []  # closed and named, clashes not yet resolved
        self.final: list[Track] = []
        self.on_final: Callable[[list[Track], int], None] | None = None
        self.timings: dict[str, float] = dict.fromkeys(
            ("decode", "cuts", "scan", "thorough", "local", "samples", "embed", "name"), 0.0
        )
        self.counts: dict[str, int] = dict.fromkeys(
            ("keyframes", "scans", "thorough_scans", "local_searches", "backfilled"), 0
        )

    # ---- per frame

    def frame(self, index: int, frame: np.ndarray) -> None:
        cfg = self.cfg
        t = time.perf_counter()
        cut = self.cuts.push(frame)
        if self.first_signature is None:
            self.first_signature = self.cuts.last
        self.timings["cuts"] += time.perf_counter() - t
        self.last_index = index
        if cut:
            self.cut_frames.append(index)
            self.tracker.cut(index)
            self.shot_start = index
            self.recent.clear()
        first = index == self.shot_start
        if first or index % cfg.keyframe_interval == 0:
            self._keyframe(index, frame, first)
        self._settle(index + 1)

    def _keyframe(self, index: int, frame: np.ndarray, first: bool) -> None:
        cfg = self.cfg
        self.counts["keyframes"] += 1
        searched = list(self.tracker.open)
        found: list[tuple[Box, float]] = []
        t = time.perf_counter()
        for track in searched:
            found += self._search_near(frame, track.predict(index))
        self.counts["local_searches"] += len(searched)
        self.timings["local"] += time.perf_counter() - t
        discovered: list[tuple[Box, float]] = []
        if first or index % cfg.thorough_interval == 0:
            t = time.perf_counter()
            discovered = self._scan(frame, frame.shape[1], cfg.thorough_threshold)
            self.counts["thorough_scans"] += 1
            self.timings["thorough"] += time.perf_counter() - t
        elif index % cfg.scan_interval == 0:
            t = time.perf_counter()
            discovered = self._scan(frame, cfg.scan_width, cfg.scan_threshold)
            self.counts["scans"] += 1
            self.timings["scan"] += time.perf_counter() - t
        kept = suppress(found + discovered)
        boxes = [box for box, _ in kept]
        # Only a whole-frame search may start a track: a crop around one face that finds a
        # second face has not looked for it properly, the next scan will.
        may_start = [any(_inside(d, box) for d, _ in discovered) for box in boxes]
        owners = self.tracker.update(
            index, boxes, [score for _, score in kept], searched=searched, may_start=may_start
        )
        new = [o for o in owners if o is not None and o.hits == 1]
        self._add_samples(index, frame, [(o, o.keyframes[-1][1]) for o in owners if o is not None])
        if new and not first:
            self._backfill(new)
        self.recent.append((index, frame))
        while self.recent and self.recent[0][0] < index - cfg.backfill_frames:
            self.recent.popleft()
        self._close(self.tracker.take_closed())

    def _to_full(self, box: Sequence[float]) -> Box:
        s, w, h = self.scale, self.info.width, self.info.height
        return (
            max(0, min(w - 1, int(round(box[0] * s)))),
            max(0, min(h - 1, int(round(box[1] * s)))),
            max(0, min(w - 1, int(round(box[2] * s)))),
            max(0, min(h - 1, int(round(box[3] * s)))),
        )

    def _to_analysis(self, box: Box) -> tuple[float, float, float, float]:
        s = self.scale
        return (box[0] / s, box[1] / s, box[2] / s, box[3] / s)

    def _scan(self, frame: np.ndarray, width: int, threshold: float) -> list[tuple[Box, float]]:
        """Faces over the whole frame, searched at this width."""
        f = 1.0
        if width < frame.shape[1]:
            f = frame.shape[1] / width
            height = max(1, round(frame.shape[0] / f))
            frame = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
        found = faces.detect_scored(frame, threshold=threshold)
        return [(self._to_full([v * f for v in d.box]), d.score) for d in found]

    def _search_near(self, frame: np.ndarray, guess: Box) -> list[tuple[Box, float]]:
        """Faces in a crop around where a face should be, scaled to about local_face_px."""
        cfg = self.cfg
        left, top, right, bottom = self._to_analysis(guess)
        side = max(right - left, bottom - top, 4.0)
        half = side * cfg.local_context / 2
        cx, cy = (left + right) / 2, (top + bottom) / 2
        height, width = frame.shape[:2]
        x0, y0 = max(0, int(cx - half)), max(0, int(cy - half))
        x1, y1 = min(width, int(cx + half) + 1), min(height, int(cy + half) + 1)
        if x1 - x0 < side / 2 or y1 - y0 < side / 2:
            return []  # the guess has left the frame
        f = cfg.local_face_px / side
        crop = frame[y0:y1, x0:x1]
        size = (max(1, round((x1 - x0) * f)), max(1, round((y1 - y0) * f)))
        crop = cv2.resize(crop, size, interpolation=cv2.INTER_LINEAR if f > 1 else cv2.INTER_AREA)
        # HOG's window is 80 px: a face at the frame's edge leaves a thin crop, padded so the
        # window fits (replicated edges do not make faces).
        pad_x, pad_y = max(0, 100 - crop.shape[1]), max(0, 100 - crop.shape[0])
        if pad_x or pad_y:
            crop = cv2.copyMakeBorder(crop, 0, pad_y, 0, pad_x, cv2.BORDER_REPLICATE)
        found = faces.detect_scored(crop, threshold=cfg.local_threshold)
        out = []
        for d in found:
            box = (d.box[0] / f + x0, d.box[1] / f + y0, d.box[2] / f + x0, d.box[3] / f + y0)
            full = self._to_full(box)
            # Only the face that was looked for: the closest one, not a neighbour in the crop.
            if centre_distance(full, guess) <= 0.8:
                out.append((full, d.score))
        return out[:1]

    def _backfill(self, tracks: list[Track]) -> None:
        """Follow newly found faces back through the kept keyframes of the same shot."""
        others = [t for t in self.tracker.open + self.pending + self.final if t not in tracks]
        for track in tracks:
            for index, frame in reversed(self.recent):
                if index >= track.first_frame:
                    continue
                found = self._search_near(frame, track.keyframes[0][1])
                box = found[0][0] if found else None
                if box is None or iou(box, track.keyframes[0][1]) < 0.2:
                    break
                # A face another track already holds there is not this one's earlier self.
                if any(iou(box, other.box_at(index) or (0, 0, 0, 0)) > 0.3 for other in others):
                    break
                track.add(index, box)
                track.best_score = max(track.best_score, found[0][1])
                self.counts["backfilled"] += 1
                self._add_samples(index, frame, [(track, box)])

    def _add_samples(self, index: int, frame: np.ndarray, owned: list[tuple[Track, Box]]) -> None:
        if not owned:
            return
        t = time.perf_counter()
        gap = 2 * self.cfg.keyframe_interval
        height, width = frame.shape[:2]
        for track, box in owned:
            left, top, right, bottom = (int(round(v)) for v in self._to_analysis(box))
            # On a crop around the face: dlib copies the whole image it is given, which on a
            # full frame costs more than the landmarks themselves.
            m = max(right - left, bottom - top)
            x0, y0 = max(0, left - m), max(0, top - m)
            crop = frame[y0 : min(height, bottom + m + 1), x0 : min(width, right + m + 1)]
            inner = [(left - x0, top - y0, right - x0, bottom - y0)]
            mark, chip = faces.landmarks(crop, inner)[0], faces.face_chips(crop, inner)[0]
            side = ((box[2] - box[0]) + (box[3] - box[1])) / 2
            sample = Sample(index, box, sample_quality(chip, mark, side), chip=chip)
            keep_best_samples(track.samples, sample, keep=self.cfg.samples_per_track, min_gap=gap)
        self.timings["samples"] += time.perf_counter() - t

    # ---- closing, naming and releasing tracks

    def _close(self, tracks: list[Track]) -> None:
        """Embed and name tracks that just closed; they wait in pending for clash checks."""
        if not tracks:
            return
        t = time.perf_counter()
        chips = [s.chip for tr in tracks for s in tr.samples]
        vectors = self.embedder.embed_chips(np.stack(chips)) if chips else None
        k = 0
        for track in tracks:
            if track.samples:
                track.thumbnail = track.samples[0].chip
            for sample in track.samples:
                sample.embedding = vectors[k]
                sample.chip = None
                k += 1
            if track.samples:
                track.embedding = np.mean([s.embedding for s in track.samples], axis=0)
        self.timings["embed"] += time.perf_counter() - t
        t = time.perf_counter()
        for track in tracks:
            _vote_track(track, self.classifier)
        self.pending += tracks
        self.timings["name"] += time.perf_counter() - t

    def _settle(self, upto: int) -> None:
        """Resolve and release pending tracks no present or future track can overlap."""
        horizon = min(
            [t.first_frame for t in self.tracker.open]
            + [upto, max(self.shot_start, upto - self.cfg.backfill_frames)]
        )
        if upto >= self.end:
            horizon = self.end
        released: list[Track] = []
        waiting: list[Track] = []
        for group in overlapping_groups(self.pending):
            if max(t.last_frame for t in group) < horizon:
                resolve_clashes(group)
                released += group
            else:
                waiting += group
        self.pending = waiting
        if released or self.on_final:
            self.final += released
            safe = min([horizon] + [t.first_frame for t in waiting])
            if self.on_final and (released or safe > getattr(self, "_safe", -1)):
                self._safe = safe
                self.on_final(released, safe)

    def finish(self) -> AnalysisResult:
        end = self.last_index + 1
        self.end = end
        self.tracker.finish(end)
        self._close(self.tracker.take_closed())
        self._settle(end)
        tracks = sorted(self.final, key=lambda t: (t.first_frame, t.id))
        # Ids in order of appearance: a backfilled track can start before older ones.
        for number, track in enumerate(tracks, start=self.first_id):
            track.id = number
        timings = dict(self.timings)
        timings.update({k: float(v) for k, v in self.counts.items()})
        timings["frames"] = float(end - self.start)
        return AnalysisResult(
            tracks=tracks,
            start=self.start,
            end=end,
            width=self.info.width,
            height=self.info.height,
            cuts=self.cut_frames,
            timings=timings,
            first_signature=self.first_signature,
            last_signature=self.cuts.last,
        )


def _inside(box: Box, outer: Box) -> bool:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return outer[0] <= cx <= outer[2] and outer[1] <= cy <= outer[3]


def _vote_track(track: Track, classifier) -> None:
    vectors = [s.embedding for s in track.samples if s.embedding is not None]
    if classifier is None or not vectors:
        track.choices, track.candidate, track.confidence = (), None, 0.0
        return
    result = vote(classifier, np.stack(vectors))
    track.choices, track.candidate, track.confidence = (
        result.choices,
        result.candidate,
        result.score,
    )


# --------------------------------------------------------------------------- segments


def join_segments(
    results: Sequence[AnalysisResult], classifier=None, *, min_iou: float = 0.3, min_hits: int = 2
) -> AnalysisResult:
    """One result from the results of consecutive segments, linking tracks across the seams.

    A track that reaches a seam continues as a track starting there when their boxes on
    either side of the seam overlap, there is no cut at the seam, and the two have the same
    identity (the same member, or both unknown). With a classifier, a named and an unknown
    part also join and the whole is named again from all its samples.
    """
    if not results:
        raise ValueError("no results to join")
    parts = sorted(results, key=lambda r: r.start)
    for a, b in zip(parts, parts[1:], strict=False):
        if a.end != b.start:
            raise ValueError(f"segments are not contiguous: {a.end} then {b.start}")
    detector = CutDetector()
    tracks = list(parts[0].tracks)
    cuts = list(parts[0].cuts)
    timings = dict(parts[0].timings)
    renamed: list[Track] = []
    for a, b in zip(parts, parts[1:], strict=False):
        seam = b.start
        cut = (
            a.last_signature is not None
            and b.first_signature is not None
            and detector.is_cut(a.last_signature, b.first_signature)
        )
        if cut:
            cuts.append(seam)
        ending = [t for t in tracks if t.last_frame == seam - 1]
        joined: set[int] = set()
        for track in sorted(b.tracks, key=lambda t: -t.hits):
            if cut or track.first_frame != seam:
                continue
            box = track.keyframes[0][1]
            best = max(
                (t for t in ending if id(t) not in joined),
                key=lambda t: iou(t.box_at(seam - 1), box),
                default=None,
            )
            if best is None or iou(best.box_at(seam - 1), box) < min_iou:
                continue
            same = best.label == track.label
            if not same and (classifier is None or (best.label and track.label)):
                continue
            _merge(best, track)
            joined.add(id(best))
            track.end = -1  # marks it merged
            if not same:
                renamed.append(best)
        # A one-detection track at the edge was kept only in case the next segment went on.
        tracks = [
            t for t in tracks if t.hits >= min_hits or t.last_frame != seam - 1 or id(t) in joined
        ]
        tracks += [t for t in b.tracks if t.end != -1]
        cuts += b.cuts
        for key, value in b.timings.items():
            timings[key] = timings.get(key, 0.0) + value
    for track in renamed:
        _vote_track(track, classifier)
    for group in overlapping_groups(tracks):
        resolve_clashes(group)
    tracks.sort(key=lambda t: (t.first_frame, t.id))
    for number, track in enumerate(tracks, start=1):
        track.id = number
    return AnalysisResult(
        tracks=tracks,
        start=parts[0].start,
        end=parts[-1].end,
        width=parts[0].width,
        height=parts[0].height,
        cuts=cuts,
        timings={k: round(v, 3) for k, v in timings.items()},
        first_signature=parts[0].first_signature,
        last_signature=parts[-1].last_signature,
    )


def _merge(into: Track, other: Track) -> None:
    """Append a track that continues `into` across a seam."""
    n_a, n_b = len(into.samples), len(other.samples)
    into.keyframes += other.keyframes
    into.end = other.end
    into.samples = sorted(into.samples + other.samples, key=lambda s: -s.quality)
    vectors = [s.embedding for s in into.samples if s.embedding is not None]
    if vectors:
        into.embedding = np.mean(vectors, axis=0)
    if other.thumbnail is not None and (into.thumbnail is None or n_b > n_a):
        into.thumbnail = other.thumbnail
    if into.label == other.label and into.choices and other.choices:
        # Same name on both sides: its score is the sample-weighted mean of the two.
        scores_b = dict(other.choices)
        into.choices = (
            tuple(
                (m, (s * n_a + scores_b[m] * n_b) / max(n_a + n_b, 1))
                for m, s in into.choices
                if m in scores_b
            )
            or into.choices
        )


# --------------------------------------------------------------------------- export


def to_export(
    result: AnalysisResult, info: media.VideoInfo, *, model: Mapping | None = None
) -> dict:
    """The predictions export of ARCHITECTURE.md: video facts, model, per-frame detections."""
    fps = info.fps or 30.0
    labels = {t.id: (t.label, round(float(t.confidence), 4)) for t in result.tracks}
    detections = []
    for d in result.detections:
        member, confidence = labels[d.track]
        detections.append(
            {
                "frame": d.frame,
                "time": round(d.frame / fps, 3),
                "box": [int(v) for v in d.box],
                "member": member,
                "confidence": confidence,
                "track": d.track,
            }
        )
    return {
        "video": {
            "fps": info.fps,
            "frames": info.frames,
            "width": info.width,
            "height": info.height,
            "duration": info.duration,
        },
        "model": dict(model) if model is not None else None,
        "detections": detections,
    }


# --------------------------------------------------------------------------- drawing

# Distinct, saturated colours that keep black or white text readable.
_PALETTE = (
    (255, 95, 162),
    (86, 180, 233),
    (0, 158, 115),
    (240, 228, 66),
    (230, 159, 0),
    (204, 121, 167),
    (0, 114, 178),
    (213, 94, 0),
    (120, 94, 240),
    (100, 143, 255),
)
UNKNOWN_COLOR = (160, 160, 160)


def member_color(member: str) -> tuple[int, int, int]:
    """A member's box colour, the same in every video and every process."""
    return _PALETTE[zlib.crc32(member.encode()) % len(_PALETTE)]


class _Painter:
    """Draws the boxes of tracks handed over in order of first frame, frame after frame."""

    def __init__(self, names: Mapping[str, str] | None, draw_unknown: bool) -> None:
        self.names = names or {}
        self.draw_unknown = draw_unknown
        self.waiting: list[Track] = []
        self.active: list[Track] = []

    def add(self, tracks: Sequence[Track]) -> None:
        self.waiting += [t for t in tracks if t.label or self.draw_unknown]
        self.waiting.sort(key=lambda t: t.first_frame, reverse=True)

    def __call__(self, index: int, frame: np.ndarray) -> None:
        while self.waiting and self.waiting[-1].first_frame <= index:
            self.active.append(self.waiting.pop())
        self.active = [t for t in self.active if t.last_frame >= index]
        for track in self.active:
            box = track.box_at(index)
            if box is None:
                continue
            if track.label:
                text = self.names.get(track.label, track.label)
                media.draw_label(frame, box, text, member_color(track.label))
            else:
                media.draw_label(frame, box, "", UNKNOWN_COLOR)


def label_drawer(
    tracks: Sequence[Track],
    *,
    names: Mapping[str, str] | None = None,
    draw_unknown: bool = False,
) -> Callable[[int, np.ndarray], None]:
    """A draw(index, frame) for media.render that labels the tracks' faces (frames in order)."""
    painter = _Painter(names, draw_unknown)
    painter.add(tracks)
    return painter


def analyze_and_render(
    path: str | os.PathLike[str],
    path_out: str | os.PathLike[str],
    classifier,
    *,
    info: media.VideoInfo | None = None,
    progress: Progress | None = None,
    names: Mapping[str, str] | None = None,
    draw_unknown: bool = False,
    preset: str = media.DEFAULT_PRESET,
    **analyze_options,
) -> AnalysisResult:
    """analyze() the whole video and render the labelled copy at the same time.

    The analysis runs on a thread (dlib, onnxruntime, OpenCV and the pipes release the GIL)
    ahead of media.render; a frame is drawn once every track on it is final, which at the
    latest is the end of its shot. Nothing is buffered: the renderer waits instead.
    """
    info = info or media.probe(path)
    painter = _Painter(names, draw_unknown)
    ready = threading.Condition()
    state: dict = {"safe": 0, "error": None, "result": None}
    frames = max(info.frames, 1)

    def on_final(tracks: list[Track], safe: int) -> None:
        with ready:
            painter.add(tracks)
            state["safe"] = max(state["safe"], safe)
            ready.notify_all()

    def work() -> None:
        try:
            state["result"] = analyze(
                path, classifier, info=info, on_final=on_final, **analyze_options
            )
        except BaseException as exc:  # handed to the rendering thread
            state["error"] = exc
        finally:
            with ready:
                if state["error"] is None:
                    state["safe"] = sys.maxsize  # everything is final
                ready.notify_all()

    def draw(index: int, frame: np.ndarray) -> None:
        with ready:
            while state["safe"] <= index and state["error"] is None:
                ready.wait()
            if state["error"] is not None:
                raise state["error"]
            painter(index, frame)
        if progress and index % 30 == 0:
            progress(100.0 * index / frames, "render")

    worker = threading.Thread(target=work, name="analysis", daemon=True)
    worker.start()
    try:
        media.render(path, path_out, info, draw, preset=preset)
    finally:
        worker.join()
    if state["error"] is not None:
        raise state["error"]
    if progress:
        progress(100.0, "render")
    return state["result"]
