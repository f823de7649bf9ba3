"""Tiny video clips made with ffmpeg once per test session (about 160x120, 1-2 s)."""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from core.media.probe import ffmpeg_exe

# Every frame of a counter clip is flat grey with value index * COUNTER_STEP, so a decoded frame
# names its own index.
COUNTER_STEP = 5
COUNTER_FRAMES = 50

_TESTSRC = "-f lavfi -i testsrc2=size=160x120:rate=25:duration={s}"
_SINE = "-f lavfi -i sine=frequency=440:sample_rate=44100:duration={s}"
_X264 = "-c:v libx264 -preset ultrafast -pix_fmt yuv420p"
# geq's N is the frame number; lossless H.264 (-qp 0) keeps the grey level within +-2.
_COUNTER = (
    f"color=black:size=160x120:rate=25,format=rgb24,"
    f"geq=r=N*{COUNTER_STEP}:g=N*{COUNTER_STEP}:b=N*{COUNTER_STEP},trim=end_frame={COUNTER_FRAMES}"
)
# Frames 0-24 are 40 ms apart, frames 25-49 are 20 ms apart (quoted for the filtergraph).
_VFR_PTS = "setpts='if(lt(N,25),2*N,25+N)/50/TB'"

# name -> ffmpeg arguments before the output path ({clips} is the clip folder).
RECIPES = {
    # 2 s, 50 frames, AAC; index first (+faststart) so a cut file keeps a readable header.
    "av.mp4": f"{_TESTSRC} {_SINE} {_X264} -c:a aac -movflags +faststart".format(s=2),
    # Index last (the default), so cutting the file loses it.
    "silent.mp4": f"{_TESTSRC} {_X264}".format(s=2),
    # B-frames and a short GOP so a seek lands between keyframes.
    "counter.mp4": f"-f lavfi -i {_COUNTER} {_X264} -qp 0 -g 8 -bf 2",
    # Variable frame rate, counter frames, AAC.
    "vfr.mp4": (
        f'-f lavfi -i "{_COUNTER},{_VFR_PTS}" {_SINE.format(s=1.5)} {_X264} -qp 0 -bf 0 '
        "-fps_mode passthrough -c:a aac"
    ),
    # Left half white, right half black: after a clockwise quarter turn the top half is white.
    "halves.mp4": (
        "-f lavfi -i color=black:size=160x120:rate=25:duration=1,"
        f"drawbox=w=80:h=120:color=white:t=fill {_X264}"
    ),
    # -display_rotation is counter-clockwise, so -90 is the clockwise turn a phone records.
    "rotated.mp4": "-display_rotation -90 -i {clips}/halves.mp4 -c copy",
    # testsrc2 rounds sizes to even, so crop; 4:4:4 because 4:2:0 H.264 cannot be odd-sized.
    "odd.mp4": (
        f"{_TESTSRC} {_SINE} -vf format=yuv444p,crop=159:119:0:0 "
        "-c:v libx264 -preset ultrafast -pix_fmt yuv444p -c:a aac"
    ).format(s=1),
    "10bit.mp4": f"{_TESTSRC} -c:v libx264 -preset ultrafast -pix_fmt yuv420p10le".format(s=1),
    # The video starts 0.4 s after the audio (a camera that starts its sound first).
    "late.mp4": (
        f"-itsoffset 0.4 -i {{clips}}/counter.mp4 {_SINE.format(s=2.5)} "
        "-map 0:v -map 1:a -c:v copy -c:a aac"
    ),
    # Colour tagged BT.709 (matrix) / BT.470BG (primaries) / SMPTE 170M (transfer).
    "tagged.mp4": (
        "-f lavfi -i color=0xC83232:size=160x120:rate=25:duration=1,format=rgb24 "
        "-vf scale=out_color_matrix=bt709:out_range=tv,format=yuv420p,"
        "setparams=colorspace=bt709:color_primaries=bt470bg:color_trc=smpte170m "
        "-c:v libx264 -preset ultrafast"
    ),
    # Full range ("JPEG") YUV, as some phones and screen recorders write it.
    "fullrange.mp4": (
        "-f lavfi -i color=0xC83232:size=160x120:rate=25:duration=1,format=rgb24 "
        "-vf scale=out_range=pc,format=yuv420p -color_range pc -c:v libx264 -preset ultrafast"
    ),
    # Both streams start 0.6 s into the file's clock (a cut from a longer recording).
    "both_late.mp4": "-itsoffset 0.6 -i {clips}/av.mp4 -c copy",
    # Every two frames share a timestamp: no player can show them in order.
    "same_times.mkv": (
        "-i {clips}/silent.mp4 -c copy -bsf:v setts=pts=floor(N/2)*512:dts=floor(N/2)*512"
    ),
    "hevc.mkv": (
        f"{_TESTSRC} -c:v libx265 -preset ultrafast -x265-params log-level=error".format(s=1)
    ),
    "xvid.avi": f"{_TESTSRC} {_SINE} -c:v mpeg4 -c:a libmp3lame".format(s=1),
    "pcm.mov": f"{_TESTSRC} {_SINE} {_X264} -c:a pcm_s16le".format(s=1),
    "vorbis.mkv": f"{_TESTSRC} {_SINE} {_X264} -c:a libvorbis".format(s=1),
    "audio.m4a": f"{_SINE} -c:a aac".format(s=1),
}
# Clips other clips are made from.
_NEEDS = {
    "rotated.mp4": "halves.mp4",
    "late.mp4": "counter.mp4",
    "both_late.mp4": "av.mp4",
    "same_times.mkv": "silent.mp4",
}


def ffmpeg(args: list[str]) -> None:
    """Run ffmpeg quietly, failing the test setup with its message if it fails."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{shlex.join(cmd)}\n{done.stderr}")


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """clips(name) -> path of a named clip from RECIPES, made on first use."""
    root = tmp_path_factory.mktemp("clips")

    def clip(name: str) -> Path:
        path = root / name
        if not path.exists():
            if name in _NEEDS:
                clip(_NEEDS[name])
            args = shlex.split(RECIPES[name].replace("{clips}", str(root)))
            ffmpeg([*args, str(path)])
        return path

    return clip


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """Two shots of 30 frames: Tom and Halle, then Keanu and a stranger (Will Smith)."""
    from tests.core.stage import make_clip

    return make_clip(tmp_path_factory.mktemp("clip"))


@pytest.fixture(scope="module")
def model():
    """A classifier fit on other pictures of the same people (images 2-4), strangers left out."""
    from tests.core.stage import make_model

    return make_model()
