"""The player's clock: every frame's time as PyAV (and a browser) gives it, from the probe."""

from pathlib import Path

import av
import numpy as np
import pytest

from core.media.clock import Clock
from core.media.probe import MediaError, browsers_cannot_play, probe
from core.media.render import join_parts, render, render_part

Clips = object


def pyav_times(path: Path) -> list[float]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [float(frame.time) for frame in container.decode(stream)]


def test_a_regular_clock_counts_from_the_first_frame() -> None:
    clock = Clock.regular(0.85, 25.0, 50)
    assert clock.time(0) == 0.85 and clock.time(10) == pytest.approx(1.25)
    assert clock.time(50) == clock.end == pytest.approx(2.85)
    assert clock.frame_at(0.0) == 0  # before the first frame, a player shows the first
    assert clock.frame_at(1.25) == 10 and clock.frame_at(1.2899) == 10
    assert clock.frame_at(99.0) == 49
    assert np.ravel(clock.runs([0, 1, 2, 10, 11])) == pytest.approx([0.85, 0.97, 1.25, 1.33])
    assert clock.seconds([0, 1, 2]) == pytest.approx(0.12)
    assert clock.to_json() == {"first_frame_time": 0.85, "fps": 25.0, "frame_times": None}


def test_an_irregular_clock_keeps_every_time() -> None:
    times = [0.0, 0.04, 0.12, 0.16, 0.2]
    clock = Clock.of(times, 25.0, 0.24)
    assert clock.times is not None
    assert clock.frame_at(0.1) == 1 and clock.frame_at(0.12) == 2
    assert clock.seconds([1]) == pytest.approx(0.08)  # shown until the next frame
    assert np.ravel(clock.runs([1, 2])) == pytest.approx([0.04, 0.16])
    assert clock.to_json()["frame_times"] == times


def test_a_clock_rounded_to_milliseconds_is_still_regular() -> None:
    times = [round(n * 1001 / 30000, 3) for n in range(300)]  # 29.97 fps in a 1 ms timebase
    assert Clock.of(times, 30000 / 1001, 10.0).times is None
    assert Clock.of([t + 0.002 * (n == 7) for n, t in enumerate(times)], 30000 / 1001, 10.0).times


@pytest.mark.parametrize(
    "name", ["av.mp4", "late.mp4", "both_late.mp4", "vfr.mp4", "vorbis.mkv", "rotated.mp4"]
)
def test_the_probe_gives_every_frame_the_time_pyav_decodes_it_at(clips: Clips, name) -> None:
    path = clips(name)
    clock = probe(path).clock()
    expected = pyav_times(path)
    assert clock.frames == len(expected)
    assert clock.all_times() == pytest.approx(expected, abs=1e-3)
    assert [clock.time(n) for n in range(len(expected))] == pytest.approx(expected, abs=1e-3)


def test_a_late_file_keeps_its_clock_and_the_players_duration(clips: Clips) -> None:
    info = probe(clips("both_late.mp4"))
    assert info.first_time == pytest.approx(0.6, abs=1e-3)  # not moved to the file's start
    assert info.media_duration == pytest.approx(2.0, abs=0.03)
    assert info.frame_times is None


def test_a_variable_rate_keeps_its_frame_times(clips: Clips) -> None:
    info = probe(clips("vfr.mp4"))
    assert info.vfr and info.frame_times is not None
    assert np.diff(info.frame_times)[:3] == pytest.approx([0.04] * 3)  # then they vary
    assert info.frame_times == pytest.approx(pyav_times(clips("vfr.mp4")), abs=1e-6)


def test_frames_that_share_a_timestamp_are_refused_with_the_reason(clips: Clips) -> None:
    with pytest.raises(MediaError, match="several frames share one timestamp"):
        probe(clips("same_times.mkv"))


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("av.mp4", None),
        ("vorbis.mkv", None),
        ("rotated.mp4", None),
        ("hevc.mkv", "browsers do not play HEVC (H.265) video"),
        ("xvid.avi", "browsers do not play AVI files"),
        ("pcm.mov", "browsers do not play its sound (pcm_s16le)"),
        ("10bit.mp4", "browsers do not play H.264 video in yuv420p10le"),
    ],
)
def test_it_says_why_browsers_cannot_play_a_file(clips: Clips, name, reason) -> None:
    assert browsers_cannot_play(probe(clips(name))) == reason


@pytest.mark.parametrize("name", ["late.mp4", "both_late.mp4"])
def test_renders_keep_the_originals_clock(clips: Clips, tmp_path: Path, name) -> None:
    src = clips(name)
    info = probe(src)
    whole, first, second, joined = (tmp_path / f"{n}.mp4" for n in ("w", "a", "b", "j"))
    render(src, whole, info, lambda index: ())
    half = info.frames // 2
    render_part(src, first, info, lambda index: (), 0, half)
    render_part(src, second, info, lambda index: (), half, info.frames)
    join_parts([first, second], src, joined, info)
    for out in (whole, joined):
        got = probe(out)
        assert got.clock().all_times() == pytest.approx(info.clock().all_times(), abs=1e-3)
        assert got.first_time == pytest.approx(info.first_time, abs=1e-3)
        assert got.media_duration == pytest.approx(info.media_duration, abs=0.03)
