"""Probe a video: its facts from one ffmpeg stream-copy pass, without decoding and without ffprobe.

The bundled imageio-ffmpeg binary ships without ffprobe, so the facts come from ffmpeg's own
input dump (the streams) and a framecrc listing of every packet (exact frame count, duration,
whether the rate varies). Conventions of the whole media package:
- Frames are of the displayed frame: the stream's display matrix is applied.
- Frame indices count from 0 over every decoded frame of the video stream.
- A frame's time is on the player's clock (clock.py): its presentation timestamp, as PyAV's
  frame.time and a browser's mediaTime give it, never index / fps.
- Boxes are (left, top, right, bottom) in pixels of that displayed frame.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from core.media.clock import Clock


class MediaError(Exception):
    """A file ffmpeg cannot use as a video, or an ffmpeg run that failed."""


@dataclass(frozen=True, slots=True)
class VideoInfo:
    """Facts about a video file, as probe() found them."""

    width: int  # of the displayed (rotation-applied) frame
    height: int
    fps: float  # nominal rate for constant frame rate, frames / duration otherwise
    frames: int  # video packets counted by a stream-copy pass; equals decoded frames
    duration: float  # of the video stream, seconds (first frame start to last frame end)
    rotation: int  # clockwise degrees the player turns the coded frame: 0, 90, 180, 270
    has_audio: bool
    audio_codec: str | None
    video_codec: str
    pix_fmt: str
    vfr: bool  # frame durations vary (phone recordings, screen captures)
    stream_index: int = 0  # absolute index of the video stream (skips cover art)
    audio_index: int | None = None  # absolute index of the first audio stream
    # When the first frame is shown, on the player's clock (None: probed before it was kept).
    first_time: float | None = None
    # Every frame's time, only when they are not first_time + i / fps (see clock.py).
    frame_times: tuple[float, ...] | None = None
    # The file's duration as a player shows it: every stream, the audio included.
    media_duration: float | None = None
    container: str = ""  # ffmpeg's names of the format: "mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm"
    sar: tuple[int, int] = (1, 1)  # sample (pixel) aspect ratio of the displayed frame
    # Colour tags as ffmpeg names them ("bt709", "smpte170m"...); "unknown" when untagged.
    color_matrix: str = "unknown"
    color_primaries: str = "unknown"
    color_transfer: str = "unknown"

    def to_json(self) -> dict:
        """The facts as a JSON-ready dict, for storing them instead of probing again."""
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> VideoInfo:
        """Facts stored by to_json(); keys this version does not know are ignored."""
        known = {f.name for f in dataclasses.fields(cls)}
        values = {key: value for key, value in data.items() if key in known}
        if "sar" in values:
            values["sar"] = tuple(values["sar"])
        if values.get("frame_times") is not None:
            values["frame_times"] = tuple(values["frame_times"])
        return cls(**values)

    def clock(self) -> Clock:
        """When each frame is shown, on the player's clock."""
        first = self.first_time or 0.0
        if self.frame_times is not None:
            return Clock(
                first=first, fps=self.fps, frames=self.frames, end=first + self.duration,
                times=self.frame_times,
            )  # fmt: skip
        return Clock(first=first, fps=self.fps, frames=self.frames, end=first + self.duration)


@functools.cache
def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary: system ffmpeg when on PATH, else the imageio-ffmpeg one."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    import imageio_ffmpeg  # only needed when there is no system ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


@functools.cache
def ffprobe_exe() -> str | None:
    """Path of a system ffprobe, or None: the imageio-ffmpeg wheel has none, probe() needs none."""
    return shutil.which("ffprobe")


_LEVEL_LINE = re.compile(
    r"^(?:\[(?P<src>[^\]]*) @ 0x[0-9a-f]+\] )?\[(?P<level>[a-z]+)\] (?P<msg>.*)$"
)
_INPUT = re.compile(r"^Input #0, (?P<fmt>.+?), from ")
_DURATION = re.compile(r"^\s*Duration: (?P<dur>N/A|\d+:\d+:\d+(?:\.\d+)?)")
_STREAM = re.compile(
    r"^\s*Stream #0:(?P<index>\d+)(?:\[0x[0-9a-f]+\])?(?:\([^)]*\))?: (?P<kind>\w+): (?P<rest>.*)$"
)
_MAPPED = re.compile(r"^\s*Stream #0:(?P<index>\d+) -> #0:0 \(copy\)")
_ROTATION = re.compile(r"Display Matrix: rotation of (?P<deg>-?[\d.]+) degrees")
_SIZE = re.compile(r"(?<![\w.])(?P<w>\d+)x(?P<h>\d+)(?![\w.])")
_SAR = re.compile(r"\[SAR (?P<n>\d+):(?P<d>\d+) DAR")
_FPS = re.compile(r"(?P<v>[\d.]+)(?P<k>k?) fps")
_TBR = re.compile(r"(?P<v>[\d.]+)(?P<k>k?) tbr")
_TB = re.compile(r"^#tb 0: (?P<n>\d+)/(?P<d>\d+)")
# Names ffmpeg prints alone when matrix, primaries and transfer are the same standard.
_COLOR_NAMES = frozenset({"bt709", "bt470bg", "smpte170m", "smpte240m"})
_NOPTS = -(2**63)
_PKT_DISCARD = 0x4
_STILL_IMAGE_FORMATS = ("image2", "_pipe")  # png_pipe, jpeg_pipe, ... : one picture, not video


@dataclass(slots=True)
class _Stream:
    index: int
    kind: str
    rest: str
    extra: list[str]


def probe(path: str | os.PathLike[str]) -> VideoInfo:
    """Read a video's facts with one ffmpeg stream-copy pass (no decoding, no ffprobe)."""
    path = Path(path)
    name = path.name
    if not path.is_file():
        raise MediaError(f"{name}: no such file")
    if path.stat().st_size == 0:
        raise MediaError(f"{name}: file is empty")

    # One run does both jobs: the input dump on stderr gives the streams, and copying the first
    # real video stream (V skips cover art) to framecrc lists every packet's timestamps on
    # stdout, which gives the exact frame count, duration and whether the rate varies.
    # -copyts keeps the timestamps the player sees (ffmpeg would move the file's start to 0).
    # level+info tags each stderr line with its level, so demuxer errors stand out.
    cmd = [
        ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "level+info", "-copyts",
        "-i", str(path), "-map", "0:V:0", "-c", "copy", "-f", "framecrc", "-",
    ]  # fmt: skip
    run = subprocess.run(cmd, capture_output=True, check=False)
    stderr = run.stderr.decode("utf-8", "replace")
    header, errors, mapped = _parse_stderr(stderr)

    videos, audios = _usable_streams(name, header, errors, mapped, run.returncode)
    video = next((s for s in videos if s.index == mapped), videos[0])
    codec, pix_fmt, coded_w, coded_h, sar, colors = _parse_video_line(video.rest)
    if not coded_w or not coded_h:
        raise MediaError(f"{name}: video stream has no frame size")
    rotation = _rotation(video.extra)
    width, height = (coded_h, coded_w) if rotation in (90, 270) else (coded_w, coded_h)
    if rotation in (90, 270):
        sar = (sar[1], sar[0])  # autorotate's transpose swaps the pixel aspect too

    times, duration, vfr = _parse_packets(run.stdout.decode("ascii", "replace"))
    frames = len(times)
    if frames == 0:
        raise MediaError(f"{name}: video stream has no frames")
    if len(set(times)) < frames:
        raise MediaError(
            f"{name}: several frames share one timestamp, so no player can show them in order; "
            "export the video again (any editor or converter) and upload that"
        )
    header_fps = _header_rate(video.rest)
    media_duration = _clock(header[2])
    if duration <= 0:
        # A single frame without a duration: fall back to the nominal rate, then the header.
        duration = 1 / header_fps if header_fps else media_duration or 0.0
    measured_fps = frames / duration if duration > 0 else 0.0
    fps = measured_fps if vfr else _nominal_rate(header_fps, measured_fps)
    clock = Clock.of(times, fps, times[0] + duration)
    if clock.times is not None and not vfr:
        # Even steps at another rate than the header's (a phone's 29.97 that is really 30).
        clock = Clock.of(times, measured_fps, times[0] + duration)
        fps, vfr = measured_fps, clock.times is not None

    audio = audios[0] if audios else None
    return VideoInfo(
        width=width,
        height=height,
        fps=fps,
        frames=frames,
        duration=duration,
        rotation=rotation,
        has_audio=audio is not None,
        audio_codec=audio.rest.split(" ", 1)[0].rstrip(",") if audio else None,
        video_codec=codec,
        pix_fmt=pix_fmt,
        vfr=vfr,
        stream_index=video.index,
        audio_index=audio.index if audio else None,
        first_time=times[0],
        frame_times=None if clock.times is None else tuple(round(t, 6) for t in clock.times),
        media_duration=max(media_duration or 0.0, duration) if media_duration else duration,
        container=header[0],
        sar=sar,
        color_matrix=colors[0],
        color_primaries=colors[1],
        color_transfer=colors[2],
    )


def _usable_streams(name, header, errors, mapped, returncode) -> tuple[list, list]:
    """The video and audio streams of a file ffmpeg read whole; a clear error otherwise."""
    if header is None:
        reason = "; ".join(dict.fromkeys(errors)) or "ffmpeg could not open it"
        raise MediaError(f"{name}: not a readable video file, or truncated ({reason})")
    fmt, streams, _duration_text = header
    videos = [s for s in streams if s.kind == "Video" and "(attached pic)" not in s.rest]
    audios = [s for s in streams if s.kind == "Audio"]
    if not videos or mapped is None:
        what = "audio-only" if audios else "no audio or video"
        raise MediaError(f"{name}: has no video stream ({what})")
    if any(tag in fmt for tag in _STILL_IMAGE_FORMATS):
        raise MediaError(f"{name}: is a still image ({fmt}), not a video")
    if errors:
        raise MediaError(f"{name}: truncated or corrupt ({errors[0]})")
    if returncode != 0:
        raise MediaError(f"{name}: ffmpeg failed reading it (exit {returncode})")
    return videos, audios


def _parse_stderr(
    stderr: str,
) -> tuple[tuple[str, list[_Stream], str | None] | None, list[str], int | None]:
    """Split ffmpeg's level-tagged stderr into (input header, demuxer errors, mapped stream)."""
    fmt: str | None = None
    streams: list[_Stream] = []
    duration_text: str | None = None
    errors: list[str] = []
    mapped: int | None = None
    in_input = False
    for raw in stderr.splitlines():
        m = _LEVEL_LINE.match(raw)
        if not m:
            continue  # continuation of a multi-line message
        src, level, msg = m["src"] or "", m["level"], m["msg"]
        if level in ("error", "fatal", "panic"):
            # Demuxer complaints (partial file, premature end) mean a damaged file; option and
            # mapping errors (no video stream) are judged from the header instead.
            if src.startswith("in#") or (fmt is None and level == "fatal"):
                errors.append(msg.strip())
            continue
        if im := _INPUT.match(msg):
            fmt, in_input = im["fmt"], True
            continue
        if msg.startswith(("Stream mapping:", "Output #")):
            in_input = False
        if mm := _MAPPED.match(msg):
            mapped = int(mm["index"])
            continue
        if not in_input:
            continue
        if dm := _DURATION.match(msg):
            duration_text = dm["dur"]
        elif sm := _STREAM.match(msg):
            streams.append(_Stream(int(sm["index"]), sm["kind"], sm["rest"], []))
        elif streams:
            streams[-1].extra.append(msg)
    if fmt is None:
        # "Error opening input" repeats the reason; keep the most specific line.
        return None, [e for e in errors if not e.startswith("Error opening input file")], None
    # Errors found while opening an input that did open are about packets, i.e. the file body.
    return (fmt, streams, duration_text), errors, mapped


def _split_top(text: str) -> list[str]:
    """Split on commas outside parentheses ('yuv420p10le(tv, progressive)' is one part)."""
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur).strip())
    return parts


def _parse_video_line(rest: str) -> tuple[str, str, int, int, tuple[int, int], tuple[str, ...]]:
    parts = _split_top(rest)
    codec = parts[0].split(" ", 1)[0]
    pix_fmt = parts[1].split("(", 1)[0].strip() if len(parts) > 1 else "none"
    width = height = 0
    for part in parts[1:]:
        if m := _SIZE.search(part.split("[", 1)[0]):
            width, height = int(m["w"]), int(m["h"])
            break
    sar = (1, 1)
    if (m := _SAR.search(rest)) and int(m["n"]) and int(m["d"]):
        sar = (int(m["n"]), int(m["d"]))
    colors: tuple[str, ...] = ("unknown",) * 3
    # "yuv420p(tv, bt709, progressive)" or "(tv, bt470bg/bt470bg/smpte170m, ...)": ffmpeg
    # prints one name when matrix, primaries and transfer agree, all three otherwise.
    details = parts[1].partition("(")[2].rstrip(")") if len(parts) > 1 else ""
    for token in (t.strip() for t in details.split(",")):
        if token.count("/") == 2:
            colors = tuple(token.split("/"))
        elif token in _COLOR_NAMES:
            colors = (token,) * 3
    return codec, pix_fmt, width, height, sar, colors


def _rotation(extra: Sequence[str]) -> int:
    for line in extra:
        if m := _ROTATION.search(line):
            # The display matrix angle is counter-clockwise; report the clockwise turn, the
            # same number the legacy `rotate` tag carries (a phone's portrait video says 90).
            return int(round(-float(m["deg"]) / 90) * 90) % 360
    return 0


def _header_rate(rest: str) -> float:
    for pattern in (_FPS, _TBR):
        if m := pattern.search(rest):
            value = float(m["v"]) * (1000 if m["k"] else 1)
            if value > 0:
                return value
    return 0.0


def _nominal_rate(header_fps: float, measured: float) -> float:
    """The exact constant rate: ffmpeg prints 29.97, the stream means 30000/1001."""
    candidates = []
    if header_fps:
        ntsc = round(header_fps * 1.001)
        candidates = [ntsc * 1000 / 1001, float(round(header_fps)), header_fps]
    for rate in candidates:
        # The printed value has two decimals; the timestamps confirm which rate it stands for.
        if abs(rate - header_fps) < 0.006 and (not measured or abs(rate - measured) < 0.01 * rate):
            return rate
    return measured or header_fps


def _parse_packets(text: str) -> tuple[list[float], float, bool]:
    """Every frame's time (ascending), the duration and whether the rate varies, from
    framecrc packet lines."""
    tb = Fraction(1, 1)
    pts_list: list[int] = []
    durations: dict[int, int] = {}
    for line in text.splitlines():
        if line.startswith("#"):
            if m := _TB.match(line):
                tb = Fraction(int(m["n"]), int(m["d"]))
            continue
        fields = [f.strip() for f in line.split(",")]
        if len(fields) < 6:
            continue
        flags = int(fields[6].split("=", 1)[1], 16) if len(fields) > 6 else 1
        if flags & _PKT_DISCARD:
            continue  # dropped by the demuxer's edit list; the decoder never shows it
        dts, pts, dur = int(fields[1]), int(fields[2]), int(fields[3])
        pts = dts if pts == _NOPTS else pts
        pts_list.append(pts)
        durations[pts] = dur
    if not pts_list:
        return [], 0.0, False
    pts_list.sort()
    deltas = [b - a for a, b in zip(pts_list, pts_list[1:], strict=False) if b > a]
    typical = sorted(deltas)[len(deltas) // 2] if deltas else 0
    last = durations[pts_list[-1]] or typical
    duration = float((pts_list[-1] + last - pts_list[0]) * tb)
    # Containers with coarse clocks (Matroska's 1 ms) jitter by a tick at constant rate.
    tolerance = max(1.5, 0.01 * typical)
    vfr = any(abs(d - typical) > tolerance for d in deltas)
    return [float(pts * tb) for pts in pts_list], duration, vfr


def _clock(text: str | None) -> float | None:
    if not text or text == "N/A":
        return None
    h, m, s = text.split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


# What browsers play in a <video> without help from the system (Chromium's own decoders):
# containers by ffmpeg's first format name, video codecs with the pixel formats they decode,
# audio codecs. HEVC plays only where the machine decodes it in hardware, and Chromium on
# Linux shows its picture as nothing (videoWidth 0) while the sound plays on.
_BROWSER_CONTAINERS = ("mov", "matroska", "ogg")
_BROWSER_VIDEO = {
    "h264": ("yuv420p", "yuvj420p"),
    "vp8": ("yuv420p", "yuva420p"),
    "vp9": ("yuv420p", "yuv420p10le", "yuva420p"),
    "av1": ("yuv420p", "yuv420p10le"),
    "theora": ("yuv420p",),
}
_BROWSER_AUDIO = frozenset({"aac", "mp3", "opus", "vorbis", "flac"})
_CODEC_NAMES = {"hevc": "HEVC (H.265)", "h264": "H.264", "mpeg4": "MPEG-4 Part 2 (Xvid/DivX)"}


def browsers_cannot_play(info: VideoInfo) -> str | None:
    """Why browsers cannot play the file as it is, in a fan's words; None when they can."""
    container = info.container.split(",", 1)[0]
    if container not in _BROWSER_CONTAINERS:
        return f"browsers do not play {container.upper()} files"
    codec = _CODEC_NAMES.get(info.video_codec, info.video_codec.upper())
    formats = _BROWSER_VIDEO.get(info.video_codec)
    if formats is None:
        return f"browsers do not play {codec} video"
    if info.pix_fmt not in formats:
        return f"browsers do not play {codec} video in {info.pix_fmt}"
    if info.has_audio and info.audio_codec not in _BROWSER_AUDIO:
        return f"browsers do not play its sound ({info.audio_codec})"
    return None
