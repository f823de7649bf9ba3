"""The analysis of one stretch of video: find faces on keyframes, follow them between, link
them into tracks, and gather chips to name them by.

Quick passes run every `keyframe_interval` frames on a small frame; thorough passes (a larger
input) at the first frame, at every cut and every `deep_interval` frames, and on large frames
once more early in each shot (`Settings.second_look`). Between detections
a correlation tracker follows faces a pass missed. The result is tracks of unnamed faces with
boxes for every frame and sample embeddings (tracking.naming names them).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

import cv2
import dlib
import numpy as np

from core.faces import embed
from core.faces.detect import Face, fit_input_size, window_around
from core.media.decode import read_frames, scaled_size
from core.media.draw import yuv_planes
from core.media.probe import VideoInfo, probe
from core.tracking.samples import identify, sample_quality
from core.tracking.tracks import (
    SAME_FACE_IOU,
    Analysis,
    Box,
    Settings,
    Track,
    at_edge,
    crowded,
    fill_boxes,
    iou,
    pace_keys,
    substantial,
    to_full,
)


def analyze(
    path,
    *,
    info: VideoInfo | None = None,
    start: int = 0,
    end: int | None = None,
    settings: Settings | None = None,
    embedder=None,
    progress: Callable[[float, str], None] | None = None,
    first_track_id: int = 1,
) -> Analysis:
    """Tracks of faces in frames [start, end) of the video at `path`."""
    info = info or probe(path)
    end = info.frames if end is None else min(end, info.frames)
    tracker = Tracker(
        info, start, end, settings or Settings(), embedder or embed.embedder(), first_track_id
    )
    return tracker.run(path, progress)


class Tracker:
    """One run of analyze(): frames in, tracks out, a method for each step of a keyframe."""

    def __init__(
        self, info: VideoInfo, start: int, end: int, cfg: Settings, embedder, first_id: int
    ) -> None:
        self.info, self.start, self.end, self.cfg = info, start, end, cfg
        self.embedder, self.detector = embedder, embed.detector()
        self.scale, self.small_size = _scaled(info, cfg.analysis_width)
        # The quick pass sees the frame at under half its size (1080p and up): its faces are
        # small there, and so is what it says of them.
        self.large = self.scale > 2
        self.quick_input = fit_input_size(*self.small_size, max(self.small_size))
        self.deep_input = fit_input_size(
            info.width, info.height, min(cfg.deep_side, max(info.width, info.height))
        )
        self.tracks: list[Track] = []
        self.active: list[Track] = []  # tracks a detection may continue
        # Tracks closed by missed passes, and where: a face found again near where one would be
        # now continues it (ByteTrack's lost tracks).
        self.lost: list[tuple[int, Track]] = []
        self.cuts: list[int] = []
        # This frame and those since the last two passes (luma, every `thin`-th pixel of every
        # `thin`-th row: 0.2 MB a frame at 1080p, against 3.1 MB for the decoded frame), and
        # where the shot began: a face first found by a pass is followed back (follow_back).
        self.recent: deque[tuple[int, np.ndarray]] = deque(maxlen=2 * cfg.keyframe_interval + 1)
        self.thin = max(1, round(self.scale))
        self.shot_start = start
        self.previous_thumb: tuple = (None, None)  # the last frame's histogram, and its planes
        self.next_id = first_id
        self.looked: dict[int, np.ndarray] = {}  # this pass: id(face) -> embedding, if looked at
        self.spent = {
            "detect": 0.0,
            "look again": 0.0,
            "second opinion": 0.0,
            "tell apart": 0.0,
            "sharpen": 0.0,
            "chips": 0.0,
        }

    def run(self, path, progress: Callable[[float, str], None] | None) -> Analysis:
        t0 = time.perf_counter()
        total = max(self.end - self.start, 1)
        # Frames come as YUV (half the bytes of RGB, no conversion in ffmpeg); only the frames
        # that are looked at become RGB.
        frames = read_frames(
            path,
            self.info,
            start=self.start,
            end=self.end,
            pixel_format="yuv420p",
            threads=self.cfg.decode_threads,
        )
        for index, planes in frames:
            since = index - self.start
            cut = self.is_cut(planes)
            if cut:
                self.cuts.append(index)
                self.follow_on()
                self.active, self.lost = [], []
                self.recent.clear()
                self.shot_start = index
            self.recent.append((index, self.thinned(planes)))
            deep = since == 0 or cut or since % self.cfg.deep_interval == 0
            if not (deep or since % self.cfg.keyframe_interval == 0):
                continue
            deep = deep or self.second_look(index)
            self.keyframe(index, planes, deep)
            if progress and since % 30 == 0:
                progress(100.0 * since / total, "finding faces")
        self.follow_on()
        t_decode = time.perf_counter() - t0 - sum(self.spent.values())
        t = time.perf_counter()
        tracks = self.finish()
        timings = {"decode": t_decode, **self.spent, "embed": time.perf_counter() - t}
        if progress:
            progress(100.0, "faces found")
        return Analysis(
            tracks=tracks,
            frames=self.end - self.start,
            cuts=self.cuts,
            timings={key: round(value, 3) for key, value in timings.items()},
        )

    def second_look(self, index: int) -> bool:
        """Whether this quick pass's keyframe is the shot's second thorough look (see
        `Settings.second_look`): the first keyframe that far into the shot, on frames the quick
        pass sees at under half their size."""
        first = self.cfg.second_look
        if not first or not self.large:
            return False
        return first <= index - self.shot_start < first + self.cfg.keyframe_interval

    def is_cut(self, planes: np.ndarray) -> bool:
        """A cut: the frame's colours jump from the last frame's, and so do its shapes. Stage
        light (a strobe, a flicker, a change of tint) moves the colours of a whole frame
        without moving its edges."""
        thumb = _histogram(planes)
        (previous, before), self.previous_thumb = self.previous_thumb, (thumb, planes)
        if previous is None:
            return False
        distance = cv2.compareHist(thumb, previous, cv2.HISTCMP_BHATTACHARYYA)
        if distance <= self.cfg.cut_threshold:
            return False
        return _edge_correlation(before, planes) < self.cfg.cut_edges

    def keyframe(self, index: int, planes: np.ndarray, deep: bool) -> None:
        # The tracker looks at the luma plane, small. Detection and chips need colour: the
        # quick pass a small RGB frame, thorough passes, small-face windows and chips the
        # full frame, converted only when one of them needs it.
        luma = yuv_planes(planes)[0]
        small = self.small_size
        frame = cv2.resize(luma, small, interpolation=cv2.INTER_AREA) if self.scale > 1 else luma
        full = _Lazy(lambda: cv2.cvtColor(planes, cv2.COLOR_YUV2RGB_I420))
        t = time.perf_counter()
        found, windowed = self.detect(planes, full, deep)
        self.spent["detect"] += time.perf_counter() - t
        kept = _suppress(found)
        opens = self.cfg.deep_threshold if deep else self.cfg.quick_threshold
        confirmed: set[int] = set()
        if deep:
            t = time.perf_counter()
            kept, confirmed = self.second_opinion(index, full, kept)
            self.spent["second opinion"] += time.perf_counter() - t
        strong = {j for j, face in enumerate(kept) if face.score >= opens} | confirmed
        boxes = [to_full(f.box, 1.0, self.info) for f in kept]
        again: set[int] = set()
        if not deep:
            t = time.perf_counter()
            again = self.look_again(index, full, kept, boxes)
            windowed |= again
            self.spent["look again"] += time.perf_counter() - t
        self.looked = {}
        matched, followed = self.match(index, frame, boxes, strong, kept, full)
        if not deep:
            strong |= self.look_closer(full, kept, boxes, strong, matched)
        # A weak detection that continues no track is not taken for a face.
        taken = [j for j in range(len(kept)) if j in strong or j in matched]
        matched = {k: matched[j] for k, j in enumerate(taken) if j in matched}
        kept, boxes = [kept[j] for j in taken], [boxes[j] for j in taken]
        owners = self.extend(index, frame, kept, boxes, matched, quick=not deep, windowed=windowed)
        if index > self.shot_start:
            self.follow_back([t for t in owners if t.opened == index], index)
        self.close(index, boxes, followed, {t.id for t in owners}, deep)
        # Faces found only by looking again are boxed, but not sampled: a face the quick pass
        # could not see is dim, tilted or turned, and its chip names it worse.
        chipped = [j for j, face in enumerate(kept) if id(face) not in again]
        if chipped and not deep and self.large:
            t = time.perf_counter()
            self.sharpen(full, kept, boxes, chipped)
            self.spent["sharpen"] += time.perf_counter() - t
        if chipped:
            t = time.perf_counter()
            self.collect_chips(
                index,
                full(),
                [kept[j] for j in chipped],
                [boxes[j] for j in chipped],
                [owners[j] for j in chipped],
            )
            self.spent["chips"] += time.perf_counter() - t

    def thinned(self, planes: np.ndarray) -> np.ndarray:
        """The frame's luma, thinned to about the analysis size (a strided copy: no filtering,
        which cost 1.2 ms a 1080p frame)."""
        luma = yuv_planes(planes)[0]
        return np.ascontiguousarray(luma[:: self.thin, :: self.thin])

    def follow_back(self, tracks: list[Track], index: int) -> None:
        """Faces first found on this pass were most likely there before it: each is followed
        back through the frames since the last pass (since the shot began, when that was at
        most two passes ago) for as long as the correlation tracker is sure of it. A face a
        shot's first pass missed (turned, blurred, behind a hand) was otherwise unboxed until
        a pass found it: up to 23 frames of each such shot."""
        if not tracks:
            return
        cfg = self.cfg
        reach = 2 * cfg.keyframe_interval
        since = (
            self.shot_start if index - self.shot_start <= reach else index - cfg.keyframe_interval
        )
        (_, now), *before = reversed(self.recent)  # this frame first
        earlier = [(f, thin) for f, thin in before if since <= f]
        if not earlier:
            return
        for track in tracks:
            track.keyframes[:0] = self.followed(now, track.last_box, earlier)[::-1]

    def follow_on(self) -> None:
        """At a shot's end: a face found once by a pass after which none came in its shot
        (see `no_pass_after`) is followed on by the correlation tracker through the shot's
        frames since, for as long as it is sure, for a box that keeps up with it. Held still,
        a box fell off a face crossing the stage within 5 frames."""
        frames = dict(self.recent)
        for track in self.active:
            index, box = track.keyframes[-1]  # its detection, unless a pass followed it on
            if track.detections != 1 or index != track.opened or index not in frames:
                continue
            if not self.no_pass_after(index):
                continue
            later = [(f, thin) for f, thin in self.recent if f > index]
            track.keyframes += self.followed(frames[index], box, later)

    def followed(self, start: np.ndarray, box: Box, frames) -> list[tuple[int, Box]]:
        """The face in `box` (full size) on the thinned frame `start`, followed by the
        correlation tracker through `frames` ((index, thinned frame), in the order given) for as
        long as it is sure of it (the PSR gate of every followed box): (index, full-size box)."""
        follower = dlib.correlation_tracker()
        follower.start_track(start, dlib.rectangle(*(int(v / self.thin) for v in box)))
        found = []
        for f, thin in frames:
            where = _sure_step(follower, thin, self.thin, self.info, self.cfg)
            if where is None:
                break
            found.append((f, where))
        return found

    def detect(self, planes: np.ndarray, full, deep: bool) -> tuple[list[Face], set[int]]:
        """Faces of this keyframe, strongest first, in full-frame pixels; and the ids of those
        only the small-face windows found."""
        cfg = self.cfg
        weakest = min(cfg.continue_threshold, cfg.deep_threshold if deep else cfg.quick_threshold)
        if deep:
            if cfg.second_opinion:
                weakest = min(weakest, cfg.second_opinion)
            found = self.detector.detect(full(), input_size=self.deep_input, threshold=weakest)
            return found, set()
        small = _small_rgb(planes, self.small_size) if self.scale > 1 else full()
        found = [
            _shift(face, 0, 0, self.scale)
            for face in self.detector.detect(small, input_size=self.quick_input, threshold=weakest)
        ]
        # Small faces found again this way do not make quick passes speak for the track:
        # half hidden behind another face, the window search misses them more often.
        looked_again = _redetect_small(self.detector, full, self.active, self.scale, cfg, weakest)
        return sorted(found + looked_again, key=lambda f: -f.score), {id(f) for f in looked_again}

    def second_opinion(self, index: int, full, kept: list[Face]) -> tuple[list[Face], set[int]]:
        """A thorough pass's weak detections (from `Settings.second_opinion` up) where no open
        track's face is, shown to a second detector, the strongest first and at most
        `second_opinions` of them: the indices of those it finds a face at (they open tracks),
        and the faces kept. The faintest (under `continue_threshold`) are kept only where it
        does; the others stay weak detections, as without it."""
        cfg = self.cfg
        if not cfg.second_opinion:
            return kept, set()
        opens = cfg.deep_threshold
        tracked = [b for t in self.active for b in (t.last_box, _expected(t, index))]
        faces, confirmed = [], set()
        asked = 0
        for face in kept:  # strongest first
            if face.score < opens:
                box = to_full(face.box, 1.0, self.info)
                sure = False
                if (
                    asked < cfg.second_opinions
                    and min(box[2] - box[0], box[3] - box[1]) >= cfg.second_opinion_side
                    and not any(iou(box, b) >= cfg.match_iou for b in tracked)
                ):
                    asked += 1
                    sure = embed.face_check().face_at(full(), box) is not None
                if sure:
                    confirmed.add(len(faces))
                elif face.score < cfg.continue_threshold:
                    continue
            faces.append(face)
        return faces, confirmed

    def look_again(self, index, full, kept: list[Face], boxes: list[Box]) -> set[int]:
        """Tracked faces this quick pass found nothing at, looked for again in a window around
        where they would be, the face at `missed_face` pixels. On a 1080p harsh stage, faces of
        120-150 px lit dim, tilted or half covered score under 0.3 on the quick pass's 640 px
        frame, and 0.5-0.65 in such a window. What it finds is added to this pass's detections
        as a weak one (it continues a track, never opens one); returns the ids of those faces."""
        cfg = self.cfg
        added: set[int] = set()
        if not cfg.missed_face:
            return added
        expected = {track.id: _expected(track, index) for track in self.active}
        for track in self.active:
            where = expected[track.id]

            def overlap(box: Box, t: Track = track) -> float:
                return max(iou(box, expected[t.id]), iou(box, t.last_box))

            if any(overlap(b) >= cfg.match_iou for b in boxes):
                continue  # the pass found a face there
            near = []
            for face in _look_around(
                self.detector, full, where, cfg, cfg.continue_threshold, cfg.missed_face
            ):
                box = to_full(face.box, 1.0, self.info)
                # On this track's face: where it would be, neither a face the pass found nor
                # nearer where another track's face would be (a face beside it in the window).
                mine = overlap(box)
                if (
                    mine >= cfg.match_iou
                    and not any(iou(box, b) >= SAME_FACE_IOU for b in boxes)
                    and not any(overlap(box, t) > mine for t in self.active if t is not track)
                ):
                    near.append((face, box))
            if near:
                face, box = max(near, key=lambda found: found[0].score)
                kept.append(face)
                boxes.append(box)
                added.add(id(face))
        return added

    def look_closer(self, full, kept: list[Face], boxes: list[Box], strong, matched) -> set[int]:
        """Weak quick detections of faces too small for the quick pass that continue no track,
        looked at again at a resolution that can see them: those a closer look finds at the
        opening score open tracks (replaced in place by what it found). A small face turned or
        half covered when its shot began, missed by that shot's thorough pass, was otherwise
        never found: three whole tracks of three harsh stage videos."""
        cfg = self.cfg
        confirmed = set()
        for j, box in enumerate(boxes):
            if j in strong or j in matched or not _too_small_for_quick(box, self.scale, cfg):
                continue
            others = boxes[:j] + boxes[j + 1 :]
            found = [
                face
                for face in _look_around(self.detector, full, box, cfg, cfg.quick_threshold)
                if iou(seen := to_full(face.box, 1.0, self.info), box) >= cfg.match_iou
                and not any(iou(seen, other) >= SAME_FACE_IOU for other in others)
            ]
            if found:
                kept[j] = max(found, key=lambda face: face.score)
                boxes[j] = to_full(kept[j].box, 1.0, self.info)
                confirmed.add(j)
        return confirmed

    def match(
        self, index: int, frame: np.ndarray, boxes: list[Box], strong: set[int], kept, full
    ) -> tuple[dict[int, Track], dict[int, Box]]:
        """Detection index -> the open track it continues; track id -> where its follower
        took a track no detection continued. Detections in `strong` are matched first; the
        weaker ones only to the tracks left over."""
        cfg = self.cfg

        # By overlap with the track's last box, or with where the face would be now if it
        # kept moving as it did, or failing both by being a face of its size close by (a face
        # crossing the stage can move its own width between passes).
        def overlap(t: Track, b: Box) -> float:
            return max(iou(t.last_box, b), iou(_expected(t, index), b), _near(t, b, cfg))

        first = sorted(strong)
        looks = self.looks(self.active, first, boxes, kept, full, overlap)
        matched = {
            first[j]: track
            for j, track in _assign(
                self.active, [boxes[j] for j in first], overlap, cfg.match_iou, looks
            ).items()
        }
        taken = {t.id for t in matched.values()}
        self.lost = [(at, t) for at, t in self.lost if index - at <= cfg.lost_frames]
        unmatched = [j for j in first if j not in matched]
        if unmatched and self.lost:
            lost = [t for _, t in self.lost]
            found = _assign(lost, [boxes[j] for j in unmatched], overlap, cfg.match_iou)
            matched.update({unmatched[j]: track for j, track in found.items()})
            taken.update(t.id for t in found.values())
        left = [t for t in self.active if t.id not in taken]
        weak = [j for j in range(len(boxes)) if j not in strong]
        if left and weak:
            later = _assign(left, [boxes[j] for j in weak], overlap, cfg.match_iou)
            matched.update({weak[j]: track for j, track in later.items()})
            taken.update(t.id for t in later.values())
        # Tracks still without a detection are followed to this frame by their correlation
        # tracker (started only now, from where the face was last detected); a detection where
        # the tracker went continues the track too.
        followed: dict[int, Box] = {}
        for track in self.active:
            if track.id not in taken:
                box = _follow(track, frame, self.scale, self.info, cfg)
                if box is not None and _keeps_pace(track, index, box, cfg):
                    followed[track.id] = box
        free = [j for j in range(len(boxes)) if j not in matched]
        waiting = [t for t in self.active if t.id in followed]
        if free and waiting:
            later = _assign(
                waiting,
                [boxes[j] for j in free],
                lambda t, b: iou(followed[t.id], b),
                cfg.match_iou,
            )
            matched.update({free[j]: track for j, track in later.items()})
        return matched, followed

    def looks(self, tracks, js, boxes, kept, full, overlap) -> np.ndarray | None:
        """Where faces near each other could continue either of two tracks (a track near two
        of this pass's faces, or a face near two tracks), how unlike each face looks to each
        such track's last chip: the distance of their embeddings, in same-person distances,
        above the track's nearest. Matching adds it to the cost, so that two faces crossing
        are not swapped. None where nothing is in doubt."""
        if not self.cfg.tell_apart or not tracks or not js:
            return None
        overlaps = np.array([[overlap(t, boxes[j]) for j in js] for t in tracks])
        # In doubt: a second choice near as good as the first (a clear best needs no looks).
        near = overlaps >= self.cfg.match_iou
        close_t = overlaps >= DOUBT * overlaps.max(axis=1, keepdims=True)
        close_j = overlaps >= DOUBT * overlaps.max(axis=0, keepdims=True)
        rows, cols = (near & close_t).sum(axis=1) >= 2, (near & close_j).sum(axis=0) >= 2
        doubt_t = rows | (near & cols[None, :]).any(axis=1)
        doubt_j = cols | (near & rows[:, None]).any(axis=0)
        rows = [r for r in np.flatnonzero(doubt_t) if tracks[r].candidates]
        cols = [int(c) for c in np.flatnonzero(doubt_j)]
        if not rows or not cols:
            return None
        t = time.perf_counter()
        chips = self.embedder.chips(
            full(), [boxes[js[c]] for c in cols], keypoints=[kept[js[c]].keypoints for c in cols]
        )
        fresh = [r for r in rows if tracks[r].look is None]
        vectors = self.embedder.embed_chips(
            np.stack([*(tracks[r].candidates[-1][3] for r in fresh), *chips])
        )
        for r, vector in zip(fresh, vectors, strict=False):
            tracks[r].look = vector
        theirs = np.stack([tracks[r].look for r in rows])
        faces = vectors[len(fresh) :]
        self.looked.update((id(kept[js[c]]), v) for c, v in zip(cols, faces, strict=True))
        apart = np.linalg.norm(theirs[:, None] - faces[None, :], axis=2)
        apart /= self.embedder.same_person_distance
        penalty = np.zeros(near.shape)
        penalty[np.ix_(rows, cols)] = apart - apart.min(axis=1, keepdims=True)
        self.spent["tell apart"] += time.perf_counter() - t
        return penalty

    def extend(self, index, frame, kept, boxes, matched, *, quick, windowed) -> list[Track]:
        """Add each detection to its track, or open a track for it; the owners, in order."""
        owners = []
        for j, box in enumerate(boxes):
            track = matched.get(j)
            if track is None:
                track = Track(id=self.next_id, opened=index)
                self.next_id += 1
                self.tracks.append(track)
                self.active.append(track)
            elif track not in self.active:  # a lost track found again
                self.lost = [(at, t) for at, t in self.lost if t is not track]
                self.active.append(track)
            track.misses = 0
            track.detections += 1
            track.keyframes.append((index, box))
            track.follower = None
            track.anchor = (frame, tuple(int(v / self.scale) for v in box))
            track.look = self.looked.get(id(kept[j]))  # None: its next chip, when needed
            if quick and id(kept[j]) not in windowed:
                track.quick_hits += 1
            owners.append(track)
        return owners

    def close(self, index, boxes, followed, seen: set[int], deep: bool) -> None:
        """Tracks this pass could have seen but did not are gone. A quick pass only speaks for
        tracks quick passes have found before; a deep pass speaks for all."""
        for track in list(self.active):
            if track.id in seen:
                continue
            box = followed.get(track.id)
            if box is not None:
                if any(iou(box, found) >= SAME_FACE_IOU for found in boxes):
                    # Following a face another track was given in this pass: one face, one
                    # track, so this one ends here.
                    track.stop = index
                    self.active.remove(track)
                    continue
                # Not detected here, but the tracker is sure: keep it.
                track.keyframes.append((index, box))
                continue
            if deep or track.quick_hits:
                track.misses += 1
                if track.misses > self.cfg.misses_allowed:
                    self.active.remove(track)
                    self.lost.append((index, track))

    def sharpen(self, full, kept: list[Face], boxes: list[Box], chipped: list[int]) -> None:
        """Each face of a quick pass on a large frame found again in a tight window, scaled so
        the face is `sharpen_face` pixels, for its keypoints: the chip is cut along them, and
        on the quick pass's frame (a 1080p face of 56-150 px is 19-50 px there) or in a small
        face's window (64 px) they are a pixel or two off, which is 3-6% of the face. Where the
        window finds no face on the box, the pass's keypoints stay."""
        cfg = self.cfg
        if not cfg.sharpen_face:
            return
        for j in chipped:
            found = _look_around(
                self.detector,
                full,
                boxes[j],
                cfg,
                cfg.continue_threshold,
                cfg.sharpen_face,
                cfg.sharpen_margin,
            )
            on_box = [
                f for f in found if iou(to_full(f.box, 1.0, self.info), boxes[j]) >= SAME_FACE_IOU
            ]
            if on_box:
                kept[j] = kept[j]._replace(keypoints=max(on_box, key=lambda f: f.score).keypoints)

    def collect_chips(self, index, image, kept, boxes, owners) -> None:
        """Chips of this keyframe's faces, for choosing samples and checking identity later."""
        chips = self.embedder.chips(image, boxes, keypoints=[f.keypoints for f in kept])
        for j, box in enumerate(boxes):
            track = owners[j]
            side = min(box[2] - box[0], box[3] - box[1])
            quality = sample_quality(chips[j], kept[j].keypoints, side)
            # Whole: neither cut by the frame's edge nor overlapped by another face, so the
            # chip shows this face alone (samples and the review strip prefer those).
            whole = not at_edge(box, self.info) and not crowded(box, boxes)
            track.candidates.append((quality, index, box, chips[j], whole))
            if len(track.candidates) > self.cfg.max_candidates:
                del track.candidates[1::2]  # every other one: still spread over the track

    def no_pass_after(self, index: int) -> bool:
        """Whether the shot of keyframe `index` ends (at a cut, or at the video's end) before
        the next pass. A shot cut before the segment ends goes on in the next segment, whose
        first pass sees it."""
        ends = [cut for cut in self.cuts if cut > index]
        if self.end == self.info.frames:
            ends.append(self.end)
        interval = self.cfg.keyframe_interval
        after = self.start + ((index - self.start) // interval + 1) * interval
        return bool(ends) and after >= min(ends)

    def finish(self) -> list[Track]:
        """Drop noise, split tracks that jumped between people, fill in every frame's box."""
        cfg = self.cfg
        # One lone detection is more likely noise than a face, unless no other pass could see
        # it (its shot ended first: 11 frames of two members' faces at a harsh stage video's
        # end were unboxed), or it opens or closes a segment: the track may go on in the
        # segment before or after, and the join decides.
        # (Faces appearing at a cut in a segment's last keyframe interval were dropped: on a
        # 1080p harsh stage, every face of a shot starting 7 frames before a seam.)
        last_pass = self.end - cfg.keyframe_interval
        for track in self.tracks:
            track.brief = track.detections == 1 and self.no_pass_after(track.opened)
        tracks = [
            t
            for t in self.tracks
            if t.candidates
            and (
                substantial(t, cfg)
                or (self.start > 0 and t.keyframes[0][0] == self.start)
                or (self.end < self.info.frames and t.keyframes[-1][0] >= last_pass)
            )
        ]
        identified: list[Track] = []
        for track in tracks:
            track.follower = track.anchor = track.look = None
            parts = identify(track, self.embedder, cfg, first_id=self.next_id)
            self.next_id += len(parts) - 1
            identified += parts
        boundaries = sorted([*self.cuts, self.end])
        for track in identified:
            fill_boxes(track, boundaries, cfg, self.end, (self.info.width, self.info.height))
        # A face followed back onto a face another track boxes there (the same face, found
        # again under a new track) is that face's already.
        for track in identified:
            for f in [f for f in track.boxes if f < track.opened]:
                box = track.boxes[f]
                if any(
                    other is not track and f in other.boxes and _same_place(other.boxes[f], box)
                    for other in identified
                ):
                    del track.boxes[f]
        return _without_doubles(identified)


# Two ways to match are in doubt where the second's overlap is at least this share of the
# first's. At 0.7 as much was told apart on a 1080p crowd for 1.5 times the CPU.
DOUBT = 0.85


def _assign(
    tracks: list[Track],
    boxes: list[Box],
    overlap: Callable[[Track, Box], float],
    least: float,
    penalty: np.ndarray | None = None,
) -> dict[int, Track]:
    """Detection index -> track, one to one, maximising total overlap (less any `penalty`,
    tracks by boxes), each overlapping at least `least`."""
    if not tracks or not boxes:
        return {}
    overlaps = np.array([[overlap(t, b) for b in boxes] for t in tracks])
    cost = 1.0 - overlaps if penalty is None else 1.0 - overlaps + penalty
    from scipy.optimize import linear_sum_assignment  # on first use: not at Django's start

    rows, cols = linear_sum_assignment(cost)
    return {int(c): tracks[r] for r, c in zip(rows, cols, strict=True) if overlaps[r, c] >= least}


def _follow(track: Track, frame: np.ndarray, scale: float, info: VideoInfo, cfg: Settings):
    """The track's face followed to this analysis frame (full-frame box), None if unsure."""
    if track.follower is None:
        anchor_frame, anchor_box = track.anchor
        track.follower = dlib.correlation_tracker()
        track.follower.start_track(anchor_frame, dlib.rectangle(*anchor_box))
        track.anchor = None
    return _sure_step(track.follower, frame, scale, info, cfg)


def _sure_step(follower, frame: np.ndarray, scale: float, info: VideoInfo, cfg: Settings):
    """A correlation tracker moved on to `frame` (analysis pixels, `scale` to full size): its
    full-frame box where it is sure of it (PSR at least min_tracker_psr, a box not empty),
    else None."""
    psr = follower.update(frame)
    rect = follower.get_position()
    box = to_full((rect.left(), rect.top(), rect.right(), rect.bottom()), scale, info)
    if psr >= cfg.min_tracker_psr and box[2] > box[0] and box[3] > box[1]:
        return box
    return None


def _near(track: Track, b: Box, cfg: Settings) -> float:
    """Just enough to match (more the closer) for a face of about the track's size whose centre
    is within `near_reach` face sizes of its last box; 0 otherwise. Used only where boxes do
    not overlap enough. Sizes are the longer side: a face turning away narrows its box, not its
    height. About the same: within `near_size`, or `near_size_windowed` for a track only the
    small-face windows have found, whose boxes vary more."""
    a = track.last_box
    side_a, side_b = max(a[2] - a[0], a[3] - a[1]), max(b[2] - b[0], b[3] - b[1])
    ratio = cfg.near_size if track.quick_hits else cfg.near_size_windowed
    if min(side_a, side_b) <= 0 or max(side_a, side_b) > ratio * min(side_a, side_b):
        return 0.0
    reach = cfg.near_reach * (side_a + side_b) / 2
    gap = math.hypot((a[0] + a[2] - b[0] - b[2]) / 2, (a[1] + a[3] - b[1] - b[3]) / 2)
    return cfg.match_iou * (1.0 + 0.1 * (1.0 - gap / reach)) if gap <= reach else 0.0


# A track whose box overlaps another track's box in the same frame by at least DOUBLE_IOU,
# on DOUBLE_SHARE of its frames or more, boxes that track's face twice over. The three such
# duplicates of 14 development videos overlapped their face's track by 0.22-0.51 (IoU) on 80%
# of their frames; five pairs of faces, one partly in front of the other, by 0.07 at most.
DOUBLE_IOU = 0.15
DOUBLE_SHARE = 0.8


def _without_doubles(tracks: list[Track]) -> list[Track]:
    """The tracks less those that box a face another track boxes. SCRFD boxes a tilted face
    twice now and then, a little apart (centres 70 px apart on a 150 px face, so both are
    kept), and the second box opened a track: named from its one sample, it won the clash
    with the face's own track and left that one unnamed for all its 103 frames, where the two
    had 24 in common. Of two tracks on one face the longer stays."""
    ranked = sorted(tracks, key=lambda t: (-len(t.boxes), -t.detections, t.id))
    doubles: set[int] = set()
    for k, track in enumerate(ranked):
        need = DOUBLE_SHARE * len(track.boxes)
        first, last = track.first_frame, track.last_frame
        for other in ranked[:k]:
            if id(other) in doubles or other.last_frame < first or other.first_frame > last:
                continue
            same = sum(
                1
                for f, box in track.boxes.items()
                if f in other.boxes and iou(other.boxes[f], box) >= DOUBLE_IOU
            )
            if same >= need:
                doubles.add(id(track))
                break
    return [t for t in tracks if id(t) not in doubles]


def _same_place(a: Box, b: Box) -> bool:
    """Whether two boxes of one frame are on one face: centres closer than three quarters of
    the larger box's side."""
    side = max(a[2] - a[0], a[3] - a[1], b[2] - b[0], b[3] - b[1])
    dx = (a[0] + a[2] - b[0] - b[2]) / 2
    dy = (a[1] + a[3] - b[1] - b[3]) / 2
    return math.hypot(dx, dy) < 0.75 * side


def _keeps_pace(track: Track, index: int, box: Box, cfg: Settings) -> bool:
    """Whether a followed box is where a moving face would be. A correlation tracker can stick
    to the background a fast, blurred face left, and stay sure of it: on a harsh 1080p stage
    one such track drew its name 130 px behind the face for 41 frames. A face that was not
    moving is not checked."""
    expected, last = _expected(track, index), track.last_box
    if iou(expected, last) >= SAME_FACE_IOU:
        return True
    return iou(box, expected) >= cfg.match_iou


def _expected(track: Track, index: int) -> Box:
    """Where the track's face would be at frame index, moving as between its last two boxes."""
    paced = pace_keys(track)
    if paced is None:
        return track.keyframes[-1][1]
    (f0, b0), (f1, b1) = paced
    step = (index - f1) / max(f1 - f0, 1)
    return tuple(int(round(q + (q - p) * step)) for p, q in zip(b0, b1, strict=True))


def _redetect_small(
    detector,
    full: Callable[[], np.ndarray],
    active: list[Track],
    scale: float,
    cfg: Settings,
    threshold: float,
) -> list[Face]:
    """Look again, at a resolution that can see them, for tracked faces too small for the quick
    pass. Each such face is searched in a window around its last box, scaled so the face is
    about `window_face` pixels, for detections scoring `threshold` or more (the quick pass's
    own). Faces come back in full-frame pixels."""
    found = []
    for track in active:
        if _too_small_for_quick(track.last_box, scale, cfg):
            found += _look_around(detector, full, track.last_box, cfg, threshold)
    return found


def _too_small_for_quick(box: Box, scale: float, cfg: Settings) -> bool:
    """Whether a face (full-frame box) is under `small_face` pixels on the quick pass's frame."""
    return max(box[2] - box[0], box[3] - box[1]) / scale < cfg.small_face


def _look_around(
    detector,
    full,
    box: Box,
    cfg: Settings,
    threshold: float,
    face: int | None = None,
    margin: float = 1.0,
) -> list[Face]:
    """Faces in a window around `box` (a face's full-frame box, the window `margin` of the
    face's size wider on every side: by default a face's size, as faces move less than that
    between passes), scaled so the face is about `face` pixels (`window_face` unless given);
    in full-frame pixels."""
    left, top, right, bottom = box
    side = max(right - left, bottom - top)
    if side < 6:
        return []
    height, width = full().shape[:2]
    around = window_around(box, width, height, margin)
    if around is None:  # off the frame (a face carried out of it)
        return []
    x0, y0, x1, y1 = around
    window = full()[y0:y1, x0:x1]
    zoom = (face or cfg.window_face) / side
    size = fit_input_size(x1 - x0, y1 - y0, max(32, round(max(x1 - x0, y1 - y0) * zoom)))
    return [
        _shift(face, x0, y0)
        for face in detector.detect(window, input_size=size, threshold=threshold)
    ]


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


def _scaled(info: VideoInfo, width: int) -> tuple[float, tuple[int, int]]:
    """How much a frame shrinks to `width` (never enlarged), and its size then, sides even
    (yuv420p)."""
    small = scaled_size(info, min(width, info.width))
    return info.width / small[0], (small[0] // 2 * 2, small[1] // 2 * 2)


def _small_rgb(planes: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A yuv420p frame as RGB at `size` (even sides): the planes are shrunk before converting."""
    width, height = size
    y, u, v = yuv_planes(planes)
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
        cv2.resize(plane, (64, 36), interpolation=cv2.INTER_NEAREST) for plane in yuv_planes(planes)
    ]
    small = cv2.cvtColor(cv2.merge(thumb), cv2.COLOR_YUV2RGB)
    hist = cv2.calcHist(
        [cv2.cvtColor(small, cv2.COLOR_RGB2HSV)], [0, 1], None, [16, 8], [0, 180, 0, 256]
    )
    return cv2.normalize(hist, hist)


def _edges(planes: np.ndarray) -> np.ndarray:
    """Gradient magnitude of a 64x36 luma thumbnail, zero mean and unit length."""
    luma = cv2.resize(yuv_planes(planes)[0], (64, 36), interpolation=cv2.INTER_AREA)
    luma = luma.astype(np.float32)
    magnitude = cv2.magnitude(cv2.Sobel(luma, cv2.CV_32F, 1, 0), cv2.Sobel(luma, cv2.CV_32F, 0, 1))
    magnitude -= magnitude.mean()
    return magnitude / max(float(np.linalg.norm(magnitude)), 1e-6)


def _edge_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """How alike two frames' edges are, 1 for the same shapes in any light."""
    return float((_edges(a) * _edges(b)).sum())


class _Lazy:
    """A value made on first call and kept: the colour frame, which not every pass needs."""

    def __init__(self, make: Callable[[], np.ndarray]) -> None:
        self.make, self.value = make, None

    def __call__(self) -> np.ndarray:
        if self.value is None:
            self.value = self.make()
        return self.value
