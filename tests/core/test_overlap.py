"""The render behind the analysis: the same tracks, names and pixels as one after the other."""

import copy
import os
import time

import pytest

from core.media.probe import probe
from core.media.render import MediaError, render
from core.tracking import segments
from core.tracking.naming import name_tracks
from core.tracking.overlap import Naming, analyze_and_render, part_bounds, track_labels
from core.tracking.segments import Source, Stitcher, analyze_parallel
from core.tracking.tracker import analyze
from core.tracking.tracks import Settings
from tests.conftest import wait_for
from tests.core.stage import alive, children, encode, frame_hashes, scene

LOOKS = {
    "tom-hanks": ("Tom Hanks", (200, 30, 30)),
    "halle-berry": ("Halle Berry", (30, 200, 30)),
    "keanu-reeves": ("Keanu Reeves", (30, 30, 200)),
}
# Seams inside both shots (the cut is at frame 30) and one on it.
BOUNDS = [(0, 20), (20, 30), (30, 45), (45, 60)]


def _parts(path, bounds):
    info = probe(path)
    return [
        segments.analyze_segment(Source(path, info), start, end, number)
        for number, (start, end) in enumerate(bounds)
    ]


def test_the_stitcher_hands_out_tracks_that_never_change_and_joins_as_join_does(clip):
    path, _ = clip
    starts = [start for start, _ in BOUNDS]
    stitcher = Stitcher(starts)
    handed, finals = [], []
    for part in _parts(path, BOUNDS):
        final = stitcher.add(part)
        finals.append(stitcher.final_before)
        assert all(t.last_frame < stitcher.final_before for t in final)
        handed += [(t, copy.deepcopy((t.boxes, t.samples.tolist(), t.keyframes))) for t in final]
    result = stitcher.result()
    # Frames became final as parts came in: none while the first shot's tracks could go on,
    # then the first shot, then all.
    assert finals == [0, 0, 30, 60]
    # Nothing handed out changed afterwards, and every track of the result was handed out once.
    for track, (boxes, samples, keyframes) in handed:
        assert (track.boxes, track.samples.tolist(), track.keyframes) == (boxes, samples, keyframes)
    assert sorted(id(t) for t in result.tracks) == sorted(id(t) for t, _ in handed)
    joined = segments.join(_parts(path, BOUNDS), starts)
    assert [sorted(t.boxes.items()) for t in result.tracks] == [
        sorted(t.boxes.items()) for t in joined.tracks
    ]
    # One track per face per shot: the seams inside shots were joined.
    assert len(result.tracks) == len(analyze(path).tracks) == 4


@pytest.mark.parametrize("beside", [True, False], ids=["render-beside", "render-after"])
def test_analysed_and_rendered_together_gives_the_tracks_names_and_pixels_of_one_after_other(
    clip, model, tmp_path, beside
):
    path, _ = clip
    info = probe(path)
    seen = []
    together = analyze_and_render(
        Source(path, info),
        tmp_path / "together.mp4",
        BOUNDS,
        2,
        Naming(model, LOOKS),
        beside=beside,
        progress=lambda a, r: seen.append((a, r)),
    )
    apart = analyze_parallel(Source(path, info), BOUNDS, 2)
    name_tracks(apart.tracks, model)
    labels = track_labels(apart.tracks, LOOKS)
    render(path, tmp_path / "apart.mp4", info, lambda index: labels.get(index, ()))

    assert [(t.id, t.label, t.confidence, sorted(t.boxes.items())) for t in together.tracks] == [
        (t.id, t.label, t.confidence, sorted(t.boxes.items())) for t in apart.tracks
    ]
    assert {t.label for t in together.tracks} >= {"tom-hanks", "halle-berry", "keanu-reeves"}
    hashes = frame_hashes(tmp_path / "together.mp4")
    assert len(hashes) == 60 and hashes == frame_hashes(tmp_path / "apart.mp4")
    assert hashes != frame_hashes(path)  # labels were drawn
    assert probe(tmp_path / "together.mp4").frames == 60
    assert seen[-1] == (100.0, 100.0)
    assert [a for a, _ in seen] == sorted(a for a, _ in seen)
    if not beside:  # nothing was drawn before the names were all in
        assert all(r == 0.0 for a, r in seen if a < 100.0)


def test_a_failed_render_fails_the_run_with_its_reason_and_leaves_no_process(clip, model, tmp_path):
    path, _ = clip
    before = children(os.getpid())
    with pytest.raises(MediaError, match="unknown x264 preset 'glacial'"):
        analyze_and_render(
            Source(path, probe(path)),
            tmp_path / "out.mp4",
            BOUNDS,
            2,
            Naming(model, LOOKS),
            preset="glacial",
        )
    assert not (tmp_path / "out.mp4").exists()
    assert children(os.getpid()) - before == set()


@pytest.fixture(params=["default", "rq"])
def sigterm(request):
    """SIGTERM as a plain process has it, and as an RQ worker has it: a handler that asks for
    a warm shutdown and carries on, which forked children inherit."""
    import signal

    before = signal.getsignal(signal.SIGTERM)
    if request.param == "rq":
        signal.signal(signal.SIGTERM, lambda number, frame: None)
    yield request.param
    signal.signal(signal.SIGTERM, before)


def test_a_stopped_run_stops_its_analysis_and_render_processes_at_once(model, tmp_path, sigterm):
    frames, _ = scene([("tom-hanks", 1), ("halle-berry", 2)], 20, (70, 90, 140))
    path = tmp_path / "long.mp4"
    encode(frames * 60, path, 25)  # 1200 frames: seconds of work for each process
    slow = Settings(keyframe_interval=1, deep_interval=1)
    info = probe(path)
    before = children(os.getpid())
    workers: set[int] = set()

    def stop(analysed, rendered):
        workers.update(children(os.getpid()) - before)
        if len(workers) >= 3:  # the render and two analyses
            raise RuntimeError("stopped")

    started = time.monotonic()
    with pytest.raises(RuntimeError, match="stopped"):
        analyze_and_render(
            Source(path, info, settings=slow),
            tmp_path / "out.mp4",
            part_bounds(info),
            2,
            Naming(model, LOOKS),
            progress=stop,
        )
    assert time.monotonic() - started < 30
    wait_for(lambda: not any(alive(p) for p in workers), 10, "the segment processes to end")
    assert not (tmp_path / "out.mp4").exists()


@pytest.mark.parametrize(
    ("seconds", "parts"), [(20, 2), (30, 3), (120, 12), (600, 60), (8, 1), (12, 2)]
)
def test_parts_are_about_ten_seconds_at_least_two_none_under_five(seconds, parts):
    class Info:
        fps = 30.0
        frames = int(seconds * 30)

    bounds = part_bounds(Info)
    assert len(bounds) == parts
    assert bounds[0][0] == 0 and bounds[-1][1] == Info.frames
    assert all(end - start >= 150 for start, end in bounds)


def test_tracks_handed_out_as_they_become_final_are_the_tracks_kept_to_the_end(
    clip, model, tmp_path
):
    """With on_final, batches go out numbered in order and are let go: together they are the
    analysis a run that keeps them returns."""
    path, _ = clip
    info = probe(path)
    batches, reach = [], []

    def on_final(tracks, final_before):
        reach.append(final_before)
        assert all(t.last_frame < final_before for t in tracks)
        if tracks:
            batches.append(tracks)

    source, naming = Source(path, info), Naming(model, LOOKS)
    let_go = analyze_and_render(source, tmp_path / "a.mp4", BOUNDS, 2, naming, on_final=on_final)
    kept = analyze_and_render(source, tmp_path / "b.mp4", BOUNDS, 2, naming)

    assert let_go.tracks == [] and len(batches) >= 2  # one batch per shot at least
    handed = [t for batch in batches for t in batch]
    assert [(t.id, t.label, sorted(t.boxes.items())) for t in handed] == [
        (t.id, t.label, sorted(t.boxes.items())) for t in kept.tracks
    ]
    assert [t.id for t in handed] == list(range(1, len(handed) + 1))
    assert let_go.cuts == kept.cuts and let_go.frames == kept.frames == 60
    # Once per part, how far every track is final: on, never back, to the last frame.
    assert len(reach) == len(BOUNDS) and reach == sorted(reach) and reach[-1] == 60


def test_a_render_that_ends_while_the_last_names_are_stored_is_a_success(clip, model, tmp_path):
    """The render can draw its last frame and end while the job still stores the last names
    (on_final is slow: a database, S3); the labels it no longer needs are not an error."""
    import time

    path, _ = clip
    info = probe(path)

    def slow_store(tracks, final_before):
        if final_before == info.frames:
            time.sleep(2.0)  # the render of 60 small frames is done long before this

    source, naming = Source(path, info), Naming(model, LOOKS)
    out = tmp_path / "out.mp4"
    analysis = analyze_and_render(source, out, BOUNDS, 2, naming, on_final=slow_store)
    assert analysis.frames == 60
    assert probe(out).frames == 60


def test_a_finished_part_is_replaced_before_its_result_is_handed_out(tmp_path):
    """While the caller joins, names and stores one part, the next part already runs: no core
    waits for the caller."""
    forked = segments._Forked(2)
    started = tmp_path / "started"

    def second(report):
        started.write_text("yes")
        return "second"

    forked.add(lambda report: "first")
    forked.add(second)
    results = forked.finished(1, lambda done: None)
    number, value = next(results)
    assert (number, value) == (0, "first")
    # Only one process at a time: the second task can only have started when the first ended.
    wait_for(started.exists, 10, "the second part to start")
    assert list(results) == [(1, "second")]
