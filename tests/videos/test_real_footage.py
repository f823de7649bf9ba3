"""Files as people have them (tests/footage.py) go through the whole pipeline on the player's
clock: every exported time is the time a player shows the frame, boxes are in the picture a
player shows, and the labelled MP4 keeps every frame, in order, at its time, with its sound."""

import json

import av
import pytest

from base.storage import local_copy
from core.media.probe import probe
from tests import footage
from videos import exports, selectors

pytestmark = pytest.mark.django_db(transaction=True)


def audio_start(path) -> float | None:
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        packet = next(p for p in container.demux(stream) if p.pts is not None)
        return float(packet.pts * stream.time_base)


@pytest.mark.parametrize("name", footage.FILES)
def test_a_real_file_is_named_on_the_players_clock(footage_dir, footage_video, name):
    recipe = footage.RECIPES[name]
    video = footage_video(name)
    source = footage.make(footage_dir, name)
    times = footage.frame_times(source)
    shows = footage.clip_frames(source, recipe.rotation)
    half = 0.5 / probe(source).fps

    data = exports.predictions(video)
    assert data["video"]["frames"] == len(times)
    assert data["video"]["first_frame_time"] == pytest.approx(times[0], abs=1e-3)
    assert data["detections"], "no faces found"
    named = {}
    for d in data["detections"]:
        # The time a player shows the frame (PyAV's frame.time is a browser's mediaTime).
        assert d["time"] == pytest.approx(times[d["frame"]], abs=min(half, 1e-3)), d
        if d["member"] is not None:
            named.setdefault(d["member"], []).append(d)
    assert set(named) == set(footage.KNOWN)
    for member, rows in named.items():
        for d in rows:
            # Where the face is in the upright picture of the clip frame this frame shows.
            where = footage.truth(recipe, shows[d["frame"]])
            assert footage.iou(d["box"], where[member]) > 0.5, (member, d, where.get(member))
    if data["video"]["frame_times"] is not None:
        assert data["video"]["frame_times"] == pytest.approx(times, abs=1e-6)
    else:
        first, fps = data["video"]["first_frame_time"], data["video"]["fps"]
        assert [first + n / fps for n in range(len(times))] == pytest.approx(times, abs=1e-3)

    # The labelled MP4: every frame, in order, at the original's times, with its sound.
    with local_copy(video.labelled) as labelled:
        assert footage.frame_times(labelled) == pytest.approx(times, abs=1e-3)
        assert footage.clip_frames(labelled) == shows  # upright, no turn left to make
        if recipe.audio:
            assert audio_start(labelled) == pytest.approx(audio_start(source), abs=0.005)
            assert probe(labelled).media_duration == pytest.approx(video.duration, abs=0.05)
        else:
            assert not probe(labelled).has_audio

    # Cues, the timeline and screen time are on the same clock.
    cues = exports.webvtt(video).split("\n\n")[1:]
    first_named = min(d["time"] for rows in named.values() for d in rows)
    assert cues and cues[0].split("\n")[1].startswith(_stamp(first_named))
    spans = selectors.timeline(video)
    assert min(s["start"] for runs in spans.values() for s in runs) == pytest.approx(first_named)
    for person in selectors.screen_time(video):
        frames = {d["frame"] for d in named[person["slug"]]}
        shown = sum(_next(times, n, video) - times[n] for n in frames)
        assert person["seconds"] == pytest.approx(shown, abs=0.05)

    # Browsers get a copy on the same clock only when they cannot play the original.
    assert bool(video.preview) is not recipe.browsers_play
    if video.preview:
        with local_copy(video.preview) as copy:
            assert footage.frame_times(copy) == pytest.approx(times, abs=1e-3)
            assert probe(copy).video_codec == "h264"


def _next(times, n, video) -> float:
    return times[n + 1] if n + 1 < len(times) else video.clock().end


def _stamp(seconds: float) -> str:
    return exports._stamp(seconds)


def test_the_late_video_starts_where_a_player_shows_it(footage_video):
    video = footage_video("late_video.mp4")
    data = json.loads(json.dumps(exports.predictions(video)))
    assert data["video"]["first_frame_time"] == pytest.approx(0.85, abs=1e-3)
    assert min(d["time"] for d in data["detections"]) == pytest.approx(0.85, abs=1e-3)
    # The header's duration is the player's: the sound starts 0.85 s before the picture.
    assert video.duration == pytest.approx(3.25, abs=0.02)
    assert video.duration_label() == "0:03"
