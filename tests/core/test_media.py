"""core.media on tiny real clips made by ffmpeg (see conftest.py)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from core.media.decode import read_frames
from core.media.draw import Label, draw_label, draw_labels_yuv, yuv_planes
from core.media.probe import MediaError, VideoInfo, ffmpeg_exe, ffprobe_exe, probe
from core.media.render import join_parts, render, render_part, transcode
from tests.core.conftest import COUNTER_FRAMES, COUNTER_STEP

Clips = Callable[[str], Path]


def counter_value(frame: np.ndarray) -> int:
    """The frame index a counter-clip frame shows (its grey level / step)."""
    return round(float(frame.mean()) / COUNTER_STEP)


def audio_packets(path: Path) -> list[tuple[str, str]]:
    """(size, crc) of every audio packet, as a stream copy sees them."""
    cmd = [ffmpeg_exe(), "-v", "error", "-nostdin", "-i", str(path), "-map", "0:a:0"]
    out = subprocess.run([*cmd, "-c", "copy", "-f", "framecrc", "-"], capture_output=True)
    rows = [line.split(",") for line in out.stdout.decode().splitlines() if line[:1] != "#"]
    return [(r[4].strip(), r[5].strip()) for r in rows]


def copy_render(src: Path, dst: Path, **kwargs: object) -> VideoInfo:
    info = probe(src)
    render(src, dst, info, lambda index: (), **kwargs)  # type: ignore[arg-type]
    return info


def first_frame(path: Path) -> np.ndarray:
    gen = read_frames(path, probe(path), end=1)
    return next(gen)[1]


# --------------------------------------------------------------------------- binaries and probe


def test_it_finds_an_ffmpeg_binary() -> None:
    assert Path(ffmpeg_exe()).is_file()
    assert ffprobe_exe() is None or Path(ffprobe_exe()).is_file()  # type: ignore[arg-type]


def test_it_probes_size_rate_frames_duration_and_codecs(clips: Clips) -> None:
    info = probe(clips("av.mp4"))
    assert (info.width, info.height) == (160, 120)
    assert info.fps == 25
    assert info.frames == 50
    assert info.duration == pytest.approx(2.0, abs=1e-6)
    assert info.rotation == 0
    assert info.has_audio and info.audio_codec == "aac"
    assert info.video_codec == "h264" and info.pix_fmt == "yuv420p"
    assert not info.vfr


def test_it_probes_a_video_without_audio(clips: Clips) -> None:
    info = probe(clips("silent.mp4"))
    assert not info.has_audio and info.audio_codec is None and info.audio_index is None


def test_it_reports_the_displayed_size_of_a_rotated_video(clips: Clips) -> None:
    info = probe(clips("rotated.mp4"))
    assert info.rotation == 90
    assert (info.width, info.height) == (120, 160)


def test_it_detects_variable_frame_rate(clips: Clips) -> None:
    info = probe(clips("vfr.mp4"))
    assert info.vfr
    assert info.frames == 50
    # 1.5 s of frame starts; the last frame keeps the 40 ms the lavfi source gave it.
    assert info.duration == pytest.approx(1.52, abs=1e-3)
    assert info.fps == pytest.approx(50 / 1.52, rel=1e-3)


def test_it_reports_the_pixel_format_of_a_10_bit_video(clips: Clips) -> None:
    assert probe(clips("10bit.mp4")).pix_fmt == "yuv420p10le"


def test_it_rejects_a_text_file_named_mp4(tmp_path: Path) -> None:
    path = tmp_path / "notes.mp4"
    path.write_text("this is not a video\n" * 20)
    with pytest.raises(MediaError, match=r"notes\.mp4: not a readable video"):
        probe(path)


def test_it_rejects_an_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.mp4"
    path.touch()
    with pytest.raises(MediaError, match="file is empty"):
        probe(path)


def test_it_rejects_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="no such file"):
        probe(tmp_path / "gone.mp4")


def test_it_rejects_a_truncated_mp4(clips: Clips, tmp_path: Path) -> None:
    data = clips("av.mp4").read_bytes()
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(MediaError, match="truncated"):
        probe(path)


def test_it_rejects_an_mp4_cut_before_its_index(clips: Clips, tmp_path: Path) -> None:
    data = clips("silent.mp4").read_bytes()  # index (moov) at the end, so a cut loses it
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(MediaError, match="truncated"):
        probe(path)


def test_it_rejects_an_audio_only_file(clips: Clips) -> None:
    with pytest.raises(MediaError, match=r"no video stream \(audio-only\)"):
        probe(clips("audio.m4a"))


# --------------------------------------------------------------------------- read_frames


def test_it_reads_every_frame_in_order_as_rgb(clips: Clips) -> None:
    path = clips("counter.mp4")
    frames = list(read_frames(path, probe(path)))
    assert [i for i, _ in frames] == list(range(COUNTER_FRAMES))
    assert [counter_value(f) for _, f in frames] == list(range(COUNTER_FRAMES))
    assert frames[0][1].shape == (120, 160, 3) and frames[0][1].dtype == np.uint8


@pytest.mark.parametrize(("start", "end"), [(13, 29), (0, 3), (8, 9), (45, None)])
def test_it_reads_exactly_the_frames_of_a_range(clips: Clips, start: int, end: int | None) -> None:
    path = clips("counter.mp4")
    got = [(i, counter_value(f)) for i, f in read_frames(path, probe(path), start=start, end=end)]
    expected = list(range(start, COUNTER_FRAMES if end is None else end))
    assert got == [(i, i) for i in expected]


def test_it_reads_a_range_of_a_variable_rate_video(clips: Clips) -> None:
    path = clips("vfr.mp4")
    got = [(i, counter_value(f)) for i, f in read_frames(path, probe(path), start=20, end=30)]
    assert got == [(i, i) for i in range(20, 30)]


def test_it_counts_every_frame_of_a_variable_rate_video(clips: Clips) -> None:
    path = clips("vfr.mp4")
    values = [counter_value(f) for _, f in read_frames(path, probe(path))]
    assert values == list(range(COUNTER_FRAMES))  # no frame duplicated or dropped


def test_one_decoder_thread_gives_the_same_frames(clips: Clips) -> None:
    path = clips("counter.mp4")
    info = probe(path)
    threaded = read_frames(path, info, start=9, pixel_format="yuv420p")
    single = read_frames(path, info, start=9, pixel_format="yuv420p", threads=1)
    pairs = list(zip(threaded, single, strict=True))
    assert len(pairs) == COUNTER_FRAMES - 9
    assert all(a[0] == b[0] and np.array_equal(a[1], b[1]) for a, b in pairs)


def test_it_downscales_in_ffmpeg(clips: Clips) -> None:
    path = clips("counter.mp4")
    index, frame = next(read_frames(path, probe(path), scale_to_width=80, start=7))
    assert index == 7 and frame.shape == (60, 80, 3)
    assert counter_value(frame) == 7


def test_it_never_upscales(clips: Clips) -> None:
    path = clips("av.mp4")
    _, frame = next(read_frames(path, probe(path), scale_to_width=640))
    assert frame.shape == (120, 160, 3)


def test_it_applies_rotation_when_reading(clips: Clips) -> None:
    frame = first_frame(clips("rotated.mp4"))
    assert frame.shape == (160, 120, 3)
    assert frame[:80].mean() > 200 and frame[80:].mean() < 50  # the white half is on top


def test_it_decodes_10_bit_video_to_8_bit_rgb(clips: Clips) -> None:
    path = clips("10bit.mp4")
    frames = list(read_frames(path, probe(path)))
    assert len(frames) == 25
    assert frames[0][1].dtype == np.uint8 and frames[0][1].std() > 10  # a picture, not a blank


def open_handles(path: Path) -> int:
    """How many of this process's file descriptors point at path."""
    count = 0
    for fd in Path("/proc/self/fd").iterdir():
        try:
            count += os.readlink(fd) == str(path)
        except OSError:  # closed meanwhile
            continue
    return count


def test_it_lets_go_of_the_file_when_the_reader_stops_early(clips: Clips) -> None:
    path = clips("av.mp4")
    gen = read_frames(path, probe(path))
    next(gen)
    assert open_handles(path) == 1  # decoding
    gen.close()
    assert open_handles(path) == 0


def test_it_rejects_a_reversed_range(clips: Clips) -> None:
    path = clips("av.mp4")
    with pytest.raises(ValueError, match="bad frame range"):
        read_frames(path, probe(path), start=10, end=5)  # at the call, not at the first frame


def test_an_empty_range_opens_nothing(clips: Clips) -> None:
    path = clips("av.mp4")
    frames = read_frames(path, probe(path), start=5, end=5)
    assert open_handles(path) == 0 and list(frames) == []


# --------------------------------------------------------------------------- draw_label


def test_the_label_changes_the_pixels_inside_the_box() -> None:
    frame = np.zeros((240, 320, 3), np.uint8)
    draw_label(frame, (100, 80, 200, 200), "Nayeon", (255, 0, 0))
    assert (frame[80, 100:201] == (255, 0, 0)).all()  # top edge of the box
    assert frame[:80].any()  # the tag sits above the box
    assert not frame[201:].any() and not frame[:, 205:].any()


def test_the_tag_text_contrasts_with_its_background() -> None:
    for color in ((255, 255, 0), (0, 0, 128)):
        frame = np.zeros((240, 320, 3), np.uint8)
        draw_label(frame, (100, 80, 200, 200), "Momo", color)
        tag = frame[:79, 100:200].reshape(-1, 3).astype(int)
        on_tag = (tag == color).all(axis=1)
        assert on_tag.sum() > 200  # the filled background
        luma = tag @ (0.299, 0.587, 0.114)
        tag_luma = np.dot(color, (0.299, 0.587, 0.114))
        assert (abs(luma - tag_luma) > 120).sum() > 20  # and text far from it in brightness


def test_the_tag_slides_inside_the_frame_at_the_edges() -> None:
    def footprint(box: tuple[int, int, int, int]) -> int:
        frame = np.zeros((240, 320, 3), np.uint8)
        draw_label(frame, box, "Jennifer Aniston", (0, 200, 0))
        return int(frame.any(axis=2).sum())

    inside = footprint((120, 100, 180, 160))
    # Same box size against the right edge and against the top: nothing cut off.
    assert footprint((259, 100, 319, 160)) == inside
    corner = np.zeros((240, 320, 3), np.uint8)
    draw_label(corner, (0, 0, 60, 60), "Jennifer Aniston", (0, 200, 0))
    assert corner[1:10, 1:60].any()  # tag drawn inside the top of the box


def test_a_box_partly_outside_the_frame_is_clamped() -> None:
    frame = np.zeros((120, 160, 3), np.uint8)
    draw_label(frame, (-30, -30, 400, 400), "Sana", (255, 255, 255))
    assert frame[:, 0].all() and frame[-1].all()  # the box runs along the frame's edges


@pytest.mark.parametrize("box", [(100, 80, 200, 200), (0, 0, 61, 61), (259, 101, 319, 161)])
@pytest.mark.parametrize("color", [(255, 95, 162), (0, 0, 128), (255, 255, 0)])
def test_a_label_drawn_in_yuv_looks_like_the_one_drawn_in_rgb(box, color) -> None:
    rng = np.random.default_rng(0)
    background = rng.integers(40, 200, (240, 320, 3), dtype=np.uint8)
    rgb = background.copy()
    draw_label(rgb, box, "Jihyo", color)
    # OpenCV's I420 conversions are BT.601 limited range: the matrix draw_labels_yuv is told.
    yuv = cv2.cvtColor(background, cv2.COLOR_RGB2YUV_I420)
    before = yuv.copy()
    draw_labels_yuv(yuv_planes(yuv), [Label(box, "Jihyo", color)], "smpte170m")
    back = cv2.cvtColor(yuv, cv2.COLOR_YUV2RGB_I420).astype(int)
    changed = (rgb != background).any(axis=2)
    # Box and tag come out in the label's colour (chroma is shared by 2x2 pixels, so compare
    # the tag's inside), and pixels far from the label keep their bytes exactly.
    tag = changed & (np.abs(rgb.astype(int) - color).max(axis=2) == 0)
    inner = cv2.erode(tag.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    assert inner.sum() > 20
    assert np.abs(back[inner] - color).max() <= 12
    near = cv2.dilate(changed.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    luma = yuv[:240]
    assert (luma[~near] == before[:240][~near]).all()
    # The text is there, in the ink draw_label chose.
    assert ((rgb != background).any(axis=2) & ~tag).sum() > 20


# --------------------------------------------------------------------------- render


def test_it_renders_h264_with_the_aac_audio_copied(clips: Clips, tmp_path: Path) -> None:
    src, out = clips("av.mp4"), tmp_path / "out.mp4"
    info = copy_render(src, out)
    got = probe(out)
    assert (got.width, got.height, got.frames) == (info.width, info.height, info.frames)
    assert abs(got.duration - info.duration) <= 1 / info.fps
    assert got.video_codec == "h264" and got.pix_fmt == "yuv420p"
    assert got.audio_codec == "aac"
    assert audio_packets(out) == audio_packets(src)  # copied bit for bit, not re-encoded
    data = out.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")  # faststart: playable while downloading


def test_it_draws_each_frames_labels_on_that_frame(clips: Clips, tmp_path: Path) -> None:
    src, out = clips("counter.mp4"), tmp_path / "out.mp4"
    seen: list[int] = []

    def labels(index: int) -> list[Label]:
        seen.append(index)
        return [Label((20, 40, 60, 80), "", (255, 0, 0))] if index >= 25 else []

    render(src, out, probe(src), labels)
    assert seen == list(range(COUNTER_FRAMES))
    frames = [f for _, f in read_frames(out, probe(out))]
    assert len(frames) == COUNTER_FRAMES
    # Every frame stays itself away from the box (the counter is the frame's grey level).
    assert [counter_value(f[:, 70:]) for f in frames] == list(range(COUNTER_FRAMES))
    # The box's left edge is red from frame 25 on; its inside is left as it was.
    edge = [f[45:75, 20].astype(int).mean(axis=0) for f in frames]
    red = [bool(r > 150 and r - g > 80) for r, g, _ in edge]
    assert red == [i >= 25 for i in range(COUNTER_FRAMES)]
    source = dict(read_frames(src, probe(src), start=30, end=31))[30]
    assert np.abs(frames[30][50:70, 30:50].astype(int) - source[50:70, 30:50]).max() < 12


def _render_in_parts(src: Path, folder: Path, cuts: list[int], labels) -> Path:
    info = probe(src)
    parts = []
    for number, (start, end) in enumerate(zip(cuts, cuts[1:], strict=False)):
        parts.append(folder / f"part {number}'s.mp4")  # a space and a quote in the name
        assert render_part(src, parts[-1], info, labels, start, end) == end - start
    join_parts(parts, src, folder / "joined.mp4", info)
    return folder / "joined.mp4"


def test_parts_rendered_apart_and_joined_give_every_frame_once_with_its_labels(
    clips: Clips, tmp_path: Path
) -> None:
    # Cuts between keyframes (the clip has one every 8 frames): each part seeks back to one.
    src, seen = clips("counter.mp4"), []

    def labels(index: int) -> list[Label]:
        seen.append(index)
        return [Label((20, 40, 60, 80), "", (255, 0, 0))] if index >= 25 else []

    out = _render_in_parts(src, tmp_path, [0, 13, 29, COUNTER_FRAMES], labels)
    assert seen == list(range(COUNTER_FRAMES))
    info, got = probe(src), probe(out)
    assert got.frames == COUNTER_FRAMES and got.duration == pytest.approx(info.duration, abs=1e-3)
    frames = [f for _, f in read_frames(out, got)]
    assert [counter_value(f[:, 70:]) for f in frames] == list(range(COUNTER_FRAMES))
    edge = [f[45:75, 20].astype(int).mean(axis=0) for f in frames]
    assert [bool(r > 150 and r - g > 80) for r, g, _ in edge] == [
        i >= 25 for i in range(COUNTER_FRAMES)
    ]
    # Each frame is shown when the one-pass render shows it.
    copy_render(src, tmp_path / "one.mp4")
    assert _frame_times(out) == _frame_times(tmp_path / "one.mp4")


def _frame_times(path: Path) -> list[float]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [round(float(f.time), 4) for f in container.decode(stream)]


def test_joined_parts_carry_the_original_audio_and_a_late_video_start(
    clips: Clips, tmp_path: Path
) -> None:
    src = clips("late.mp4")
    out = _render_in_parts(src, tmp_path, [0, 20, COUNTER_FRAMES], lambda index: ())
    got = probe(out)
    assert got.first_time == pytest.approx(0.4, abs=1e-3) and got.frames == COUNTER_FRAMES
    assert audio_packets(out) == audio_packets(src)  # copied bit for bit
    assert [(i, counter_value(f)) for i, f in read_frames(out, got, start=19, end=22)] == [
        (19, 19), (20, 20), (21, 21)
    ]  # fmt: skip
    data = out.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")


def test_joined_parts_reencode_audio_browsers_cannot_play(clips: Clips, tmp_path: Path) -> None:
    src = clips("pcm.mov")
    frames = probe(src).frames
    got = probe(_render_in_parts(src, tmp_path, [0, frames // 2, frames], lambda index: ()))
    assert got.audio_codec == "aac" and got.frames == frames


def test_a_part_that_cannot_be_joined_fails_with_the_reason(clips: Clips, tmp_path: Path) -> None:
    src = clips("counter.mp4")
    broken = tmp_path / "part.mp4"
    broken.write_bytes(b"not a video")
    with pytest.raises(MediaError, match="joining the rendered parts failed"):
        join_parts([broken], src, tmp_path / "joined.mp4", probe(src))
    assert not (tmp_path / "joined.mp4").exists()


def test_it_renders_without_audio_when_the_input_has_none(clips: Clips, tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    info = copy_render(clips("silent.mp4"), out)
    got = probe(out)
    assert not got.has_audio and got.frames == info.frames


@pytest.mark.parametrize("name", ["pcm.mov", "vorbis.mkv"])
def test_it_reencodes_audio_mp4_browsers_cannot_play_to_aac(
    clips: Clips, tmp_path: Path, name: str
) -> None:
    out = tmp_path / "out.mp4"
    info = copy_render(clips(name), out)
    assert info.audio_codec in ("pcm_s16le", "vorbis")
    got = probe(out)
    assert got.audio_codec == "aac" and got.frames == info.frames


def test_it_bakes_rotation_into_the_output(clips: Clips, tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    copy_render(clips("rotated.mp4"), out)
    got = probe(out)
    assert got.rotation == 0 and (got.width, got.height) == (120, 160)
    frame = first_frame(out)
    assert frame[:78].mean() > 200 and frame[82:].mean() < 50


def test_it_keeps_frame_count_and_duration_of_variable_rate_video(
    clips: Clips, tmp_path: Path
) -> None:
    out = tmp_path / "out.mp4"
    info = copy_render(clips("vfr.mp4"), out)
    got = probe(out)
    assert got.frames == info.frames == 50
    assert abs(got.duration - info.duration) <= 1 / info.fps
    assert got.has_audio
    values = [counter_value(f) for _, f in read_frames(out, got)]
    assert values == list(range(50))


def frame_times(path: Path) -> list[float]:
    with av.open(str(path)) as container:
        return [float(frame.time) for frame in container.decode(video=0)]


def test_it_keeps_each_frame_at_its_time_in_variable_rate_video(
    clips: Clips, tmp_path: Path
) -> None:
    src, out = clips("vfr.mp4"), tmp_path / "out.mp4"
    copy_render(src, out)
    before, after = frame_times(src), frame_times(out)
    assert len(set(np.round(np.diff(before), 3))) > 1  # the input's frame gaps vary
    assert np.abs(np.array(after) - np.array(before)).max() < 0.001


def test_it_keeps_colour_tags_and_colours(clips: Clips, tmp_path: Path) -> None:
    src, out = clips("tagged.mp4"), tmp_path / "out.mp4"
    info = copy_render(src, out)
    assert (info.color_matrix, info.color_primaries, info.color_transfer) == (
        "bt709",
        "bt470bg",
        "smpte170m",
    )
    got = probe(out)
    assert (got.color_matrix, got.color_primaries, got.color_transfer) == (
        info.color_matrix,
        info.color_primaries,
        info.color_transfer,
    )
    before, after = first_frame(src).mean(axis=(0, 1)), first_frame(out).mean(axis=(0, 1))
    assert np.abs(before - (200, 50, 50)).max() < 4
    assert np.abs(after - before).max() < 3


def test_it_renders_full_range_input_to_limited_range_with_the_same_colours(
    clips: Clips, tmp_path: Path
) -> None:
    src, out = clips("fullrange.mp4"), tmp_path / "out.mp4"
    with av.open(str(src)) as container:
        assert next(container.decode(video=0)).color_range == 2  # JPEG: full range
    copy_render(src, out)
    with av.open(str(out)) as container:
        # Limited range, which H.264 leaves unsaid (0: unspecified) unless told otherwise.
        assert next(container.decode(video=0)).color_range in (0, 1)
    before, after = first_frame(src).mean(axis=(0, 1)), first_frame(out).mean(axis=(0, 1))
    assert np.abs(before - (200, 50, 50)).max() < 4
    assert np.abs(after - before).max() < 3


def test_an_untagged_input_gives_an_untagged_output(clips: Clips, tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    info = copy_render(clips("av.mp4"), out)
    assert info.color_matrix == probe(out).color_matrix == "unknown"


def test_it_keeps_a_late_video_start_in_sync_with_the_audio(clips: Clips, tmp_path: Path) -> None:
    src, out = clips("late.mp4"), tmp_path / "out.mp4"
    info = copy_render(src, out)
    assert info.first_time == pytest.approx(0.4, abs=1e-3)
    got = probe(out)
    assert got.first_time == pytest.approx(0.4, abs=1e-3) and got.frames == info.frames
    got_frames = read_frames(src, info, start=20, end=23)
    assert [(i, counter_value(f)) for i, f in got_frames] == [(20, 20), (21, 21), (22, 22)]


def test_it_crops_an_odd_size_to_even(clips: Clips, tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    info = copy_render(clips("odd.mp4"), out)
    assert (info.width, info.height) == (159, 119)
    got = probe(out)
    assert (got.width, got.height) == (158, 118) and got.frames == info.frames


def test_it_renders_10_bit_input_to_8_bit(clips: Clips, tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    info = copy_render(clips("10bit.mp4"), out)
    got = probe(out)
    assert got.pix_fmt == "yuv420p" and got.frames == info.frames


def test_nothing_appears_at_the_output_when_draw_fails(clips: Clips, tmp_path: Path) -> None:
    src, out = clips("av.mp4"), tmp_path / "out.mp4"

    def labels(index: int) -> list[Label]:
        if index == 10:
            raise RuntimeError("drawing broke")
        return []

    with pytest.raises(RuntimeError, match="drawing broke"):
        render(src, out, probe(src), labels)
    assert os.listdir(tmp_path) == []  # no output and no temp file
    assert open_handles(src) == 0  # input closed


def test_a_failed_encode_raises_media_error_and_leaves_nothing(
    clips: Clips, tmp_path: Path
) -> None:
    src, out = clips("av.mp4"), tmp_path / "out.mp4"
    with pytest.raises(MediaError, match="preset"):
        copy_render(src, out, preset="no-such-preset")
    assert os.listdir(tmp_path) == []


def test_a_finished_output_replaces_an_older_one(clips: Clips, tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    out.write_bytes(b"old render")
    copy_render(clips("silent.mp4"), out)
    assert probe(out).frames == 50
    assert os.listdir(tmp_path) == ["out.mp4"]


# --------------------------------------------------------------------------- transcode


def test_transcode_keeps_frames_and_copies_audio(clips: Clips, tmp_path: Path) -> None:
    src, out = clips("av.mp4"), tmp_path / "out.mp4"
    transcode(src, out, preset="ultrafast")
    got = probe(out)
    assert got.frames == 50 and got.video_codec == "h264"
    assert audio_packets(out) == audio_packets(src)
