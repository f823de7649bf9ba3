"""What the analysis makes: tracks of one face each, with boxes for every frame, and the
settings it runs with. Boxes are (left, top, right, bottom) in pixels of the displayed frame."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from core.media.probe import VideoInfo

Box = tuple[int, int, int, int]

# Two boxes overlapping this much in one frame are taken for the same face.
SAME_FACE_IOU = 0.5


@dataclass
class Settings:
    """Knobs of the analysis; the defaults were measured on the dev stage videos."""

    # Quick passes and the tracker look at frames scaled to this width (never upscaled); SCRFD
    # at 640x384 finds every unhidden face of stage-dev, profiles included, in 9.6 ms a frame.
    # At 960 it found more of the faces of harsh stage videos (0.92 against 0.79 of one video's
    # known faces on sampled frames), but the analysis of stage-dev took 26% more CPU, for
    # +0.01-0.04 of faces detected once weak detections continue tracks, and named right went
    # down on one of three videos.
    analysis_width: int = 640
    keyframe_interval: int = 12  # frames between quick detection passes
    # Frames between thorough passes (a larger input), besides the one at every cut.
    deep_interval: int = 180
    # The thorough pass's longest input side (never above the frame's): on wide 1080p stages
    # SCRFD at full size finds faces of 56-70 px that 1280 wide scores under 0.5 (two such
    # tracks of w302 were missed whole: detected 0.937 -> 0.997), for 88 ms a pass against 38.
    deep_side: int = 1920
    # A thorough pass again this many frames into each shot (the first quick pass from then
    # on), where the quick pass sees the frame at under half its size (1080p and up; 0: never).
    # A face turned, dim or covered in a shot's first frame is missed by its thorough pass,
    # and a small one (56-70 px of 1080p, 19-23 px on the quick pass's frame, which scores it
    # under 0.1) is then missed for the whole shot. On three 1080p harsh stage videos: faces
    # detected +1.2 to +2.8 points, for 7% more analysis CPU there; at 12 frames in, as much
    # on two of them and nothing on the third. On 720p (a face of 56 px is 28 px on the quick
    # pass's frame, which finds it) it found nothing more on three videos, for 8% more CPU.
    second_look: int = 24
    quick_threshold: float = 0.5  # SCRFD face probability that opens a track, quick pass
    deep_threshold: float = 0.5
    # A weaker detection only continues a track that is already there (as ByteTrack does):
    # faces turning, blurring or half hidden score 0.3-0.5, and a track lost there is a face
    # left unnamed; on its own such a score is not enough to say a face is there.
    continue_threshold: float = 0.3
    # A thorough pass's weak detection from this score up (under the opening score) on no
    # track is shown to a second detector, dlib's MMOD CNN (core.faces.mmod): where it finds a
    # face too, the detection opens a track; under `continue_threshold` it is kept only then
    # (0: no second opinion). SCRFD-500M scores some faces under 0.5 whatever their size (a
    # tilted face lit red, 0.1-0.3 through a 31-frame shot). On seven development stage videos
    # the thorough passes held 0-3 such detections each, all on faces; MMOD confirmed 8 of 12,
    # and faces detected went up on four (0.959 -> 0.978, 0.975 -> 1.000 on 1080p; 0.912 ->
    # 0.934 on a harsh 720p), down on none.
    second_opinion: float = 0.2
    # ...at most this many a pass (each costs 0.1-0.2 s; a crowd's faint faces would otherwise
    # cost seconds a pass), and none under this many pixels a side (the stage faces confirmed
    # were 47 px and up; MMOD's window is 80 px, and the face is scaled to 100 for it).
    second_opinions: int = 3
    second_opinion_side: int = 32
    # Tracked faces smaller than this (analysis-frame pixels) are searched for again in a
    # window around them, scaled so the face is `window_face` pixels: SCRFD at 640 input finds
    # 0.64 of faces under 80 px of a 1080p frame (under 27 px at 640).
    small_face: int = 40
    window_face: int = 64
    # A tracked face a quick pass found nothing at is looked for again where it would be, at
    # this size (0: not looked for).
    missed_face: int = 128
    misses_allowed: int = 1  # quick passes a track may miss before it is closed
    # A closed track is continued by a face found near where it would be within this many
    # frames of its closing (a face turned away or behind a hand for a second, found again).
    lost_frames: int = 36
    # Two tracks named the same member in one shot, this many frames apart at most, with the
    # second coming on near where the first went off, are one face lost behind another face
    # (or a hand) for a while: boxed through the frames between (0: never).
    bridge_frames: int = 60
    # Between detections a correlation tracker follows each face; below this peak-to-sidelobe
    # ratio its answer is not trusted.
    min_tracker_psr: float = 7.0
    match_iou: float = 0.25  # a detection continues a track above this overlap
    # Or, failing any overlap, a face of its size this many face sizes away: a dancer crossing
    # the stage at 8 px a frame moves 96 px between quick passes, 1.6 times a 60 px face.
    near_reach: float = 2.0
    # ...of about its size: the longer sides within this ratio. The small-face windows' boxes
    # of one face vary more (59 then 91 px two passes apart on a 1080p harsh stage, where the
    # track went on beside the face and a new one named it): for tracks only they have found,
    # the wider ratio (on six harsh and plain videos: named right +2.4 points on one, the same
    # on five).
    near_size: float = 1.5
    near_size_windowed: float = 2.0
    # Where a pass's face could continue either of two tracks about as well (tracker.DOUBT),
    # or a track either of two faces, each face's chip is compared with each track's last
    # chip, and matching goes by looks as well as boxes. On a 1080p harsh crowd two small
    # faces crossing swapped tracks; each track then held two people, and neither was named:
    # named right 0.896 -> 0.938 there, for 1.9 CPU-s (6%) of its analysis. On 720p, on six
    # harsh and plain videos: named right +0.4 and +0.7 points on two harsh ones (a stranger's
    # 2.1% of faces no longer named on one), the same on four, for 0-5% more analysis CPU.
    tell_apart: bool = True
    # Bhattacharyya distance of hue-saturation histograms between frames: over 9 stage videos
    # (93 cuts, 8,700 frames) cuts score 0.32 and up, frames within a shot 0.085 at most.
    cut_threshold: float = 0.2
    # ...and a cut only where the edges changed too (correlation of the two frames' gradient
    # magnitudes below this): on 5 stage videos, 3 of them lit like a stage, the 46 cuts
    # correlate 0.40 at most, and the 26 strobe and flicker frames whose colours jumped as
    # much as a cut's 0.82 and up. Each such false cut had ended every track on the stage.
    cut_edges: float = 0.6
    # On large frames (where the quick pass sees them at under half their size) the faces a
    # quick pass chips are found again in a window this much of a side wider on every side,
    # scaled so the face is `sharpen_face` pixels, for keypoints to cut the chip along (0:
    # never). On four 1080p harsh stage videos the members' tracks came 0.007 nearer their
    # own gallery on average, and named right went 0.858 -> 0.909 on one, the same on three,
    # for 4-8% more analysis CPU there. On 720p, done to every face, the tracks came 0.0015
    # nearer for 8-10% more CPU, so it does not run there.
    sharpen_face: int = 112
    sharpen_margin: float = 0.4
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
    # Its last chip's embedding, where matching had to tell faces apart by their looks.
    look: np.ndarray | None = None
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
    opened: int = 0  # the frame of its first detection; boxes before it were followed back
    # The parts of one track split where its face seemed to change person share this (the
    # track's id before the split); None for a track never split.
    kin: int | None = None
    # Its shot ended before another pass could see the face (a shot shorter than a keyframe
    # interval, or the video's last frames): one detection is all there could be.
    brief: bool = False

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


def iou(a: Box, b: Box) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def at_edge(box: Box, info: VideoInfo) -> bool:
    """Whether a full-frame box touches the frame's edge (the face may go on beyond it)."""
    left, top, right, bottom = box
    return left <= 1 or top <= 1 or right >= info.width - 2 or bottom >= info.height - 2


# Another face covering this share of a face's box makes it crowded: its chip holds some of
# the other person, which neither names it well nor shows it alone on the review strip.
CROWDED_SHARE = 0.1


def crowded(box: Box, others: list[Box]) -> bool:
    """Whether another face's box in the same frame covers enough of `box` to mix them."""
    left, top, right, bottom = box
    area = max(1, (right - left) * (bottom - top))
    for other in others:
        if other is box:
            continue
        width = min(right, other[2]) - max(left, other[0])
        height = min(bottom, other[3]) - max(top, other[1])
        if width > 0 and height > 0 and width * height >= CROWDED_SHARE * area:
            return True
    return False


def to_full(box, scale: float, info: VideoInfo) -> Box:
    """An analysis-frame box in full-frame pixels, its far edges kept inside the frame."""
    left, top, right, bottom = box
    return (
        int(left * scale),
        int(top * scale),
        int(min(info.width - 1, right * scale)),
        int(min(info.height - 1, bottom * scale)),
    )


def substantial(track: Track, cfg: Settings) -> bool:
    """Enough of a track to keep: one lone detection is more likely noise than a face, unless
    no other pass could have seen it."""
    return (
        track.brief
        or track.detections >= cfg.min_track_detections
        or len(track.keyframes) >= 3 * cfg.min_track_detections
    )


def pace_keys(track: Track) -> tuple[tuple[int, Box], tuple[int, Box]] | None:
    """The two keyframes a track's pace is measured between: its last two, or, where the one
    before the last was followed back from its first detection (a frame from the next, where
    a tracker's jitter is no pace), the first it was followed back to. None for one keyframe."""
    keys = track.keyframes
    if len(keys) < 2:
        return None
    before = keys[-2] if keys[-2][0] >= track.opened else keys[0]
    return before, keys[-1]


def between(a: Box, b: Box, share: float) -> Box:
    """The box `share` of the way from `a` to `b` (0: a, 1: b), in whole pixels."""
    return tuple(int(round(p + share * (q - p))) for p, q in zip(a, b, strict=True))


def fill_boxes(
    track: Track, boundaries: list[int], cfg: Settings, end: int, size: tuple[int, int]
) -> None:
    """Boxes for every frame: interpolated between detections, and after the last one carried
    on as it was moving until a pass that could have seen the face did not, never across a
    cut, kept inside the frame (`size`: width, height). A box held still there stayed behind
    a face crossing the stage: 25 of 1,780 named boxes of a harsh stage video had no face
    under them, in runs of 4-8 frames."""
    keys = track.keyframes
    for (f0, b0), (f1, b1) in zip(keys, keys[1:], strict=False):
        for f in range(f0, f1):
            track.boxes[f] = between(b0, b1, (f - f0) / (f1 - f0))
    last, box = keys[-1]
    gap = cfg.keyframe_interval if track.quick_hits else cfg.deep_interval
    stop = min([b for b in boundaries if b > last] + [last + gap, end, track.stop or end])
    step = (0.0, 0.0)
    paced = pace_keys(track)
    if paced is not None:
        (f0, b0), (f1, b1) = paced
        step = (
            (b1[0] + b1[2] - b0[0] - b0[2]) / 2 / (f1 - f0),
            (b1[1] + b1[3] - b0[1] - b0[3]) / 2 / (f1 - f0),
        )
    width, height = size
    for f in range(last, stop):
        dx = int(round(step[0] * (f - last)))
        dy = int(round(step[1] * (f - last)))
        dx = max(-box[0], min(width - 1 - box[2], dx))
        dy = max(-box[1], min(height - 1 - box[3], dy))
        track.boxes[f] = (box[0] + dx, box[1] + dy, box[2] + dx, box[3] + dy)


def bridge_hidden(tracks: list[Track], cuts: list[int], cfg: Settings) -> None:
    """Box a named face through the frames it was hidden in: where two tracks named the same
    member follow each other in one shot within `bridge_frames`, and the later one comes on
    near where the earlier one went off, the earlier one's box is carried across the gap
    (interpolated between the two). A member is named once a frame, so such tracks never
    share frames; a third one between them makes two pairs."""
    if not cfg.bridge_frames:
        return
    named: dict[str, list[Track]] = {}
    for track in tracks:
        if track.label is not None and track.boxes:
            named.setdefault(track.label, []).append(track)
    for same in named.values():
        same.sort(key=lambda t: t.first_frame)
        for before, after in zip(same, same[1:], strict=False):
            last, first = before.last_frame, after.first_frame
            if not 1 < first - last <= cfg.bridge_frames + 1:
                continue
            if any(last < cut <= first for cut in cuts):
                continue
            if any(f in t.boxes for t in same for f in range(last + 1, first)):
                continue  # another of her tracks is there (one with a gap in its boxes)
            a, b = before.boxes[last], after.boxes[first]
            side_a, side_b = max(a[2] - a[0], a[3] - a[1]), max(b[2] - b[0], b[3] - b[1])
            if min(side_a, side_b) <= 0 or max(side_a, side_b) > 2 * min(side_a, side_b):
                continue
            # As far as `near_reach` face sizes a keyframe interval allows, for the gap's
            # first two intervals; half that pace after (a dancer does not cross the whole
            # stage unseen).
            moved = math.hypot((a[0] + a[2] - b[0] - b[2]) / 2, (a[1] + a[3] - b[1] - b[3]) / 2)
            paces = max(2.0, 1.0 + (first - last) / (2 * cfg.keyframe_interval))
            if moved > paces * cfg.near_reach * (side_a + side_b) / 2:
                continue
            for f in range(last + 1, first):
                before.boxes[f] = between(a, b, (f - last) / (first - last))
