"""Fancam framing and rendering on a clip where the 'member' moves on a known path."""

import math
import subprocess
import wave

import av
import numpy as np
import pytest

from core.fancam import framing
from core.fancam.render import render_fancam
from core.media.probe import ffmpeg_exe, probe

SIZE = (640, 360)
FPS = 25
FRAMES = 150
CUT = 75  # the second shot starts here: another background
FACE = 48
AWAY = range(100, 116)  # she is off screen for these frames
FLASH = 120  # a white frame, with a click in the audio at the same moment
RATE = 48_000


def path_at(frame: int) -> tuple[float, float]:
    """Her face's centre: a slow sweep across the stage, bobbing a little."""
    t = frame / FPS
    return 120 + 400 * (0.5 - 0.5 * math.cos(2 * math.pi * t / 5)), 150 + 25 * math.sin(2 * t)


def boxes() -> dict[int, tuple[float, float, float, float]]:
    out = {}
    for f in range(FRAMES):
        if f in AWAY:
            continue
        cx, cy = path_at(f)
        # Detector jitter: a pixel or two either way, as real boxes have.
        jx, jy = 2 * math.sin(f * 1.7), 2 * math.cos(f * 2.3)
        out[f] = (cx - FACE / 2 + jx, cy - FACE / 2 + jy, cx + FACE / 2 + jx, cy + FACE / 2 + jy)
    return out


def _frames():
    for f in range(FRAMES):
        if f == FLASH:
            yield np.full((SIZE[1], SIZE[0], 3), 255, np.uint8)
            continue
        colour = (60, 80, 140) if f < CUT else (140, 110, 50)
        image = np.empty((SIZE[1], SIZE[0], 3), np.uint8)
        image[:] = colour
        if f not in AWAY:
            left, top, right, bottom = (int(v) for v in boxes()[f])
            image[top:bottom, left:right] = (230, 190, 170)
        yield image


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fancam")
    sound = folder / "click.wav"
    samples = np.zeros(int(RATE * FRAMES / FPS), np.int16)
    at = int(RATE * FLASH / FPS)
    samples[at : at + 96] = 20000  # a 2 ms click
    with wave.open(str(sound), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(samples.tobytes())
    path = folder / "stage.mp4"
    command = [
        ffmpeg_exe(), "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
        "-s", f"{SIZE[0]}x{SIZE[1]}", "-r", str(FPS), "-i", "-", "-i", str(sound),
        "-c:v", "libx264", "-crf", "18", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest",
        str(path),
    ]  # fmt: skip
    subprocess.run(command, input=b"".join(f.tobytes() for f in _frames()), check=True)
    return path


def the_plan(aspect="9:16"):
    return framing.plan(boxes(), frames=FRAMES, frame=SIZE, fps=FPS, cuts=[CUT], aspect=aspect)


@pytest.mark.parametrize("aspect", ["9:16", "1:1", "16:9"])
def test_her_face_stays_in_the_middle_third_of_the_window(aspect):
    plan = the_plan(aspect)
    inside = []
    for f, (left, top, right, bottom) in boxes().items():
        x, y, w, h = plan.windows[f]
        if aspect == "16:9" and (x <= 2 or x + w >= SIZE[0] - 2):
            continue  # a 16:9 window is 2/3 of a 16:9 frame: at the edge it cannot centre her
        cx, cy = ((left + right) / 2 - x) / w, ((top + bottom) / 2 - y) / h
        inside.append(1 / 3 <= cx <= 2 / 3 and 1 / 3 <= cy <= 2 / 3)
    assert len(inside) > 30
    assert np.mean(inside) >= 0.95, np.mean(inside)


# The bound (framing.MAX_MOVE, MAX_ZOOM): between two frames of one shot the window's centre
# moves at most 4% of the frame's width and its height changes by at most 1%.
MOVE_BOUND, ZOOM_BOUND = framing.MAX_MOVE, framing.MAX_ZOOM


def test_the_window_moves_smoothly_except_at_cuts_and_never_leaves_the_frame():
    plan = the_plan()
    x, y, w, h = plan.windows.T
    assert (x >= 0).all() and (y >= 0).all()
    assert (x + w <= SIZE[0]).all() and (y + h <= SIZE[1]).all()
    cx, cy = x + w / 2, y + h / 2
    for f in range(1, FRAMES):
        if f == CUT:
            continue
        assert math.hypot(cx[f] - cx[f - 1], cy[f] - cy[f - 1]) <= MOVE_BOUND * SIZE[0], f
        assert abs(h[f] - h[f - 1]) <= ZOOM_BOUND * h[f - 1] + 2, f  # 2: even rounding
    assert plan.cuts == (CUT,)


def test_the_window_holds_still_through_jitter():
    # She stands still, with detector jitter: the camera does not twitch.
    still = {f: (300 + 2 * math.sin(f), 150, 348 + 2 * math.sin(f), 198) for f in range(100)}
    plan = framing.plan(still, frames=100, frame=SIZE, fps=FPS)
    assert len({tuple(w) for w in plan.windows[10:90]}) == 1


def test_the_window_zooms_in_no_closer_than_two_thirds_of_the_source():
    plan = the_plan()
    out_w, out_h = plan.output
    assert (plan.windows[:, 3] >= out_h * 2 / 3 - 2).all()  # scaled up by at most 1.5
    assert out_w % 2 == 0 and out_h % 2 == 0 and out_w / out_h == pytest.approx(9 / 16, abs=0.01)


@pytest.mark.parametrize(
    ("source", "aspect", "size"),
    [
        ((1920, 1080), "9:16", (608, 1080)),
        ((1280, 720), "9:16", (406, 720)),
        ((640, 360), "9:16", (204, 360)),
        ((1920, 1080), "1:1", (1080, 1080)),
        ((1920, 1080), "16:9", (1920, 1080)),
        ((1080, 1920), "16:9", (1080, 608)),  # a phone's portrait video: as wide as it
    ],
)
def test_a_fancam_has_the_sources_resolution(source, aspect, size):
    assert framing.output_size(source, aspect) == size


def test_highlights_are_the_shots_she_is_in():
    present = [f for f in range(40, 60)] + [f for f in range(130, 140)]
    ranges = framing.highlight_ranges(present, frames=FRAMES, cuts=[30, 75, 120])
    assert ranges == [(30, 75), (120, 150)]


def _luma_and_times(path):
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [
            (float(frame.pts * stream.time_base), float(frame.to_ndarray(format="gray").mean()))
            for frame in container.decode(stream)
        ]


def _click_time(path) -> float:
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        best = (0.0, 0.0)
        for frame in container.decode(stream):
            data = np.abs(frame.to_ndarray()).max(axis=0)
            k = int(data.argmax())
            if data[k] > best[0]:
                best = (float(data[k]), float(frame.pts * stream.time_base) + k / frame.sample_rate)
        return best[1]


def test_the_fancam_has_the_sources_frames_duration_and_sound_in_sync(clip, tmp_path):
    info = probe(clip)
    plan = the_plan()
    out = tmp_path / "fancam.mp4"
    written = render_fancam(clip, out, info, plan.windows, plan.output)
    fancam = probe(out)
    assert written == fancam.frames == info.frames
    assert (fancam.width, fancam.height) == plan.output
    assert abs(fancam.duration - info.duration) <= 1 / FPS + 1e-6
    assert fancam.has_audio
    frames = _luma_and_times(out)
    flash_time = max(frames, key=lambda item: item[1])[0]
    assert abs(flash_time - FLASH / FPS) <= 1 / FPS
    assert abs(_click_time(out) - flash_time) <= 1 / FPS


def test_highlights_keep_only_her_shots_with_the_sound_cut_in_sync(clip, tmp_path):
    info = probe(clip)
    present = [f for f in range(80, 140)]  # only in the second shot
    keep = framing.highlight_ranges(present, frames=FRAMES, cuts=[CUT])
    assert keep == [(CUT, FRAMES)]
    plan = the_plan()
    out = tmp_path / "highlights.mp4"
    written = render_fancam(clip, out, info, plan.windows, plan.output, keep=keep)
    fancam = probe(out)
    assert written == fancam.frames == FRAMES - CUT
    frames = _luma_and_times(out)
    assert frames[0][0] == pytest.approx(0.0, abs=1 / FPS)  # the kept shot starts the fancam
    flash_time = max(frames, key=lambda item: item[1])[0]
    assert abs(flash_time - (FLASH - CUT) / FPS) <= 1 / FPS
    assert abs(_click_time(out) - flash_time) <= 1 / FPS
