"""Files as people have them, made with ffmpeg from the fixture faces.

Every file is made from one stage clip: two shots of 30 frames at 25 fps (Tom and Halle, then
Keanu and a stranger, Will Smith), a cut between them, a 440 Hz tone, and along the bottom a
bar of eight black or white blocks that spells the frame's number in binary, so a picture
says which frame it is even after compression, scaling and turning. From it come the ways real
files differ from a clean encode: a video that starts after its sound and sound that starts
after the video, an edit list, dropped frames (a variable rate), the rotation flags phones
write, other codecs and containers, other rates, an odd size, no sound and sound that
outlasts the picture.

Which of the clip's frames a decoded frame shows is read off its bar (`clip_frames`); where
the faces are in it is the clip's truth moved as the recipe moves the picture (`truth`).
"""

from __future__ import annotations

import functools
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from core.media.probe import ffmpeg_exe
from tests.core.stage import scene

FPS = 25
SHOT = 30  # frames per shot: the cut is at frame 30
FRAMES = 2 * SHOT
SIZE = (480, 270)
BITS = 8  # blocks in the frame-number bar
BAR = 24  # its height in pixels
KNOWN = ("tom-hanks", "halle-berry", "keanu-reeves")


def _with_bar(frame: np.ndarray, number: int) -> np.ndarray:
    frame = frame.copy()
    width = frame.shape[1] // BITS
    for bit in range(BITS):
        on = (number >> (BITS - 1 - bit)) & 1
        frame[-BAR:, bit * width : (bit + 1) * width] = 255 if on else 0
    return frame


@functools.cache
def stage_frames() -> tuple[list[np.ndarray], list[dict[str, tuple[int, int, int, int]]]]:
    """The clip's RGB frames without their bars and, for each, where every face is."""
    one, truth1 = scene([("tom-hanks", 1), ("halle-berry", 1)], SHOT, (70, 90, 140))
    two, truth2 = scene([("keanu-reeves", 1), ("will-smith", 1)], SHOT, (150, 120, 60))
    return one + two, truth1 + truth2


@dataclass(frozen=True)
class Recipe:
    """How a file is made (ffmpeg arguments before the output, `{src}` its source file), and
    what players do with it: the clockwise turn that shows its picture upright, the size of
    that upright picture."""

    args: str
    rotation: int = 0
    size: tuple[int, int] = SIZE
    audio: bool = True
    browsers_play: bool = True
    source: str = "clip.mp4"


_X264 = "-c:v libx264 -preset ultrafast -crf 16 -pix_fmt yuv420p -g 8"
# Frames dropped at irregular places, the rest keeping their times (as phones drop frames).
_DROP = "select='not(eq(mod(n\\,7)\\,3))*not(eq(mod(n\\,11)\\,5))',setpts=PTS"

RECIPES: dict[str, Recipe] = {
    # The video starts 0.85 s after its sound, as in face_recognition's example clip.
    "late_video.mp4": Recipe("-itsoffset 0.85 -i {src} -i {src} -map 0:v -map 1:a -c copy"),
    "late_audio.mp4": Recipe("-i {src} -itsoffset 0.5 -i {src} -map 0:v -map 1:a -c copy"),
    # A stream copy from 0.5 s: the edit list hides the frames before it from the GOP's start.
    "edit_list.mp4": Recipe("-ss 0.5 -i {src} -c copy"),
    "vfr.mp4": Recipe(f'-i {{src}} -vf "{_DROP}" -fps_mode vfr {_X264} -c:a copy'),
    # As a phone records: the sensor's picture is coded sideways (or upside down), and a
    # display matrix tells players to turn it upright. -display_rotation counts
    # counter-clockwise; a phone held upright says a clockwise 90.
    "sideways.mp4": Recipe(f"-i {{src}} -vf transpose=cclock {_X264} -c:a copy"),
    "upside_down.mp4": Recipe(f"-i {{src}} -vf hflip,vflip {_X264} -c:a copy"),
    "sideways_other.mp4": Recipe(f"-i {{src}} -vf transpose=clock {_X264} -c:a copy"),
    "rotated_90.mp4": Recipe(
        "-display_rotation -90 -i {src} -c copy", rotation=90, source="sideways.mp4"
    ),
    "rotated_180.mp4": Recipe(
        "-display_rotation 180 -i {src} -c copy", rotation=180, source="upside_down.mp4"
    ),
    "rotated_270.mp4": Recipe(
        "-display_rotation 90 -i {src} -c copy", rotation=270, source="sideways_other.mp4"
    ),
    "vp9_opus.webm": Recipe(
        "-i {src} -c:v libvpx-vp9 -deadline realtime -cpu-used 8 -crf 20 -b:v 0 -c:a libopus"
    ),
    "hevc.mkv": Recipe(
        "-i {src} -c:v libx265 -preset ultrafast -crf 18 -x265-params log-level=error -c:a copy",
        browsers_play=False,
    ),
    # Both at once: a late start in a file browsers cannot play.
    "late_hevc.mkv": Recipe(
        "-itsoffset 0.85 -i {src} -i {src} -map 0:v -map 1:a -c copy",
        browsers_play=False,
        source="hevc.mkv",
    ),
    "fps60.mp4": Recipe(f"-i {{src}} -vf fps=60 {_X264} -c:a copy"),
    "fps25.mp4": Recipe("-i {src} -c copy"),
    "odd_size.mp4": Recipe(f"-i {{src}} -vf scale=638:358 {_X264} -c:a copy", size=(638, 358)),
    "no_audio.mp4": Recipe("-i {src} -an -c copy", audio=False),
    # Sound running 1.6 s past the picture's last frame.
    "long_audio.mp4": Recipe(
        "-i {src} -f lavfi -i sine=frequency=330:sample_rate=48000:duration=4 "
        "-map 0:v -map 1:a -c:v copy -c:a aac"
    ),
}
# Steps on the way to a file, not files people have.
STEPS = ("sideways.mp4", "upside_down.mp4", "sideways_other.mp4")
FILES = [name for name in RECIPES if name not in STEPS]


def ffmpeg(args: list[str]) -> None:
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{shlex.join(cmd)}\n{done.stderr}")


def make_clip(folder: Path) -> Path:
    """The clip every recipe starts from: H.264 (GOP of 8, so an edit list lands inside one)
    with an AAC tone."""
    path = folder / "clip.mp4"
    if path.exists():
        return path
    frames, _ = stage_frames()
    frames = [_with_bar(f, n) for n, f in enumerate(frames)]
    width, height = SIZE
    cmd = [
        ffmpeg_exe(), "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
        "-s", f"{width}x{height}", "-r", str(FPS), "-i", "-",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=2.4",
        *shlex.split(_X264), "-c:a", "aac", "-shortest", str(path),
    ]  # fmt: skip
    subprocess.run(cmd, input=np.stack(frames).tobytes(), check=True)
    return path


def make(folder: Path, name: str) -> Path:
    """The file `name` of RECIPES, made in `folder` on first use."""
    path = folder / name
    if not path.exists():
        recipe = RECIPES[name]
        source = make_clip(folder) if recipe.source == "clip.mp4" else make(folder, recipe.source)
        ffmpeg([*shlex.split(recipe.args.replace("{src}", str(source))), str(path)])
    return path


def frame_times(path: Path) -> list[float]:
    """PyAV's time of every decoded frame: what a browser's mediaTime says of it."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [float(frame.time) for frame in container.decode(stream)]


def bar_number(coded: np.ndarray) -> int:
    """The frame number a coded (unturned) RGB picture's bar spells."""
    height, width = coded.shape[:2]
    row = coded[height - max(2, height * BAR // SIZE[1] // 2), :, :].mean(axis=1)
    step = width / BITS
    bits = [row[int((bit + 0.5) * step)] > 128 for bit in range(BITS)]
    return sum(1 << (BITS - 1 - i) for i, on in enumerate(bits) if on)


def upright(picture: np.ndarray, rotation: int) -> np.ndarray:
    """A coded picture turned clockwise by `rotation` degrees, as a player shows it."""
    return np.ascontiguousarray(np.rot90(picture, k=-(rotation // 90)))


def clip_frames(path: Path, rotation: int = 0) -> list[int]:
    """For every decoded frame of a file, the clip's frame it shows (read off its bar), with
    `rotation` the file's clockwise turn."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [
            bar_number(upright(frame.to_ndarray(format="rgb24"), rotation))
            for frame in container.decode(stream)
        ]


def truth(recipe: Recipe, index: int) -> dict[str, tuple[float, float, float, float]]:
    """Where each face is in the upright picture of the clip's frame `index`."""
    _, boxes = stage_frames()
    sx, sy = recipe.size[0] / SIZE[0], recipe.size[1] / SIZE[1]
    return {
        person: (left * sx, top * sy, right * sx, bottom * sy)
        for person, (left, top, right, bottom) in boxes[index].items()
    }


def iou(a, b) -> float:
    left, top = max(a[0], b[0]), max(a[1], b[1])
    right, bottom = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, right - left) * max(0.0, bottom - top)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0
