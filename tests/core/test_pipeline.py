"""Video analysis on a small real clip made here from the fixture faces."""

import copy
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.faces import embed
from core.faces.detect import Face
from core.media.probe import ffmpeg_exe, probe
from core.tracking import segments
from core.tracking.naming import name_tracks
from core.tracking.samples import identify
from core.tracking.segments import Source, analyze_parallel
from core.tracking.tracker import (
    Tracker,
    _expected,
    _keeps_pace,
    _near,
    _without_doubles,
    analyze,
)
from core.tracking.tracks import (
    Analysis,
    Settings,
    Track,
    bridge_hidden,
    crowded,
    pace_keys,
    to_full,
)
from tests.conftest import wait_for
from tests.core.stage import FPS, alive, children, chip, encode, face, scene


def _label_at(tracks, frame, box):
    """The label of the track whose box at `frame` has its centre inside `box`."""
    for track in tracks:
        found = track.boxes.get(frame)
        if found is None:
            continue
        cx, cy = (found[0] + found[2]) / 2, (found[1] + found[3]) / 2
        if box[0] <= cx <= box[2] and box[1] <= cy <= box[3]:
            return track.label or "unknown"
    return None


def test_it_finds_tracks_names_them_and_never_crosses_a_cut(clip, model):
    path, truth = clip
    analysis = analyze(path)
    name_tracks(analysis.tracks, model)

    assert analysis.cuts == [30]
    assert all(t.last_frame < 30 or t.first_frame >= 30 for t in analysis.tracks)
    for frame in (0, 13, 29, 30, 45, 59):
        for person, box in truth[frame].items():
            expected = "unknown" if person == "will-smith" else person
            assert _label_at(analysis.tracks, frame, box) == expected, (frame, person)
    assert all(len(t.samples) >= 1 for t in analysis.tracks)


def test_stage_light_is_not_a_cut(tmp_path):
    """Two faces under a warm strobe (frames 20 and 21) and a light turning blue at 40: the
    colours of the whole frame jump as at a cut, its shapes do not. No cut, one track a face."""
    frames, _ = scene([("tom-hanks", 1), ("halle-berry", 1)], 60, (70, 90, 140))
    lights = {20: (1.6, 1.0, 0.6), 21: (1.6, 1.0, 0.6)} | {
        f: (0.6, 0.9, 1.4) for f in range(40, 60)
    }
    lit = [
        np.clip(frame * np.float32(lights.get(f, (1, 1, 1))), 0, 255).astype(np.uint8)
        for f, frame in enumerate(frames)
    ]
    path = tmp_path / "lit.mp4"
    encode(lit, path, FPS)
    analysis = analyze(path)
    assert analysis.cuts == []
    assert len(analysis.tracks) == 2
    assert all(sorted(t.boxes) == list(range(60)) for t in analysis.tracks)
    # Measured by colour alone, as before, both changes of light were cuts.
    assert analyze(path, settings=Settings(cut_edges=2.0)).cuts == [20, 22, 40]


def test_a_member_is_named_at_most_once_per_frame(clip, model):
    analysis = analyze(clip[0])
    name_tracks(analysis.tracks, model)
    # Force a clash: claim the stranger is Keanu too; only the stronger track keeps the name.
    keanu = next(t for t in analysis.tracks if t.label == "keanu-reeves")
    stranger = next(t for t in analysis.tracks if t.first_frame >= 30 and t is not keanu)
    stranger.samples = keanu.samples.copy()
    name_tracks(analysis.tracks, model)
    named = [t for t in analysis.tracks if t.label == "keanu-reeves"]
    frames = [set(t.boxes) for t in named]
    assert all(not (a & b) for i, a in enumerate(frames) for b in frames[i + 1 :])


def _one_pass_and_joined(path, seam: int) -> tuple[list, list]:
    """The (first, last) frames of the tracks of one pass over the 60-frame clip, and of its
    two segments, split at `seam`, joined."""
    whole = analyze(path)
    parts = [
        analyze(path, start=0, end=seam, first_track_id=1),
        analyze(path, start=seam, end=60, first_track_id=1000),
    ]
    joined = segments.join(parts, [0, seam])
    return (
        sorted((t.first_frame, t.last_frame) for t in whole.tracks),
        sorted((t.first_frame, t.last_frame) for t in joined.tracks),
    )


def test_segments_joined_give_the_tracks_of_one_pass(clip, model):
    one_pass, joined = _one_pass_and_joined(clip[0], 20)
    assert len(joined) == len(one_pass)
    assert joined == one_pass


def test_faces_appearing_at_a_cut_just_before_a_seam_are_kept(clip):
    """The second shot starts at 30; the first segment ends at 36, before its next pass: there
    its faces have one detection each, which is kept for the join to continue, not dropped
    as noise."""
    one_pass, joined = _one_pass_and_joined(clip[0], 36)
    assert joined == one_pass
    assert sum(first == 30 for first, _ in joined) == 2


@pytest.mark.parametrize(
    ("frames", "parts", "min_frames", "expected"),
    [
        (60, 2, 1, [(0, 30), (30, 60)]),
        (61, 3, 1, [(0, 20), (20, 41), (41, 61)]),
        (60, 4, 25, [(0, 30), (30, 60)]),  # never shorter than min_frames
        (10, 4, 25, [(0, 10)]),
        (0, 2, 1, [(0, 0)]),
    ],
)
def test_split_cuts_frames_into_nearly_equal_ranges(frames, parts, min_frames, expected):
    assert segments.split(frames, parts, min_frames=min_frames) == expected


def test_segments_analysed_on_two_processes_match_one_process(clip, model):
    path, truth = clip
    info = probe(path)
    bounds = [(0, 20), (20, 60)]
    seen = []
    both = analyze_parallel(Source(path, info), bounds, 2, lambda p, s: seen.append(p))
    alone = analyze_parallel(Source(path, info), bounds, 1)
    assert [sorted(t.boxes.items()) for t in both.tracks] == [
        sorted(t.boxes.items()) for t in alone.tracks
    ]
    assert [t.id for t in both.tracks] == list(range(1, len(both.tracks) + 1))
    assert seen[-1] == 100.0 and seen == sorted(seen)
    name_tracks(both.tracks, model)
    assert _label_at(both.tracks, 25, truth[25]["tom-hanks"]) == "tom-hanks"


def test_an_analysis_survives_a_save_and_load(clip, tmp_path):
    analysis = analyze(clip[0], start=0, end=30)
    segments.save(analysis, tmp_path / "a.npz")
    again = segments.load(tmp_path / "a.npz")
    assert [t.boxes for t in again.tracks] == [t.boxes for t in analysis.tracks]
    assert all(
        np.array_equal(a.samples, b.samples)
        for a, b in zip(again.tracks, analysis.tracks, strict=True)
    )


def test_a_video_without_faces_has_no_tracks(tmp_path):
    path = tmp_path / "empty.mp4"
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "color=c=gray:s=320x240:d=1",
         "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path)],
        check=True,
    )  # fmt: skip
    assert analyze(path).tracks == []


def _followed_track(people):
    """A track whose detections (one every 8 frames) show `people` in turn."""
    track = Track(id=1)
    for k, (person, index) in enumerate(people):
        frame, box = 8 * k, (100 + k, 100, 200 + k, 200)
        track.keyframes.append((frame, box))
        track.candidates.append((1.0, frame, box, chip(person, index), True))
        track.detections += 1
    return track


def test_a_track_that_jumped_to_another_face_is_split_where_it_jumped():
    people = [("tom-hanks", i) for i in (1, 2, 3, 4, 1, 2, 3)]
    people += [("halle-berry", i) for i in (1, 2, 3, 4, 1)]
    track = _followed_track(people)
    parts = identify(track, embed.embedder(), Settings(), first_id=50)
    assert [(p.keyframes[0][0], p.keyframes[-1][0]) for p in parts] == [(0, 48), (56, 88)]
    assert parts[0].stop == 56 and parts[1].id == 50
    assert [p.kin for p in parts] == [1, 1]
    assert [p.detections for p in parts] == [7, 5]
    # Each part is named on its own, from samples of its own person only.
    for part, person in zip(parts, ("tom-hanks", "halle-berry"), strict=True):
        frames = [f for f, _ in part.sample_boxes]
        owner = [people[f // 8][0] for f in frames]
        assert set(owner) == {person}


def test_a_split_track_can_be_put_aside_and_read_back(tmp_path):
    """A segment's split tracks are saved for the joining job (JSON inside an .npz): their
    counts were numpy integers once, and a 2-minute video's segment job failed on them."""
    people = [("tom-hanks", i) for i in (1, 2, 3, 4, 1, 2, 3)]
    people += [("halle-berry", i) for i in (1, 2, 3, 4, 1)]
    parts = identify(_followed_track(people), embed.embedder(), Settings(), first_id=50)
    for part in parts:
        part.boxes = {f: b for f, b in part.keyframes}
        part.thumbnail = np.zeros((8, 8, 3), np.uint8)
    path = tmp_path / "segment.npz"
    segments.save(Analysis(tracks=parts, frames=96, cuts=[], timings={}), path)
    back = segments.load(path).tracks
    assert [(t.id, t.detections) for t in back] == [(1, 7), (50, 5)]
    # Both parts remember the track they were split from, to be named together where they
    # agree (tracking.naming).
    assert [t.kin for t in back] == [1, 1]
    assert [t.sample_boxes for t in back] == [p.sample_boxes for p in parts]


def test_one_persons_track_is_not_split():
    track = _followed_track([("keanu-reeves", i) for i in (1, 2, 3, 4, 1, 2, 3, 4, 1, 2)])
    parts = identify(track, embed.embedder(), Settings(), first_id=50)
    assert len(parts) == 1 and parts[0] is track and track.stop is None
    # Samples span the track (one from each fifth at least) as well as being its best chips.
    frames = sorted(f for f, _ in track.sample_boxes)
    assert 5 <= len(track.samples) <= 10 and len(track.samples) == len(frames)
    assert {f // 16 for f in frames} == {0, 1, 2, 3, 4}  # 10 detections 8 frames apart


def test_faces_cut_off_by_the_frame_edge_are_not_samples_when_whole_ones_exist():
    track = _followed_track([("keanu-reeves", i) for i in (1, 2, 3, 4, 1, 2)])
    edge = {8, 24, 40}  # these detections touch the frame edge
    track.candidates = [(q + (5.0 if f in edge else 0.0), f, b, c, f not in edge)
                        for q, f, b, c, _ in track.candidates]  # fmt: skip
    parts = identify(track, embed.embedder(), Settings(), first_id=50)
    assert len(parts) == 1
    frames = {f for f, _ in track.sample_boxes}
    assert frames and not frames & edge  # even though they scored best


def test_a_face_overlapped_by_another_is_kept_off_its_tracks_samples_and_strip(tmp_path):
    # Tom stands still; from frame 24 Halle comes in and stops half over his face.
    shots = []
    for f in range(60):
        canvas = Image.new("RGB", (480, 270), (90, 110, 90))
        canvas.paste(face("tom-hanks", 1, 100), (80, 80))
        canvas.paste(face("halle-berry", 1, 100), (max(130, 340 - 7 * f), 80))
        shots.append(np.asarray(canvas))
    path = tmp_path / "overlap.mp4"
    encode(shots, path, 25)
    analysis = analyze(path, info=probe(path), embedder=embed.embedder())
    toms = [t for t in analysis.tracks if t.boxes and min(t.boxes) == 0 and t.boxes[0][0] < 120]
    assert toms
    for tom in toms:
        halle = {f: b for t in analysis.tracks if t is not tom for f, b in t.boxes.items()}
        overlapped = {f for f, box in tom.boxes.items() if f in halle and crowded(box, [halle[f]])}
        assert overlapped  # the clip does cross them
        assert not {f for f, _ in tom.sample_boxes} & overlapped


def test_crowded_means_another_face_covers_a_tenth_of_the_box():
    box = (0, 0, 100, 100)
    assert not crowded(box, [box])  # itself
    assert not crowded(box, [(95, 0, 195, 100)])  # 5% touching
    assert crowded(box, [(85, 0, 185, 100)])  # 15%
    assert not crowded(box, [(200, 200, 300, 300)])


def _one_face_moving(folder, size, frames, start, step, side=100):
    """A clip of Tom Hanks's face, `side` px, moving `step` px a frame to the right."""
    shots = []
    for f in range(frames):
        canvas = Image.new("RGB", size, (90, 110, 90))
        canvas.paste(face("tom-hanks", 1, side), (start[0] + step * f, start[1]))
        shots.append(np.asarray(canvas))
    path = folder / "moving.mp4"
    encode(shots, path, 25)
    return path


def test_a_small_face_is_detected_on_every_quick_pass(tmp_path):
    """A 60 px face in a 1920 px frame is 20 px at the 640 px quick pass, where SCRFD misses
    most; it is looked for again around its last box, so it has a detection on every pass."""
    analysis = analyze(_one_face_moving(tmp_path, (1920, 1080), 41, (300, 300), 3, side=60))
    assert len(analysis.tracks) == 1
    track = analysis.tracks[0]
    # The deep pass at 0 and every quick pass after it (8 frames apart, say: 8, 16, ... 40).
    assert track.detections == 1 + 40 // Settings().keyframe_interval
    assert sorted(track.boxes) == list(range(41))
    last = 40 // Settings().keyframe_interval * Settings().keyframe_interval
    left, top, right, bottom = track.boxes[last]  # the face's box where it was last detected
    assert abs((left + right) / 2 - (330 + 3 * last)) < 15 and abs((top + bottom) / 2 - 330) < 15


def test_a_small_face_that_appears_after_the_thorough_pass_is_found_by_a_closer_look(tmp_path):
    """A 72 px face comes on at frame 6, after the thorough pass at 0 and with none due until
    180: the 640 px quick passes score it under the 0.5 that opens a track; a closer look
    around that weak detection finds it at the first quick pass. Followed back from there, it
    is boxed from the frame it came on, and not before."""
    shots = []
    for f in range(49):
        canvas = Image.new("RGB", (1280, 720), (90, 110, 90))
        if f >= 6:
            canvas.paste(face("tom-hanks", 1, 72), (300 + 2 * f, 300))
        shots.append(np.asarray(canvas))
    path = tmp_path / "late.mp4"
    encode(shots, path, 25)
    (track,) = analyze(path).tracks
    assert track.opened == Settings().keyframe_interval
    assert track.detections == 48 // Settings().keyframe_interval
    assert sorted(track.boxes) == list(range(6, 49))
    left, top, right, bottom = track.boxes[6]
    assert abs((left + right) / 2 - (336 + 12)) < 12 and abs((top + bottom) / 2 - 336) < 12


def test_a_face_hidden_for_a_second_is_found_again_by_its_track(tmp_path):
    """A hand over the face from frame 14 to 40: two quick passes miss it and its track is
    closed; found again at 48 near where it would be, it continues that track, one track with
    a box on every frame (the hidden ones between where it was last and next seen)."""
    shots = []
    for f in range(61):
        canvas = Image.new("RGB", (1280, 720), (90, 110, 90))
        canvas.paste(face("tom-hanks", 1, 100), (100 + 2 * f, 120))
        if 14 <= f <= 40:
            canvas.paste((90, 100, 90), (95 + 2 * f, 115, 205 + 2 * f, 225))
        shots.append(np.asarray(canvas))
    path = tmp_path / "hidden.mp4"
    encode(shots, path, 25)
    (track,) = analyze(path).tracks
    assert sorted(track.boxes) == list(range(61))
    left, _, right, _ = track.boxes[30]
    assert abs((left + right) / 2 - (150 + 2 * 30)) < 20


def test_a_face_crossing_the_stage_fast_stays_one_track(tmp_path):
    """A 100 px face moving 6 px a frame is 72 px away at the next quick pass: its boxes
    hardly overlap (the detector's box is about 70 px wide), yet it is the same face: one
    track, none beside it."""
    analysis = analyze(_one_face_moving(tmp_path, (640, 360), 61, (20, 120), 6))
    assert len(analysis.tracks) == 1
    track = analysis.tracks[0]
    assert sorted(track.boxes) == list(range(61))
    left, _, right, _ = track.boxes[60]
    assert abs((left + right) / 2 - (70 + 6 * 60)) < 25


def test_a_face_moving_more_than_its_width_between_passes_stays_one_track(tmp_path):
    """A 100 px face (its detected box about 70 px wide) moving 8 px a frame is 96 px away at
    the next quick pass: no overlap at all, and still one track with a box on it every frame."""
    analysis = analyze(_one_face_moving(tmp_path, (1280, 720), 49, (40, 300), 8))
    assert len(analysis.tracks) == 1
    track = analysis.tracks[0]
    assert sorted(track.boxes) == list(range(49))
    for frame in (6, 30, 48):
        left, _, right, _ = track.boxes[frame]
        assert abs((left + right) / 2 - (90 + 8 * frame)) < 15


def test_after_its_last_detection_a_box_goes_on_moving_with_the_face(tmp_path):
    """The clip ends 9 frames after the last quick pass (at 48): the box of those frames keeps
    the face's pace instead of staying where the face was last seen (54 px behind at the end)."""
    analysis = analyze(_one_face_moving(tmp_path, (640, 360), 58, (20, 120), 6))
    (track,) = analysis.tracks
    assert max(f for f, _ in track.keyframes) == 48
    for frame in (52, 57):
        left, _, right, _ = track.boxes[frame]
        assert abs((left + right) / 2 - (70 + 6 * frame)) < 12


def test_a_weak_detection_continues_a_track_but_opens_none(tmp_path):
    """With quick passes asking more than SCRFD ever scores, the face is found by the deep pass
    at frame 0 only; its weaker quick detections still continue that track, on every pass. Had
    they been able to open tracks, the face appearing later would have one before the next deep
    pass."""
    path = _one_face_moving(tmp_path, (640, 360), 49, (20, 120), 2)
    strict = Settings(quick_threshold=0.999, continue_threshold=0.3)
    (track,) = analyze(path, settings=strict).tracks
    assert track.detections == 1 + 48 // strict.keyframe_interval
    assert sorted(track.boxes) == list(range(49))
    # Without weak continuations the same passes find nothing: one lone detection, no track.
    strictest = Settings(quick_threshold=0.999, continue_threshold=0.999)
    assert analyze(path, settings=strictest).tracks == []
    # A face that appears after the deep pass gets no track from weak quick detections.
    late = []
    for f in range(49):
        canvas = Image.new("RGB", (640, 360), (90, 110, 90))
        if f >= 10:
            canvas.paste(face("tom-hanks", 1, 100), (200, 120))
        late.append(np.asarray(canvas))
    encode(late, tmp_path / "late.mp4", 25)
    assert analyze(tmp_path / "late.mp4", settings=strict).tracks == []


JOB_SCRIPT = """
import sys
sys.path.insert(0, sys.argv[2])
from core.classifier.training import fit
from core.media.probe import ffmpeg_exe, probe
from core.tracking import segments
from core.tracking.naming import name_tracks
from core.tracking.samples import identify
from core.tracking.segments import Source, analyze_parallel
from core.tracking.tracker import analyze
from core.tracking.tracks import Analysis, Settings, Track, crowded, pace_keys
info = probe(sys.argv[1])
slow = Settings(keyframe_interval=1, deep_interval=1)
while True:
    analyze_parallel(Source(sys.argv[1], info, settings=slow), [(0, 30), (30, 60)], 2)
"""


def test_segment_processes_die_when_the_job_process_is_killed(clip):
    """A worker killed mid-analysis (SIGKILL, OOM) must not leave its segment processes
    running on: each would hold a core and hundreds of MB, forever."""
    import os
    import signal
    import sys

    root = Path(__file__).resolve().parents[2]
    job = subprocess.Popen([sys.executable, "-c", JOB_SCRIPT, str(clip[0]), str(root)])
    try:
        workers = wait_for(
            lambda: found if len(found := children(job.pid)) >= 2 else None,
            60,
            "the segment processes to start",
            every=0.05,
        )
        os.kill(job.pid, signal.SIGKILL)
        job.wait()
        wait_for(lambda: not any(alive(p) for p in workers), 10, "the segment processes to end")
    finally:
        job.kill()
        job.wait()


def test_a_stopped_parallel_analysis_stops_its_segment_processes_at_once(tmp_path):
    """A job told to stop (its video deleted) must not wait for its segments to finish."""
    import os
    import time

    frames, _ = scene([("tom-hanks", 1), ("halle-berry", 2)], 20, (70, 90, 140))
    path = tmp_path / "long.mp4"
    encode(frames * 60, path, FPS)  # 1200 frames: seconds of work for each process
    slow = Settings(keyframe_interval=1, deep_interval=1)  # seconds of work each
    info = probe(path)
    bounds = [(0, 600), (600, 1200)]
    started = time.monotonic()
    analyze_parallel(Source(path, info, settings=slow), bounds, 2)
    whole = time.monotonic() - started
    workers: set[int] = set()
    before = children(os.getpid())  # a browser of another test, say

    def stop(percent, stage):
        workers.update(children(os.getpid()) - before)
        if workers:
            raise RuntimeError("stopped")

    started = time.monotonic()
    with pytest.raises(RuntimeError, match="stopped"):
        analyze_parallel(Source(path, info, settings=slow), bounds, 2, stop)
    # It returned long before the segments could have finished, and they are gone.
    assert workers and time.monotonic() - started < whole / 2
    wait_for(lambda: not any(alive(p) for p in workers), 10, "the segment processes to end")


def _track(id, first, last, kin=None, box=(10, 10, 60, 60)):
    track = Track(id=id, keyframes=[(first, box), (last, box)], detections=2, kin=kin)
    track.boxes = {f: box for f in range(first, last + 1)}
    track.samples = np.zeros((1, 4), np.float32)
    return track


def test_parts_of_a_split_track_become_final_together_and_stay_kin_across_a_seam():
    """A track split at 30 whose second part runs into the seam at 60: its first part waits
    for the second (they are named together), and the part that continues it after the seam
    joins the same kin."""
    stitcher = segments.Stitcher([0, 60])
    first, second = _track(1, 10, 29, kin=1), _track(2, 30, 59, kin=1)
    other = _track(3, 0, 9, box=(200, 10, 250, 60))
    handed = stitcher.add(Analysis(tracks=[first, second, other], frames=60, cuts=[], timings={}))
    assert handed == [other]
    after, sibling = _track(100001, 60, 89, kin=100001), _track(100002, 90, 99, kin=100001)
    handed = stitcher.add(Analysis(tracks=[after, sibling], frames=40, cuts=[], timings={}))
    assert {t.kin for t in handed} == {1} and len(handed) == 3
    assert max(second.boxes) == 89


def test_a_followed_box_left_behind_by_a_moving_face_is_not_taken():
    """A correlation tracker stuck on the background a fast face left stays sure of it; where
    the face was moving 6 px a frame, a followed box still where it was last detected is not
    its box. One where the face would be is, and so is any box of a face standing still."""
    cfg = Settings()
    moving = Track(id=1, keyframes=[(0, (100, 100, 150, 150)), (12, (172, 100, 222, 150))])
    assert not _keeps_pace(moving, 24, (170, 100, 220, 150), cfg)
    assert _keeps_pace(moving, 24, (240, 102, 290, 152), cfg)
    still = Track(id=2, keyframes=[(0, (100, 100, 150, 150)), (12, (102, 100, 152, 150))])
    assert _keeps_pace(still, 24, (100, 98, 150, 148), cfg)


def test_a_pace_is_measured_from_where_a_face_was_followed_back_to():
    """Boxes followed back from a track's first detection are a frame apart: its pace is
    measured from the first of them, over their whole stretch, not over one frame of a
    tracker's jitter; later, between its last two keyframes as before."""
    back = [(f, (100 + 2 * (f - 6), 100, 150 + 2 * (f - 6), 150)) for f in range(6, 12)]
    # Jitter on the last followed-back box: 9 px against the face's 2 px a frame.
    back[-1] = (11, (119, 100, 169, 150))
    track = Track(id=1, keyframes=[*back, (12, (112, 100, 162, 150))], opened=12)
    assert pace_keys(track) == (back[0], (12, (112, 100, 162, 150)))
    assert _expected(track, 24) == (136, 100, 186, 150)  # 2 px a frame on, not -7
    track.keyframes.append((24, (136, 100, 186, 150)))
    assert pace_keys(track) == ((12, (112, 100, 162, 150)), (24, (136, 100, 186, 150)))


def test_a_face_near_a_track_only_the_windows_found_continues_it_within_twice_its_size():
    """The small-face windows' boxes of one face vary in size more than the quick pass's: a
    detection 1.6 times the box of a track only windows found, close by, continues it (its
    face), where for a track the quick passes found it would be another face."""
    cfg = Settings()
    windowed = Track(id=1, keyframes=[(0, (800, 540, 851, 599))])  # 59 px
    found = (835, 520, 900, 614)  # 94 px, its centre 45 px away
    assert _near(windowed, found, cfg) > 0
    quick = Track(id=2, keyframes=[(0, (800, 540, 851, 599))], quick_hits=3)
    assert _near(quick, found, cfg) == 0
    assert _near(windowed, (835, 520, 960, 660), cfg) == 0  # 140 px: over twice the size


def test_a_tracked_face_the_quick_pass_misses_is_looked_for_again_where_it_would_be(tmp_path):
    """The light goes down at frame 10 and stays down: a 185 px face of a 1080p stage, 62 px on
    the quick pass's frame, scores 0.07 there, under the 0.3 that continues a track, and 0.64
    in a window around where it would be, at 128 px. Looked for again, it has a detection on
    every pass and a box on every frame; not looked for, it has the first pass's detection
    alone, and a lone detection is taken for noise: no track at all. (The shot's second
    thorough look, which finds it too, is left out: this is the quick passes' part.)"""
    frames = []
    for f in range(49):
        canvas = Image.new("RGB", (1920, 1080), (40, 20, 50))
        canvas.paste(face("halle-berry", 1, 185), (300 + 2 * f, 600))
        light = (1.0, 1.0, 1.0) if f < 10 else (0.05, 0.03, 0.06)
        frames.append(np.clip(np.asarray(canvas) * np.array(light), 0, 255).astype(np.uint8))
    path = tmp_path / "dim.mp4"
    encode(frames, path, 25)
    quick = Settings(second_look=0)
    (track,) = analyze(path, settings=quick).tracks
    assert track.detections == 1 + 48 // quick.keyframe_interval
    assert sorted(track.boxes) == list(range(49))
    left, top, right, bottom = track.boxes[48]
    assert abs((left + right) / 2 - (392 + 2 * 48)) < 20 and abs((top + bottom) / 2 - 692) < 20
    # Its samples are the faces the quick pass saw, not the dim ones only a second look found.
    assert [frame for frame, _ in track.sample_boxes] == [0]
    assert analyze(path, settings=Settings(missed_face=0, second_look=0)).tracks == []


def _small_face_stage(tmp_path, width, height, side, frames=60, appears=5):
    """A face of `side` px crossing a dark stage slowly, on screen from frame `appears` on."""
    out = []
    for f in range(frames):
        canvas = Image.new("RGB", (width, height), (40, 20, 50))
        if f >= appears:
            canvas.paste(face("halle-berry", 1, side), (width // 2 + f, height // 2))
        out.append(np.asarray(canvas))
    path = tmp_path / f"small-{width}.mp4"
    encode(out, path, 25)
    return path


def test_a_small_face_a_shot_begins_without_is_found_by_its_second_thorough_look(tmp_path):
    """A 56 px face of a 1080p stage, 19 px on the quick pass's frame (SCRFD scores it under
    0.1 there, 0.67 at full size), comes on five frames after the shot began: the shot's first
    thorough pass had nothing to see, and no quick pass sees it. The second thorough look, 24
    frames in, finds it; small, it is then followed in windows, and boxed from where the
    tracker can follow it back to. Without that look it was never found."""
    path = _small_face_stage(tmp_path, 1920, 1080, 56)
    (track,) = analyze(path).tracks
    assert track.opened == Settings().second_look
    assert min(track.boxes) <= 12 and max(track.boxes) == 59
    left, top, right, bottom = track.boxes[40]
    assert abs((left + right) / 2 - (960 + 40 + 28)) < 15 and abs((top + bottom) / 2 - 568) < 15
    assert analyze(path, settings=Settings(second_look=0)).tracks == []


def test_a_closer_look_does_not_open_a_second_track_on_a_face_already_matched(tmp_path):
    """On a 1080p frame a small face found by its track's window and weakly by the quick pass,
    the quick pass's box a little off (centre outside the window's box, so both are kept): the
    closer look at the weak one finds the same face, which already continues its track. It is
    not confirmed: that had opened a second track on the face, whose name then won the clash
    and left the longer track unnamed for all its 99 frames."""
    image = np.asarray(_frame_with_face(1920, 1080, 56, (1000, 500)))
    info = probe(_small_face_stage(tmp_path, 1920, 1080, 56, frames=2, appears=0))
    tracker = Tracker(info, 0, 2, Settings(), embed.embedder(), 1)
    found = embed.detector().detect(image, input_size=(1920, 1088), threshold=0.5)
    assert len(found) == 1
    window = found[0]
    # The quick pass's weak box of the same face: its centre just right of the window's box.
    left, top, right, bottom = window.box
    shift = (right - left) * 0.55
    weak = Face((left + shift, top, right + shift, bottom), 0.35, window.keypoints + [shift, 0])
    kept = [window, weak]
    boxes = [to_full(f.box, 1.0, info) for f in kept]
    owner = Track(id=1, keyframes=[(0, boxes[0])])
    confirmed = tracker.look_closer(lambda: image, kept, boxes, {0}, {0: owner})
    assert confirmed == set() and kept[1] is weak
    # Alone, the weak detection is the face a closer look confirms.
    alone = tracker.look_closer(lambda: image, [weak], [boxes[1]], set(), {})
    assert alone == {0}


def _frame_with_face(width, height, side, at):
    canvas = Image.new("RGB", (width, height), (40, 20, 50))
    canvas.paste(face("halle-berry", 1, side), at)
    return canvas


def _boxed(id, frames, box, dx=0):
    track = Track(id=id, keyframes=[(frames[0], box), (frames[-1], box)], detections=len(frames))
    track.boxes = {f: (box[0] + dx * f, box[1], box[2] + dx * f, box[3]) for f in frames}
    return track


def test_a_track_that_boxes_another_tracks_face_twice_over_is_dropped():
    """SCRFD boxed a tilted 150 px face twice, a little apart (IoU 0.3): the second box opened
    a 24-frame track inside the face's 100-frame one. It goes; the face's track stays.
    Two faces, one partly in front of the other (IoU 0.05), are two tracks however long they
    share the screen, and so is a face that passes over another for a few of its frames."""
    face_track = _boxed(1, range(0, 100), (200, 170, 300, 300), dx=1)
    twice = _boxed(2, range(40, 64), (245, 185, 352, 320), dx=1)
    assert _without_doubles([twice, face_track]) == [face_track]

    behind = _boxed(3, range(40, 80), (282, 230, 402, 350), dx=1)  # IoU 0.05 with face_track
    assert _without_doubles([face_track, behind]) == [face_track, behind]
    passing = _boxed(4, range(0, 30), (400, 170, 500, 300), dx=-5)  # over the face at 25-29
    assert _without_doubles([face_track, passing]) == [face_track, passing]


def test_a_large_frames_quick_pass_faces_are_chipped_along_keypoints_found_closer(tmp_path):
    """On a 1080p frame the quick pass sees an 80-120 px face at 27-40 px, and its keypoints
    are a pixel or two off there: the chips cut along them embed further from the same photo's
    own chip than chips cut along keypoints found again in a window where the face is 112 px.
    (The first frame's samples come from its thorough pass, at full size, either way.)"""
    own = {person: embed.embedder().embed_chips(chip(person, 1)[None])[0] for person in PAIR}

    def apart(side, sharpen_face):
        path = tmp_path / f"pair-{side}.mp4"
        if not path.exists():
            frames = []
            for f in range(25):
                canvas = Image.new("RGB", (1920, 1080), (40, 20, 50))
                for k, person in enumerate(PAIR):
                    canvas.paste(face(person, 1, side), (500 + 800 * k + f, 500))
                frames.append(np.asarray(canvas))
            encode(frames, path, 25)
        tracks = analyze(path, settings=Settings(sharpen_face=sharpen_face)).tracks
        assert len(tracks) == 2
        total = 0.0
        for track in tracks:
            person = PAIR[0] if track.boxes[0][0] < 960 else PAIR[1]
            quick = [s for s, (f, _) in zip(track.samples, track.sample_boxes, strict=True) if f]
            assert len(quick) == 2
            total += sum(float(np.linalg.norm(s - own[person])) for s in quick)
        return total

    for side in (80, 120):
        # Measured: 1.10 against 1.24 at 80 px, 0.97 against 1.03 at 120.
        assert apart(side, Settings().sharpen_face) < apart(side, 0)


PAIR = ("tom-hanks", "miley-cyrus")


def _behind(tmp_path):
    """Tom walking right for 101 frames; from frame 20 to 74 Halle's larger face is drawn over
    his, all of it: a face hidden behind another for 55 frames, longer than a lost track is
    kept (Settings.lost_frames)."""
    shots = []
    for f in range(101):
        canvas = Image.new("RGB", (1280, 720), (80, 90, 120))
        canvas.paste(face("tom-hanks", 1, 100), (200 + 3 * f, 300))
        if 20 <= f <= 74:
            canvas.paste(face("halle-berry", 1, 140), (180 + 3 * f, 280))
        shots.append(np.asarray(canvas))
    path = tmp_path / "behind.mp4"
    encode(shots, path, 25)
    return path


def test_a_member_hidden_behind_another_face_is_boxed_through_it(tmp_path, model):
    """Found before and after as two tracks, both named Tom: with the video's cuts, his box
    is carried across the frames Halle's face hid his, along the way he walked; without them
    (nothing known of where a shot ends) the two tracks are left as they were found."""
    analysis = analyze(_behind(tmp_path))
    apart = copy.deepcopy(analysis.tracks)
    name_tracks(apart, model)
    toms = [t for t in apart if t.label == "tom-hanks"]
    assert len(toms) == 2, "the pipeline this test is about found Tom's face again late"
    unbridged = sorted(f for t in toms for f in t.boxes)
    assert not set(range(35, 60)) & set(unbridged)

    name_tracks(analysis.tracks, model, cuts=analysis.cuts)
    toms = [t for t in analysis.tracks if t.label == "tom-hanks"]
    frames = sorted(f for t in toms for f in t.boxes)
    assert frames == list(range(101))  # once a frame each, no frame twice
    for f in (30, 47, 65):
        (box,) = [t.boxes[f] for t in toms if f in t.boxes]
        assert abs((box[0] + box[2]) / 2 - (250 + 3 * f)) < 25
        assert abs((box[1] + box[3]) / 2 - 350) < 25
    assert {t.label for t in analysis.tracks if 47 in t.boxes} == {"tom-hanks", "halle-berry"}


def _named(id, label, frames, box, dx=0):
    track = _boxed(id, frames, box, dx)
    track.label = label
    return track


def test_only_a_gap_between_one_members_tracks_in_one_shot_near_where_she_was_is_bridged():
    face_box = (100, 100, 180, 180)
    cfg = Settings()

    def bridged(later, cuts=(), first_label="tom"):
        earlier = _named(1, first_label, range(0, 20), face_box, dx=2)
        bridge_hidden([earlier, later], list(cuts), cfg)
        return sorted(earlier.boxes)

    # 40 frames hidden, found again where walking on had taken her: every frame boxed.
    assert bridged(_named(2, "tom", range(60, 90), face_box, dx=2)) == list(range(60))
    # ...along the way between the two boxes.
    earlier = _named(1, "tom", range(0, 20), face_box, dx=2)
    bridge_hidden([earlier, _named(2, "tom", range(60, 90), face_box, dx=2)], [], cfg)
    assert earlier.boxes[40] == (180, 100, 260, 180)
    unchanged = list(range(20))
    assert bridged(_named(2, "tom", range(60, 90), face_box, dx=2), cuts=[45]) == unchanged
    assert bridged(_named(2, "tom", range(100, 130), face_box, dx=2)) == unchanged  # too long
    assert bridged(_named(2, "keanu", range(60, 90), face_box, dx=2)) == unchanged
    assert bridged(_named(2, None, range(60, 90), face_box, dx=2)) == unchanged
    assert bridged(_named(2, "tom", range(60, 90), face_box, dx=2), first_label=None) == unchanged
    far = (900, 500, 980, 580)  # 11 face sizes off: another time she came on
    assert bridged(_named(2, "tom", range(60, 90), far)) == unchanged
    small = (220, 100, 250, 130)  # a face a third the size
    assert bridged(_named(2, "tom", range(60, 90), small)) == unchanged
    assert bridged(_named(2, "tom", range(20, 90), face_box, dx=2)) == unchanged  # no gap


def test_a_third_track_of_the_member_in_the_gap_is_bridged_to_on_each_side():
    cfg = Settings()
    face_box = (100, 100, 180, 180)
    first = _named(1, "tom", range(0, 20), face_box)
    middle = _named(2, "tom", range(30, 40), face_box)
    last = _named(3, "tom", range(50, 70), face_box)
    bridge_hidden([last, first, middle], [], cfg)
    assert sorted(first.boxes) == list(range(30))
    assert sorted(middle.boxes) == list(range(30, 50))
    assert sorted(last.boxes) == list(range(50, 70))


def test_a_face_seen_once_is_kept_only_where_no_other_pass_could_see_it(tmp_path):
    """Halle's face flashes for 3 frames mid-shot, where the next pass sees nothing: noise, as
    one lone detection is taken to be. Keanu's is in the video's last shot, 8 frames after a
    cut, where no pass comes after the cut's: kept, boxed to the end, and it stays so
    through a save and load (the joining job reads segments so)."""
    shots = []
    for f in range(56):
        first = f < 48
        canvas = Image.new("RGB", (1280, 720), (70, 90, 140) if first else (160, 120, 50))
        if first:
            canvas.paste(face("tom-hanks", 1, 110), (200 + f, 200))
            if 12 <= f <= 14:
                canvas.paste(face("halle-berry", 1, 110), (800, 300))
        else:
            canvas.paste(face("keanu-reeves", 1, 110), (600, 250))
        shots.append(np.asarray(canvas))
    path = tmp_path / "brief.mp4"
    encode(shots, path, 25)
    analysis = analyze(path)
    assert analysis.cuts == [48]
    boxed = {
        min(t.boxes): (max(t.boxes), (t.boxes[min(t.boxes)][0] + t.boxes[min(t.boxes)][2]) // 2)
        for t in analysis.tracks
    }
    assert len(analysis.tracks) == 2, boxed  # no track at Halle's flash (x 855)
    assert boxed[0][0] == 47
    assert boxed[48][0] == 55 and abs(boxed[48][1] - 655) < 20
    (kept,) = [t for t in analysis.tracks if t.brief]
    assert kept.detections == 1
    segments.save(analysis, tmp_path / "a.npz")
    assert [t.brief for t in segments.load(tmp_path / "a.npz").tracks] == [
        t.brief for t in analysis.tracks
    ]


def _crossing(tell_apart):
    """Tom's and Halle's faces side by side on a 1080p frame; each one's track last boxed 70 px
    towards the other, so that by boxes alone each track is a little nearer the other's
    face."""
    canvas = Image.new("RGB", (1920, 1080), (70, 90, 140))
    canvas.paste(face("tom-hanks", 1, 100), (800, 500))
    canvas.paste(face("halle-berry", 1, 100), (920, 500))
    image = np.asarray(canvas)
    info = _info(1920, 1080)
    cfg = Settings(tell_apart=tell_apart)
    tracker = Tracker(info, 0, 30, cfg, embed.embedder(), 1)
    kept = sorted(
        embed.detector().detect(image, input_size=(1920, 1088), threshold=0.5),
        key=lambda f: f.box[0],
    )
    boxes = [to_full(f.box, 1.0, info) for f in kept]
    assert len(boxes) == 2
    tracks = []
    for person, box, dx in (("tom-hanks", boxes[0], 70), ("halle-berry", boxes[1], -70)):
        moved = (box[0] + dx, box[1], box[2] + dx, box[3])
        track = Track(id=len(tracks) + 1, keyframes=[(0, moved)], quick_hits=1, detections=1)
        track.candidates = [(1.0, 0, moved, chip(person, 1), True)]
        tracks.append(track)
    tracker.active = list(tracks)
    tracker.looked = {}
    matched, _ = tracker.match(12, None, boxes, {0, 1}, kept, lambda: image)
    return {j: t.id for j, t in matched.items()}


def _info(width, height):
    from core.media.probe import VideoInfo

    return VideoInfo(
        width=width, height=height, fps=25.0, frames=30, duration=1.2, rotation=0,
        has_audio=False, audio_codec=None, video_codec="h264", pix_fmt="yuv420p", vfr=False,
    )  # fmt: skip


def test_two_faces_close_together_are_told_apart_by_their_looks():
    """Each face continues its own track: the chips say who is who where boxes are in doubt.
    By boxes alone the two tracks swap faces."""
    assert _crossing(tell_apart=True) == {0: 1, 1: 2}
    assert _crossing(tell_apart=False) == {0: 2, 1: 1}


def test_a_thorough_pass_weak_detection_opens_a_track_where_a_second_detector_sees_a_face():
    """SCRFD-500M scores some faces under the 0.5 that opens a track whatever their size (a
    tilted face under red light: 0.1-0.3 through a whole shot). dlib's MMOD detector is asked
    about each weak detection of a thorough pass on no track: where it finds a face, the
    detection opens a track; the faintest (under the score that continues one) are dropped
    where it finds none, stronger ones stay weak detections. One on a track's face is not
    asked: it continues the track as before."""
    canvas = Image.new("RGB", (1920, 1080), (60, 40, 70))
    canvas.paste(face("halle-berry", 1, 110), (900, 500))
    image = np.asarray(canvas)
    tracker = Tracker(_info(1920, 1080), 0, 30, Settings(), embed.embedder(), 1)
    (real,) = embed.detector().detect(image, input_size=(1920, 1088), threshold=0.5)
    keypoints = real.keypoints

    def weak(box, score):
        return Face(box, score, keypoints)

    on_face = weak(real.box, 0.25)
    wall_faint = weak((300.0, 300.0, 410.0, 420.0), 0.25)  # plain background
    wall_weak = weak((1500.0, 200.0, 1610.0, 320.0), 0.4)
    kept, confirmed = tracker.second_opinion(0, lambda: image, [on_face, wall_faint, wall_weak])
    assert kept == [on_face, wall_weak] and confirmed == {0}

    # On an open track's face: not asked, so a faint one goes and a weak one stays weak.
    box = tuple(int(v) for v in real.box)
    tracker.active = [Track(id=1, keyframes=[(0, box)], detections=1)]
    on_track = weak(real.box, 0.35)
    assert tracker.second_opinion(12, lambda: image, [on_face]) == ([], set())
    assert tracker.second_opinion(12, lambda: image, [on_track]) == ([on_track], set())

    # Switched off: every detection is kept, none confirmed.
    off = Tracker(_info(1920, 1080), 0, 30, Settings(second_opinion=0), embed.embedder(), 1)
    assert off.second_opinion(0, lambda: image, [on_face, wall_faint]) == (
        [on_face, wall_faint],
        set(),
    )


def test_a_pass_asks_for_few_second_opinions_strongest_first_and_none_on_tiny_boxes():
    """Each second opinion costs 0.1-0.2 s: a pass asks about its strongest weak detections
    only, `second_opinions` of them; the faintest beyond them go unasked, as without it. A box
    under `second_opinion_side` is never asked about."""
    canvas = Image.new("RGB", (1920, 1080), (60, 40, 70))
    people = ["halle-berry", "tom-hanks", "keanu-reeves", "hugh-laurie"]
    for k, person in enumerate(people):
        canvas.paste(face(person, 1, 110), (200 + 400 * k, 400))
    image = np.asarray(canvas)
    real = sorted(
        embed.detector().detect(image, input_size=(1920, 1088), threshold=0.5),
        key=lambda f: f.box[0],
    )
    assert len(real) == 4
    weak = [Face(f.box, 0.29 - 0.01 * k, f.keypoints) for k, f in enumerate(real)]
    tracker = Tracker(_info(1920, 1080), 0, 30, Settings(second_opinions=3), embed.embedder(), 1)
    kept, confirmed = tracker.second_opinion(0, lambda: image, weak)
    assert kept == weak[:3] and confirmed == {0, 1, 2}

    # The same faces, smaller than the side a box needs to be asked about.
    cfg = Settings(second_opinion_side=150)
    small = Tracker(_info(1920, 1080), 0, 30, cfg, embed.embedder(), 1)
    assert small.second_opinion(0, lambda: image, weak) == ([], set())
