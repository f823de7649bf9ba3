"""Video analysis: find faces on keyframes, link them into tracks, embed the best samples.

Django-free. `analyze` reads a video (or a frame range of it, for segments run as separate jobs)
and returns unnamed tracks with per-frame boxes and sample embeddings; `name_tracks` names them
with a classifier, so stored tracks can be named again by a new model without decoding anything.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import cv2
import dlib
import numpy as np
from scipy.optimize import linear_sum_assignment

from recognition.core import faces, media
from recognition.core.detect import Face, fit_input_size

Box = tuple[int, int, int, int]


@dataclass
class Settings:
    """Knobs of the analysis; the defaults were measured on the dev stage videos."""

    # Quick passes and the tracker look at frames scaled to this width (never upscaled); SCRFD
    # at 640x384 finds every unhidden face of stage-dev, profiles included, in 9.6 ms a frame.
    analysis_width: int = 640
    keyframe_interval: int = 12  # frames between quick detection passes
    # Frames between thorough passes (a larger input), besides the one at every cut.
    deep_interval: int = 180
    # The thorough pass's longest input side (never above the frame's): on wide 1080p stages
    # SCRFD at full size finds faces of 56-70 px that 1280 wide scores under 0.5 (two such
    # tracks of w302 were missed whole: detected 0.937 -> 0.997), for 88 ms a pass against 38.
    deep_side: int = 1920
    quick_threshold: float = 0.5  # SCRFD face probability, quick pass
    deep_threshold: float = 0.5
    # Tracked faces smaller than this (analysis-frame pixels) are searched for again in a
    # window around them, scaled so the face is `window_face` pixels: SCRFD at 640 input finds
    # 0.64 of faces under 80 px of a 1080p frame (under 27 px at 640).
    small_face: int = 40
    window_face: int = 64
    misses_allowed: int = 1  # quick passes a track may miss before it is closed
    # Between detections a correlation tracker follows each face; below this peak-to-sidelobe
    # ratio its answer is not trusted.
    min_tracker_psr: float = 7.0
    match_iou: float = 0.25  # a detection continues a track above this overlap
    # Bhattacharyya distance of hue-saturation histograms between frames: over 9 stage videos
    # (93 cuts, 8,700 frames) cuts score 0.32 and up, frames within a shot 0.085 at most.
    cut_threshold: float = 0.2
    samples_per_track: int = 5
    # Chips kept per track until it is named (a track's every detection, thinned to this many
    # evenly spread ones when longer): enough to find where a track jumped to another face.
    max_candidates: int = 32
    # Two samples of one track further apart than this are taken for two people, and the
    # track is split there; None: the embedder's own same-person distance.
    identity_distance: float | None = None
    min_track_detections: int = 2  # one lone detection is more likely noise than a face
    decode_threads: int = 0  # 0: one per core; 1 where a process runs on every core


@dataclass
class Track:
    id: int
    keyframes: list[tuple[int, Box]] = field(default_factory=list)  # detections, full-size boxes
    quick_hits: int = 0
    detections: int = 0  # passes that detected the face (the rest of keyframes were followed)
    misses: int = 0
    follower: object | None = None  # dlib.correlation_tracker on analysis frames
    # Where the face was last detected (analysis frame, box on it): the follower starts there,
    # and only when a pass misses the face, so tracks that keep being detected cost nothing.
    anchor: tuple[np.ndarray, Box] | None = None
    boxes: dict[int, Box] = field(default_factory=dict)  # every frame, after interpolation
    # (quality, frame, box, chip, whole): whole is False for a face cut off by the frame edge
    candidates: list[tuple[float, int, Box, np.ndarray, bool]] = field(default_factory=list)
    samples: np.ndarray | None = None  # (n, D) embeddings of the best chips
    sample_boxes: list[tuple[int, Box]] = field(default_factory=list)
    thumbnail: np.ndarray | None = None
    label: str | None = None
    candidate: str | None = None
    confidence: float = 0.0
    stop: int | None = None  # boxes are never held on to this frame (where a split part starts)

    @property
    def last_box(self) -> Box:
        """The latest known box, detected or followed (full size)."""
        return self.keyframes[-1][1]

    @property
    def first_frame(self) -> int:
        return min(self.boxes) if self.boxes else self.keyframes[0][0]

    @property
    def last_frame(self) -> int:
        return max(self.boxes) if self.boxes else self.keyframes[-1][0]


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


# Two boxes overlapping this much in one frame are taken for the same face.
_SAME_FACE_IOU = 0.5


def _at_edge(box: Box, info: media.VideoInfo) -> bool:
    """Whether a full-frame box touches the frame's edge (the face may go on beyond it)."""
    left, top, right, bottom = box
    return left <= 1 or top <= 1 or right >= info.width - 2 or bottom >= info.height - 2


def _assign(
    tracks: list[Track], boxes: list[Box], overlap: Callable[[Track, Box], float], least: float
) -> dict[int, Track]:
    """Detection index -> track, one to one, maximising total overlap, each at least `least`."""
    if not tracks or not boxes:
        return {}
    cost = np.array([[1.0 - overlap(t, b) for b in boxes] for t in tracks])
    rows, cols = linear_sum_assignment(cost)
    return {int(c): tracks[r] for r, c in zip(rows, cols, strict=True) if 1.0 - cost[r, c] >= least}


def _follow(
    track: Track, frame: np.ndarray, scale: float, info: media.VideoInfo, cfg: Settings
) -> Box | None:
    """The track's face followed to this analysis frame (full-frame box), None if unsure."""
    if track.follower is None:
        anchor_frame, anchor_box = track.anchor
        track.follower = dlib.correlation_tracker()
        track.follower.start_track(anchor_frame, dlib.rectangle(*anchor_box))
        track.anchor = None
    psr = track.follower.update(frame)
    rect = track.follower.get_position()
    box = _to_full((rect.left(), rect.top(), rect.right(), rect.bottom()), scale, info)
    if psr >= cfg.min_tracker_psr and box[2] > box[0] and box[3] > box[1]:
        return box
    return None


def _near(a: Box, b: Box, cfg: Settings) -> float:
    """Just enough to match (more the closer) for a box of about the same size whose centre is
    within one face width; 0 otherwise. Used only where boxes do not overlap enough."""
    side_a, side_b = a[2] - a[0], b[2] - b[0]
    if min(side_a, side_b) <= 0 or max(side_a, side_b) > 1.5 * min(side_a, side_b):
        return 0.0
    side = (side_a + side_b) / 2
    gap = math.hypot((a[0] + a[2] - b[0] - b[2]) / 2, (a[1] + a[3] - b[1] - b[3]) / 2)
    return cfg.match_iou * (1.0 + 0.1 * (1.0 - gap / side)) if gap <= side else 0.0


def _expected(track: Track, index: int) -> Box:
    """Where the track's face would be at frame index, moving as between its last two boxes."""
    if len(track.keyframes) < 2:
        return track.keyframes[-1][1]
    (f0, b0), (f1, b1) = track.keyframes[-2:]
    step = (index - f1) / max(f1 - f0, 1)
    return tuple(int(round(q + (q - p) * step)) for p, q in zip(b0, b1, strict=True))


def _to_full(box, scale: float, info: media.VideoInfo) -> Box:
    """An analysis-frame box in full-frame pixels, its far edges kept inside the frame."""
    left, top, right, bottom = box
    return (
        int(left * scale),
        int(top * scale),
        int(min(info.width - 1, right * scale)),
        int(min(info.height - 1, bottom * scale)),
    )


def _strip(chips: list[np.ndarray], slots: int) -> np.ndarray:
    """The best chips side by side, best first, grey where a track has fewer: a review strip."""
    side = chips[0].shape[0] if chips else 112
    strip = np.full((side, side * slots, 3), 235, dtype=np.uint8)
    for k, chip in enumerate(chips[:slots]):
        strip[:, k * side : (k + 1) * side] = chip
    return strip


def _redetect_small(
    full: Callable[[], np.ndarray], active: list[Track], scale: float, cfg: Settings
) -> list[Face]:
    """Look again, at a resolution that can see them, for tracked faces too small for the quick
    pass. Each such face is searched in a window around its last box, scaled so the face is
    about `window_face` pixels. Faces come back in full-frame pixels."""
    found = []
    detector = faces.detector()
    for track in active:
        left, top, right, bottom = track.last_box
        side = max(right - left, bottom - top)
        if side / scale >= cfg.small_face or side < 6:
            continue
        height, width = full().shape[:2]
        margin = side  # faces move less than their size between passes
        x0, y0 = max(0, left - margin), max(0, top - margin)
        x1, y1 = min(width, right + margin), min(height, bottom + margin)
        window = full()[y0:y1, x0:x1]
        if window.shape[0] < 8 or window.shape[1] < 8:
            continue
        zoom = cfg.window_face / side
        size = fit_input_size(x1 - x0, y1 - y0, max(32, round(max(x1 - x0, y1 - y0) * zoom)))
        for face in detector.detect(window, input_size=size, threshold=cfg.quick_threshold):
            found.append(_shift(face, x0, y0))
    return found


def _shift(face: Face, dx: float, dy: float, factor: float = 1.0) -> Face:
    """A detection moved (and scaled) into another frame's pixels."""
    left, top, right, bottom = face.box
    box = ((left + dx) * factor, (top + dy) * factor, (right + dx) * factor, (bottom + dy) * factor)
    return Face(box, face.score, (face.keypoints + np.float32([dx, dy])) * np.float32(factor))


def _suppress(found: list[Face]) -> list[Face]:
    """Drop detections whose centre lies inside a stronger one (found is strongest first)."""
    kept: list[Face] = []
    for face in found:
        left, top, right, bottom = face.box
        cx, cy = (left + right) / 2, (top + bottom) / 2
        if not any(k.box[0] <= cx <= k.box[2] and k.box[1] <= cy <= k.box[3] for k in kept):
            kept.append(face)
    return kept


def _small_rgb(planes: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A yuv420p frame as RGB at `size` (even sides): the planes are shrunk before converting."""
    width, height = size
    y, u, v = media.yuv_planes(planes)
    small = np.empty((height * 3 // 2, width), np.uint8)
    small[:height] = cv2.resize(y, (width, height), interpolation=cv2.INTER_AREA)
    chroma = (width // 2, height // 2)
    quarter = (height // 2) * (width // 2)
    flat = small[height:].reshape(-1)
    flat[:quarter] = cv2.resize(u, chroma, interpolation=cv2.INTER_AREA).reshape(-1)
    flat[quarter:] = cv2.resize(v, chroma, interpolation=cv2.INTER_AREA).reshape(-1)
    return cv2.cvtColor(small, cv2.COLOR_YUV2RGB_I420)


def _histogram(planes: np.ndarray) -> np.ndarray:
    """Hue-saturation histogram of a yuv420p frame, from a 64x36 thumbnail of its planes."""
    thumb = [
        cv2.resize(plane, (64, 36), interpolation=cv2.INTER_NEAREST)
        for plane in media.yuv_planes(planes)
    ]
    small = cv2.cvtColor(cv2.merge(thumb), cv2.COLOR_YUV2RGB)
    hist = cv2.calcHist(
        [cv2.cvtColor(small, cv2.COLOR_RGB2HSV)], [0, 1], None, [16, 8], [0, 180, 0, 256]
    )
    return cv2.normalize(hist, hist)


def _sample_quality(chip: np.ndarray, keypoints: np.ndarray, side: int) -> float:
    """Larger, sharper, more frontal faces make better samples."""
    grey = cv2.cvtColor(chip, cv2.COLOR_RGB2GRAY)
    sharpness = float(cv2.Laplacian(grey, cv2.CV_32F).var())
    # SCRFD's keypoints: eyes, nose, mouth corners; a turned head puts the nose off the eyes'
    # middle.
    eyes = keypoints[:2].mean(axis=0)
    spread = max(float(np.linalg.norm(keypoints[0] - keypoints[1])), 1.0)
    yaw = abs(float(keypoints[2][0] - eyes[0])) / spread
    return min(side, 200) * (1.0 - min(yaw, 0.9)) * np.log1p(sharpness)


class _Lazy:
    """A value made on first call and kept: the colour frame, which not every pass needs."""

    def __init__(self, make: Callable[[], np.ndarray]) -> None:
        self.make, self.value = make, None

    def __call__(self) -> np.ndarray:
        if self.value is None:
            self.value = self.make()
        return self.value


def analyze(
    path,
    *,
    info: media.VideoInfo | None = None,
    start: int = 0,
    end: int | None = None,
    settings: Settings | None = None,
    embedder=None,
    progress: Callable[[float, str], None] | None = None,
    first_track_id: int = 1,
) -> Analysis:
    """Tracks of faces in frames [start, end) of the video at `path`."""
    import time

    cfg = settings or Settings()
    info = info or media.probe(path)
    end = info.frames if end is None else min(end, info.frames)
    embedder = embedder or faces.embedder()
    detector = faces.detector()
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
    small_size = (small_size[0] // 2 * 2, small_size[1] // 2 * 2)  # yuv420p: even sides
    quick_input = fit_input_size(*small_size, max(small_size))
    deep_input = fit_input_size(
        info.width, info.height, min(cfg.deep_side, max(info.width, info.height))
    )
    # Frames come as YUV (half the bytes of RGB, no conversion in ffmpeg); only the frames
    # that are looked at become RGB.
    for index, planes in media.read_frames(
        path, info, start=start, end=end, pixel_format="yuv420p", threads=cfg.decode_threads
    ):
        thumb = _histogram(planes)
        cut = (
            previous_thumb is not None
            and cv2.compareHist(thumb, previous_thumb, cv2.HISTCMP_BHATTACHARYYA)
            > cfg.cut_threshold
        )
        previous_thumb = thumb
        first = index == start
        if cut:
            cuts.append(index)
            active = []
        since = index - start
        deep = first or cut or since % cfg.deep_interval == 0
        quick = since % cfg.keyframe_interval == 0
        if not (deep or quick):
            continue
        # The tracker looks at the luma plane, small. Detection and chips need colour: the
        # quick pass a small RGB frame, thorough passes, small-face windows and chips the
        # full frame, converted only when one of them needs it.
        luma = media.yuv_planes(planes)[0]
        frame = cv2.resize(luma, small_size, interpolation=cv2.INTER_AREA) if scale > 1 else luma
        full = _Lazy(lambda planes=planes: cv2.cvtColor(planes, cv2.COLOR_YUV2RGB_I420))
        t = time.perf_counter()
        if deep:
            found = detector.detect(full(), input_size=deep_input, threshold=cfg.deep_threshold)
            windowed: set[int] = set()
        else:
            small = _small_rgb(planes, small_size) if scale > 1 else full()
            found = [
                _shift(face, 0, 0, scale)
                for face in detector.detect(
                    small, input_size=quick_input, threshold=cfg.quick_threshold
                )
            ]
            # Small faces found again this way do not make quick passes speak for the track:
            # half hidden behind another face, the window search misses them more often.
            looked_again = _redetect_small(full, active, scale, cfg)
            windowed = {id(face) for face in looked_again}
            found = sorted(found + looked_again, key=lambda f: -f.score)
        t_detect += time.perf_counter() - t
        kept = _suppress(found)
        full_boxes = [_to_full(f.box, 1.0, info) for f in kept]
        small_boxes = [tuple(v / scale for v in box) for box in full_boxes]
        # Match detections to open tracks by overlap with their last box, or with where the
        # face would be now if it kept moving as it did, or failing both by being a face of
        # its size close by (a face crossing the stage can move its own width between passes).
        matched = _assign(
            active,
            full_boxes,
            lambda t, b, at=index: max(
                _iou(t.last_box, b), _iou(_expected(t, at), b), _near(t.last_box, b, cfg)
            ),
            cfg.match_iou,
        )
        # Tracks still without a detection are followed to this frame by their correlation
        # tracker (started only now, from where the face was last detected); a detection where
        # the tracker went continues the track too.
        followed: dict[int, Box] = {}
        taken = {t.id for t in matched.values()}
        for track in active:
            if track.id in taken:
                continue
            box = _follow(track, frame, scale, info, cfg)
            if box is not None:
                followed[track.id] = box
        free = [j for j in range(len(full_boxes)) if j not in matched]
        waiting = [t for t in active if t.id in followed]
        if free and waiting:
            later = _assign(
                waiting, [full_boxes[j] for j in free], lambda t, b, to=followed: _iou(to[t.id], b),
                cfg.match_iou,
            )  # fmt: skip
            matched.update({free[j]: track for j, track in later.items()})
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
            track.detections += 1
            owner_of[j] = track
            track.keyframes.append((index, box))
            track.follower = None
            track.anchor = (frame, tuple(int(v) for v in small_boxes[j]))
            if not deep and id(kept[j]) not in windowed:
                track.quick_hits += 1
        # Tracks this pass could have seen but did not are gone. A quick pass only speaks for
        # tracks quick passes have found before; a deep pass speaks for all.
        for track in list(active):
            if track.id in seen:
                continue
            box = followed.get(track.id)
            if box is not None:
                if any(_iou(box, found) >= _SAME_FACE_IOU for found in full_boxes):
                    # Following a face another track was given in this pass: one face, one
                    # track, so this one ends here.
                    track.stop = index
                    active.remove(track)
                    continue
                # Not detected here, but the tracker is sure: keep it.
                track.keyframes.append((index, box))
                continue
            if deep or track.quick_hits:
                track.misses += 1
                if track.misses > cfg.misses_allowed:
                    active.remove(track)
        # Chips of this keyframe's faces, for choosing samples and checking identity later.
        if kept:
            t = time.perf_counter()
            chips = embedder.chips(full(), full_boxes, keypoints=[f.keypoints for f in kept])
            for j, box in enumerate(full_boxes):
                track = owner_of[j]
                side = min(box[2] - box[0], box[3] - box[1])
                quality = _sample_quality(chips[j], kept[j].keypoints, side)
                whole = not _at_edge(full_boxes[j], info)
                track.candidates.append((quality, index, full_boxes[j], chips[j], whole))
                if len(track.candidates) > cfg.max_candidates:
                    del track.candidates[1::2]  # every other one: still spread over the track
            t_chips += time.perf_counter() - t
        if progress and since % 30 == 0:
            progress(100.0 * since / total, "finding faces")

    t_decode = time.perf_counter() - t0 - t_detect - t_chips
    # One lone detection is more likely noise than a face, unless it opens a segment: the track
    # may go on in the segment before, and join() decides.
    tracks = [
        t
        for t in tracks
        if t.candidates and (_substantial(t, cfg) or (start > 0 and t.keyframes[0][0] == start))
    ]
    for track in tracks:
        track.follower = track.anchor = None
    t = time.perf_counter()
    identified: list[Track] = []
    for track in tracks:
        parts = _identify(track, embedder, cfg, first_id=next_id)
        next_id += len(parts) - 1
        identified += parts
    tracks = identified
    boundaries = sorted([*cuts, end])
    for track in tracks:
        _fill_boxes(track, boundaries, cfg, end)
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


def split(frames: int, parts: int, *, min_frames: int = 1) -> list[tuple[int, int]]:
    """[start, end) ranges cutting frames into `parts` nearly equal ranges of >= min_frames."""
    parts = max(1, min(parts, frames // max(min_frames, 1)))
    edges = [round(frames * k / parts) for k in range(parts + 1)]
    return [(a, b) for a, b in zip(edges, edges[1:], strict=False) if b > a] or [(0, frames)]


# A part shorter than this is not worth its own process: each part opens with a thorough pass.
MIN_PART_SECONDS = 5.0


def split_for_processes(info: media.VideoInfo, processes: int) -> list[tuple[int, int]]:
    """A whole video cut into one part per process, none shorter than MIN_PART_SECONDS."""
    return split(info.frames, processes, min_frames=int(MIN_PART_SECONDS * (info.fps or 30)))


# Set in the parent just before the pool forks, read by the children: where each segment's
# progress goes (one float per segment, no lock needed for a single writer per slot).
_shared_progress = None


def _die_with_parent(parent: int) -> None:
    """Pool initializer: have Linux kill this process when its parent dies, so a worker killed
    mid-job (OOM killer, SIGKILL, a lost machine) leaves no segment processes running on."""
    import ctypes
    import signal

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: nothing to set
        return
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)


def analyze_segment(
    path, info, start, end, number, *, settings=None, embedder=None, report=None
) -> Analysis:
    """analyze() segment `number` of a video, its track ids starting at number * 100000 + 1 so
    no two segments share one; progress goes to `report`, or into the shared array when run in
    a pool process."""

    def shared(percent: float, _stage: str) -> None:
        if _shared_progress is not None:
            _shared_progress[number] = percent

    return analyze(
        path,
        info=info,
        start=start,
        end=end,
        settings=settings,
        embedder=embedder,
        progress=report or shared,
        first_track_id=1 + number * 100_000,
    )


def analyze_parallel(
    path,
    *,
    info: media.VideoInfo,
    bounds: list[tuple[int, int]],
    processes: int,
    settings: Settings | None = None,
    embedder=None,
    progress: Callable[[float, str], None] | None = None,
) -> Analysis:
    """analyze() every [start, end) of bounds on up to `processes` forked processes, joined.

    Each process decodes only its own frames, so memory per process stays as flat as analyze()'s
    and the segments share the machine's cores. Track ids of segment n start at n * 100000 + 1,
    as segment jobs number them, and are renumbered by join().
    """
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    global _shared_progress
    starts = [start for start, _ in bounds]
    if processes <= 1 or len(bounds) == 1:
        parts = []
        for number, (start, end) in enumerate(bounds):
            span = (end - start) / max(info.frames, 1)
            done = start / max(info.frames, 1)

            def report(p, stage, span=span, done=done):
                if progress:
                    progress(100 * done + span * p, stage)

            parts.append(
                analyze_segment(
                    path,
                    info,
                    start,
                    end,
                    number,
                    settings=settings,
                    embedder=embedder,
                    report=report,
                )  # fmt: skip
            )
        return join(parts, starts, settings=settings)

    # Load the detector and the embedding model once here; the forked children share them.
    embedder = (embedder or faces.embedder()).load()
    # A process per core keeps every core busy: decoder threads would only compete for them.
    in_pool = replace(settings or Settings(), decode_threads=1)
    faces.detector()
    context = multiprocessing.get_context("fork")
    _shared_progress = context.Array("d", len(bounds), lock=False)
    sizes = [end - start for start, end in bounds]
    try:
        with ProcessPoolExecutor(
            min(processes, len(bounds)),
            mp_context=context,
            initializer=_die_with_parent,
            initargs=(os.getpid(),),
        ) as pool:
            futures = [
                pool.submit(
                    analyze_segment,
                    path,
                    info,
                    start,
                    end,
                    n,
                    settings=in_pool,
                    embedder=embedder,
                )  # fmt: skip
                for n, (start, end) in enumerate(bounds)
            ]
            pending = set(futures)
            try:
                while pending:
                    _done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                    if progress:
                        percent = sum(
                            size * min(100.0, value)
                            for size, value in zip(sizes, _shared_progress, strict=True)
                        ) / max(sum(sizes), 1)
                        progress(percent, "finding faces")
            except BaseException:
                # The job was stopped (its video deleted, say): the segments must not run on
                # to their end first, as leaving the pool's block would have them do.
                for process in list(getattr(pool, "_processes", {}).values()):
                    process.terminate()
                pool.shutdown(wait=False, cancel_futures=True)
                raise
            parts = [future.result() for future in futures]
    finally:
        _shared_progress = None
    if progress:
        progress(100.0, "faces found")
    return join(parts, starts, settings=settings)


def _substantial(track: Track, cfg: Settings) -> bool:
    return (
        track.detections >= cfg.min_track_detections
        or len(track.keyframes) >= 3 * cfg.min_track_detections
    )


def _identify(track: Track, embedder, cfg: Settings, first_id: int) -> list[Track]:
    """Embed a track's samples; split it where it jumped from one person's face to another's.

    Samples are the best chip of each of `samples_per_track` stretches of the track, so they
    span it. Where two neighbouring samples are further apart than `identity_distance` (two
    faces crossed and the track followed the wrong one), the chips between them are bisected,
    one embedding per step, down to the two detections the jump lies between. Parts keep
    their own samples (topped up with their best chips) and are named on their own later.
    """
    candidates, keyframes = track.candidates, track.keyframes  # in frame order
    cache: dict[int, np.ndarray] = {}
    apart_limit = cfg.identity_distance or embedder.same_person_distance

    def embed(positions: list[int]) -> None:
        todo = [k for k in positions if k not in cache]
        if todo:
            vectors = embedder.embed_chips(np.stack([candidates[k][3] for k in todo]))
            cache.update(zip(todo, vectors, strict=True))

    def distance(a: int, b: int) -> float:
        embed([a, b])
        return float(np.linalg.norm(cache[a] - cache[b]))

    def best(positions) -> list[int]:
        return sorted(positions, key=lambda k: -candidates[k][0])

    stretches = np.array_split(
        np.arange(len(candidates)), min(cfg.samples_per_track, len(candidates))
    )
    probes = [best(stretch)[0] for stretch in stretches]
    embed(probes)
    cuts = []  # positions where a new person's part starts
    for a, b in zip(probes, probes[1:], strict=False):
        if distance(a, b) <= apart_limit:
            continue
        low, high = a, b
        while high - low > 1:
            middle = (low + high) // 2
            if distance(middle, low) <= distance(middle, high):
                low = middle
            else:
                high = middle
        # Two people only if the faces on either side agree among themselves: one odd chip
        # (a turned head, a blur) is not another person, nor is a part of one detection.
        previous = cuts[-1] if cuts else 0
        before = [cache[k] for k in cache if previous <= k < high]
        after = [cache[k] for k in cache if high <= k <= b]
        apart = _group_distance(before, after)
        if (
            apart > apart_limit
            and high - previous >= cfg.min_track_detections
            and len(candidates) - high >= cfg.min_track_detections
        ):
            cuts.append(high)

    parts = []
    edges = [0, *cuts, len(candidates)]
    for number, (lo, hi) in enumerate(zip(edges, edges[1:], strict=False)):
        first = candidates[lo][1]
        after = candidates[hi][1] if hi < len(candidates) else None
        part = (
            track if number == 0 else Track(id=first_id + number - 1, quick_hits=track.quick_hits)
        )
        part.keyframes = [
            (f, b)
            for f, b in keyframes
            if f >= (first if number else 0) and (after is None or f < after)
        ]
        part.stop = after
        if cuts:
            part.detections = hi - lo
        # Samples: the part's best chips, and the ones embedded already (spread over it).
        known = [k for k in cache if lo <= k < hi]
        chosen = known + [k for k in best(range(lo, hi))[: cfg.samples_per_track] if k not in known]
        # A face cut off by the frame edge embeds as nobody in particular: left out where the
        # part has two whole faces to go on.
        whole = [k for k in chosen if candidates[k][4]]
        whole_in_part = [k for k in range(lo, hi) if candidates[k][4]]
        if len(whole) >= 2:
            chosen = whole
        elif len(whole_in_part) >= 2:
            chosen = best(whole_in_part)[: cfg.samples_per_track]
        embed(chosen)
        chosen = best(chosen)
        part.samples = np.stack([cache[k] for k in chosen])
        part.sample_boxes = [(candidates[k][1], candidates[k][2]) for k in chosen]
        part.thumbnail = _strip([candidates[k][3] for k in chosen], cfg.samples_per_track)
        part.candidates = []
        parts.append(part)
    return parts


def _group_distance(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    """Distance between the mean directions of two groups of embeddings. Means of unit
    vectors are shorter than one, and closer together than any of their members; scaled back
    to the members' length they compare on the same scale as two samples do."""
    mean_a, mean_b = np.mean(a, axis=0), np.mean(b, axis=0)
    length = float(np.mean([np.linalg.norm(v) for v in (*a, *b)]))
    unit_a = mean_a / max(float(np.linalg.norm(mean_a)), 1e-12)
    unit_b = mean_b / max(float(np.linalg.norm(mean_b)), 1e-12)
    return length * float(np.linalg.norm(unit_a - unit_b))


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
    stop = min([b for b in boundaries if b > last] + [last + gap, end, track.stop or end])
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


def join(parts: list[Analysis], starts: list[int], *, settings: Settings | None = None) -> Analysis:
    """Join segment analyses into one, linking tracks that run across a seam."""
    cfg = settings or Settings()
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
                if best is not None and _iou(best.boxes[seam - 1], box) >= cfg.match_iou:
                    best.boxes.update(track.boxes)
                    best.keyframes += track.keyframes
                    best.detections += track.detections
                    best.samples = np.concatenate([best.samples, track.samples])
                    best.sample_boxes += track.sample_boxes
                    ending.remove(best)
                    continue
            tracks.append(track)
    tracks = [t for t in tracks if _substantial(t, cfg)]
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
                "detections": track.detections,
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
        samples=np.concatenate(samples) if samples else np.empty((0, 0), np.float32),
        thumbs=np.stack(thumbs) if thumbs else np.empty((0, 0, 0, 3), np.uint8),
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
        track.detections = t.get("detections", t["samples"])
        track.boxes = {row[0]: tuple(row[1:]) for row in t["boxes"]}
        track.sample_boxes = [(f, tuple(b)) for f, b in t["sample_boxes"]]
        track.samples = samples[offset : offset + t["samples"]]
        track.thumbnail = thumbs[k]
        offset += t["samples"]
        tracks.append(track)
    return Analysis(
        tracks=tracks, frames=meta["frames"], cuts=meta["cuts"], timings=meta["timings"]
    )
