"""Video plumbing: probe, decode to RGB or YUV frames, draw labels, encode with audio.

Django-free. probe() and the baseline transcode() run the bundled imageio-ffmpeg binary (which
ships without ffprobe) with explicit argument lists; decoding and the labelled render run
FFmpeg's libraries in this process through PyAV, so no frame is piped between processes.

Conventions:
- Frames are RGB24 `numpy.ndarray`s of shape (height, width, 3), uint8, of the displayed frame:
  ffmpeg's autorotation has already applied the stream's display matrix.
- Frame indices count from 0 over every decoded frame of the video stream.
- Boxes are (left, top, right, bottom) in pixels of that displayed frame.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import IO

import av
import cv2
import numpy as np

__all__ = [
    "MediaError",
    "VideoInfo",
    "Label",
    "draw_label",
    "draw_labels_yuv",
    "ffmpeg_exe",
    "ffprobe_exe",
    "probe",
    "read_frames",
    "render",
    "scaled_size",
    "transcode",
    "yuv_planes",
]

DEFAULT_PRESET = "veryfast"
# CRF 20 keeps the thin label strokes and small text clean at 720p for a modest size increase
# over x264's default of 23.
DEFAULT_CRF = 20

# Audio codecs that are copied into the MP4 untouched: MP4 can hold them and current browsers
# play them. ALAC, AC-3/E-AC-3 and PCM are legal in MP4 (some only with -strict) but Chrome and
# Firefox do not play them, so they are re-encoded to AAC like every other codec.
MP4_COPY_AUDIO = frozenset({"aac", "mp3", "opus", "flac"})
AAC_BITRATE = 192_000

_JPEG_RANGE = 2  # AVCOL_RANGE_JPEG: full range
_MPEG_RANGE = 1  # AVCOL_RANGE_MPEG: limited ("tv") range


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
    start_time: float = 0.0  # first video frame's time relative to the file's start
    sar: tuple[int, int] = (1, 1)  # sample (pixel) aspect ratio of the displayed frame
    # Colour tags as ffmpeg names them ("bt709", "smpte170m"...); "unknown" when untagged.
    color_matrix: str = "unknown"
    color_primaries: str = "unknown"
    color_transfer: str = "unknown"


# --------------------------------------------------------------------------- binaries


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


# --------------------------------------------------------------------------- probe

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
    # level+info tags each stderr line with its level, so demuxer errors stand out.
    cmd = [
        ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "level+info",
        "-i", str(path), "-map", "0:V:0", "-c", "copy", "-f", "framecrc", "-",
    ]  # fmt: skip
    run = subprocess.run(cmd, capture_output=True, check=False)
    stderr = run.stderr.decode("utf-8", "replace")
    header, errors, mapped = _parse_stderr(stderr)

    if header is None:
        reason = "; ".join(dict.fromkeys(errors)) or "ffmpeg could not open it"
        raise MediaError(f"{name}: not a readable video file, or truncated ({reason})")
    fmt, streams, duration_text = header
    videos = [s for s in streams if s.kind == "Video" and "(attached pic)" not in s.rest]
    audios = [s for s in streams if s.kind == "Audio"]
    if not videos or mapped is None:
        what = "audio-only" if audios else "no audio or video"
        raise MediaError(f"{name}: has no video stream ({what})")
    if any(tag in fmt for tag in _STILL_IMAGE_FORMATS):
        raise MediaError(f"{name}: is a still image ({fmt}), not a video")
    if errors:
        raise MediaError(f"{name}: truncated or corrupt ({errors[0]})")
    if run.returncode != 0:
        raise MediaError(f"{name}: ffmpeg failed reading it (exit {run.returncode})")

    video = next((s for s in videos if s.index == mapped), videos[0])
    codec, pix_fmt, coded_w, coded_h, sar, colors = _parse_video_line(video.rest)
    if not coded_w or not coded_h:
        raise MediaError(f"{name}: video stream has no frame size")
    rotation = _rotation(video.extra)
    width, height = (coded_h, coded_w) if rotation in (90, 270) else (coded_w, coded_h)
    if rotation in (90, 270):
        sar = (sar[1], sar[0])  # autorotate's transpose swaps the pixel aspect too

    frames, duration, start, vfr, measured_fps = _parse_packets(
        run.stdout.decode("ascii", "replace")
    )
    if frames == 0:
        raise MediaError(f"{name}: video stream has no frames")
    header_fps = _header_rate(video.rest)
    if duration <= 0:
        # A single frame without a duration: fall back to the nominal rate, then the header.
        duration = 1 / header_fps if header_fps else _clock(duration_text) or 0.0
    fps = measured_fps if vfr else _nominal_rate(header_fps, frames / duration if duration else 0)

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
        start_time=start,
        sar=sar,
        color_matrix=colors[0],
        color_primaries=colors[1],
        color_transfer=colors[2],
    )


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


def _parse_packets(text: str) -> tuple[int, float, float, bool, float]:
    """Frames, duration, start, vfr and mean fps from framecrc packet lines."""
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
        return 0, 0.0, 0.0, False, 0.0
    pts_list.sort()
    deltas = [b - a for a, b in zip(pts_list, pts_list[1:], strict=False) if b > a]
    typical = sorted(deltas)[len(deltas) // 2] if deltas else 0
    last = durations[pts_list[-1]] or typical
    duration = float((pts_list[-1] + last - pts_list[0]) * tb)
    # Containers with coarse clocks (Matroska's 1 ms) jitter by a tick at constant rate.
    tolerance = max(1.5, 0.01 * typical)
    vfr = any(abs(d - typical) > tolerance for d in deltas)
    fps = len(pts_list) / duration if duration > 0 else 0.0
    return len(pts_list), duration, float(pts_list[0] * tb), vfr, fps


def _clock(text: str | None) -> float | None:
    if not text or text == "N/A":
        return None
    h, m, s = text.split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


# --------------------------------------------------------------------------- decode


def scaled_size(info: VideoInfo, scale_to_width: int | None) -> tuple[int, int]:
    """(width, height) of frames read_frames() yields for this scale_to_width (never upscales)."""
    if not scale_to_width or scale_to_width >= info.width:
        return info.width, info.height
    return scale_to_width, max(1, round(info.height * scale_to_width / info.width))


def read_frames(
    path: str | os.PathLike[str],
    info: VideoInfo,
    *,
    scale_to_width: int | None = None,
    start: int = 0,
    end: int | None = None,
    pixel_format: str = "rgb24",
    threads: int = 0,
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (index, RGB frame) for frames start..end-1, decoded and optionally shrunk.

    pixel_format="yuv420p" yields the frames as planar 8-bit YUV 4:2:0 in limited range instead,
    arrays of shape (height * 3 // 2, width), cropped to even sides, never scaled (see
    yuv_planes()): no RGB conversion at all for 8-bit yuv420p video.

    Decoding runs in this process (PyAV, FFmpeg's libraries). Each frame is a new array the
    caller may keep; only one is in memory at a time, however long the video. Close the
    iterator (or let it be collected) to stop early. Constant-rate video seeks to the keyframe
    before `start` and counts frames from their timestamps; variable-rate video decodes from
    the beginning and counts.

    threads: decoder threads, 0 for one per core. Processes that already keep every core
    busy (one per core) decode faster with 1: no threads competing for the same cores.
    """
    if start < 0 or (end is not None and end < start):
        raise ValueError(f"bad frame range start={start} end={end}")
    if pixel_format not in ("rgb24", "yuv420p"):
        raise ValueError(f"unknown pixel_format {pixel_format!r}")
    if end == start:
        return iter(())
    if pixel_format == "yuv420p":
        filters = _yuv420p_filters(info)
        plain: tuple[int, int] | None = _even_size(info.width, info.height)
    else:
        width, height = scaled_size(info, scale_to_width)
        filters = _turn_filters(info.rotation)
        # Pinning the output size keeps every frame the same shape even if the coded size
        # changes mid-stream; bilinear is plenty for face detection and cheaper than bicubic.
        filters.append(("scale", f"{width}:{height}:flags=bilinear"))
        if (width, height) != (info.width, info.height) and info.pix_fmt.startswith("yuv"):
            # Shrink in YUV first, then convert: swscale's scaled RGB output path costs about
            # 40% more CPU than scaling YUV and using its unscaled YUV->RGB converter.
            filters.append(("format", info.pix_fmt))
        filters.append(("format", "rgb24"))
        plain = None
    return _frames(path, info, start, end, _Converter(filters, info.rotation, plain), threads)


def _frames(
    path: str | os.PathLike[str],
    info: VideoInfo,
    start: int,
    end: int | None,
    converter: _Converter,
    threads: int,
) -> Iterator[tuple[int, np.ndarray]]:
    name = Path(path).name
    try:
        container = av.open(os.fspath(path), metadata_errors="ignore")
    except av.FFmpegError as exc:
        raise MediaError(f"{name}: not a readable video: {exc}") from None
    with container:
        stream = container.streams[info.stream_index]
        if threads == 1:
            stream.thread_type = "NONE"
        else:
            stream.thread_type = "AUTO"  # frame and slice threads
            stream.codec_context.thread_count = threads  # 0: one per core
        index: int | None = 0
        first_pts = stream.start_time or 0
        if start and not info.vfr:
            # Aim half a frame early: whatever rounding the container's clock has, the keyframe
            # found is at or before frame `start`; frames are then counted from timestamps.
            at = first_pts + (start - 0.5) / info.fps / stream.time_base
            container.seek(max(int(at), first_pts), stream=stream, backward=True)
            index = None
        try:
            for packet in container.demux(stream):
                for frame in _decoded(packet):
                    if index is None:
                        pts = frame.pts if frame.pts is not None else first_pts
                        index = round(float((pts - first_pts) * stream.time_base) * info.fps)
                    if index >= start:
                        if end is not None and index >= end:
                            return
                        yield index, converter.array(frame)
                    index += 1
        except av.FFmpegError as exc:
            raise MediaError(f"{name}: decoding failed: {exc}") from None


class _Converter:
    """Turns decoded frames into arrays through one filter graph, rebuilt if the input changes.

    With `plain` set (a yuv420p size), frames that already are limited-range 8-bit yuv420p of
    that size and need no turning skip the graph.
    """

    def __init__(
        self, filters: list[tuple[str, str]], rotation: int, plain: tuple[int, int] | None
    ) -> None:
        self.filters, self.rotation, self.plain = filters, rotation, plain
        self.graph: av.filter.Graph | None = None
        self.key: tuple[object, ...] | None = None

    def frame(self, frame: av.VideoFrame) -> av.VideoFrame:
        if self.plain is not None and _plain_yuv420p(frame, self.plain, self.rotation):
            return frame
        key = (frame.format.name, frame.width, frame.height, frame.color_range)
        if self.graph is None or self.key != key:
            self.graph, self.key = _filter_graph(frame, self.filters), key
        self.graph.push(frame)
        return self.graph.pull()

    def array(self, frame: av.VideoFrame) -> np.ndarray:
        return self.frame(frame).to_ndarray()


def _plain_yuv420p(frame: av.VideoFrame, size: tuple[int, int], rotation: int) -> bool:
    return (
        frame.format.name == "yuv420p"
        and (frame.width, frame.height) == size
        and rotation == 0
        and frame.color_range != _JPEG_RANGE
    )


def _filter_graph(frame: av.VideoFrame, filters: list[tuple[str, str]]) -> av.filter.Graph:
    graph = av.filter.Graph()
    nodes = [
        graph.add_buffer(
            width=frame.width,
            height=frame.height,
            format=frame.format,
            time_base=frame.time_base or Fraction(1, 90000),
        )
    ]
    nodes += [graph.add(name, args) for name, args in filters]
    nodes.append(graph.add("buffersink"))
    graph.link_nodes(*nodes).configure()
    return graph


def _turn_filters(rotation: int) -> list[tuple[str, str]]:
    """The filters that turn a coded frame the way players do (what ffmpeg's autorotate adds)."""
    return {
        90: [("transpose", "clock")],
        180: [("hflip", ""), ("vflip", "")],
        270: [("transpose", "cclock")],
    }.get(rotation, [])


def _yuv420p_filters(info: VideoInfo) -> list[tuple[str, str]]:
    """Displayed, even-sized, limited-range 8-bit yuv420p; RGB sources become BT.709."""
    filters = _turn_filters(info.rotation)
    filters += [
        ("crop", crop.removeprefix("crop=")) for crop in _even_crop(info.width, info.height)
    ]
    width, height = _even_size(info.width, info.height)
    matrix = "" if _is_yuv(info) else ":out_color_matrix=bt709"
    filters += [("scale", f"{width}:{height}:out_range=tv{matrix}"), ("format", "yuv420p")]
    return filters


def _decoded(packet: av.Packet) -> list[av.frame.Frame]:
    """A packet's frames; a damaged packet gives none, as ffmpeg skips it and goes on."""
    try:
        return packet.decode()
    except av.InvalidDataError:
        return []


_PREFIX = re.compile(r"^(?:\[[^\]]* @ 0x[0-9a-f]+\] ?)+")


def _ffmpeg_message(errfile: IO[bytes], lines: int = 3) -> str:
    """ffmpeg's first error lines: the cause comes first, the knock-on failures after it."""
    errfile.seek(0)
    text = errfile.read().decode("utf-8", "replace")
    found = [_PREFIX.sub("", line).strip() for line in text.splitlines() if line.strip()]
    return " | ".join(found[:lines])[:500] or "no message from ffmpeg"


# --------------------------------------------------------------------------- draw


@dataclass(frozen=True)
class Label:
    """A named box to draw: (left, top, right, bottom) in displayed-frame pixels, RGB colour."""

    box: Sequence[float]
    text: str
    color_rgb: tuple[int, int, int]


@dataclass(frozen=True)
class _Layout:
    box: tuple[int, int, int, int]  # clamped into the frame
    thickness: int
    tag: tuple[int, int, int, int] | None  # left, top, right, bottom (inclusive)
    text_at: tuple[int, int]
    scale: float
    weight: int
    ink_white: bool


_FONT = cv2.FONT_HERSHEY_SIMPLEX


def _layout(fw: int, fh: int, box: Sequence[float], text: str, color: Sequence[int]) -> _Layout:
    """Where a label's box, tag and text go in a frame of fw x fh, kept inside the frame."""
    left, top, right, bottom = (int(round(v)) for v in box)
    left, right = sorted((max(0, min(fw - 1, left)), max(0, min(fw - 1, right))))
    top, bottom = sorted((max(0, min(fh - 1, top)), max(0, min(fh - 1, bottom))))
    # Sizes follow the frame's short side so a label reads the same at 360p and 4K.
    short = min(fw, fh)
    thickness = max(1, round(short / 360))
    scale = max(0.35, short / 900)
    weight = max(1, round(short / 540))
    # Black or white text, whichever contrasts with the tag (ITU-R BT.601 luma).
    ink_white = 0.299 * color[0] + 0.587 * color[1] + 0.114 * color[2] <= 140
    if not text:
        return _Layout(
            (left, top, right, bottom), thickness, None, (0, 0), scale, weight, ink_white
        )
    (tw, th), baseline = _text_size(text, scale, weight)
    pad = max(2, round(th * 0.3))
    tag_w = min(tw + 2 * pad, fw)
    tag_h = min(th + baseline + 2 * pad, fh)
    # Above the box when there is room, else just inside its top edge; slid left if needed.
    tag_top = top - tag_h if top - tag_h >= 0 else min(top, fh - tag_h)
    tag_left = max(0, min(left, fw - tag_w))
    return _Layout(
        (left, top, right, bottom),
        thickness,
        (tag_left, tag_top, tag_left + tag_w - 1, tag_top + tag_h - 1),
        (tag_left + pad, tag_top + pad + th),
        scale,
        weight,
        ink_white,
    )


@functools.lru_cache(maxsize=256)
def _text_size(text: str, scale: float, weight: int) -> tuple[tuple[int, int], int]:
    return cv2.getTextSize(text, _FONT, scale, weight)


def draw_label(
    frame: np.ndarray,
    box: Sequence[float],
    text: str,
    color_rgb: tuple[int, int, int],
) -> None:
    """Draw a box and a filled name tag on an RGB frame in place, kept inside the frame."""
    fh, fw = frame.shape[:2]
    color = tuple(int(c) for c in color_rgb)
    at = _layout(fw, fh, box, text, color)
    left, top, right, bottom = at.box
    # Axis-aligned edges need no anti-aliasing; LINE_8 keeps them crisp and exact.
    cv2.rectangle(frame, (left, top), (right, bottom), color, at.thickness, cv2.LINE_8)
    if at.tag is None:
        return
    tl, tt, tr, tb = at.tag
    cv2.rectangle(frame, (tl, tt), (tr, tb), color, cv2.FILLED)
    ink = (255, 255, 255) if at.ink_white else (0, 0, 0)
    cv2.putText(frame, text, at.text_at, _FONT, at.scale, ink, at.weight, cv2.LINE_AA)


# Luma weights (Kr, Kb) of the YUV matrices, by ffmpeg's colour-space tag; BT.601 otherwise,
# which is what players assume for untagged standard-definition and what swscale writes.
_KR_KB = {
    "bt709": (0.2126, 0.0722),
    "bt2020nc": (0.2627, 0.0593),
    "bt2020c": (0.2627, 0.0593),
    "smpte240m": (0.212, 0.087),
    "fcc": (0.30, 0.11),
}


def _to_yuv(rgb: Sequence[int], matrix: str) -> tuple[float, float, float]:
    """Limited-range Y, Cb, Cr of an RGB colour under a YUV matrix."""
    kr, kb = _KR_KB.get(matrix, (0.299, 0.114))
    r, g, b = (c / 255 for c in rgb)
    y = kr * r + (1 - kr - kb) * g + kb * b
    return 16 + 219 * y, 128 + 224 * (b - y) / (2 * (1 - kb)), 128 + 224 * (r - y) / (2 * (1 - kr))


def yuv_planes(frame: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Views of the Y, U and V planes of a yuv420p frame of shape (h * 3 // 2, w)."""
    rows, width = frame.shape
    height = rows * 2 // 3
    flat = frame.reshape(-1)
    quarter = (height // 2) * (width // 2)
    return (
        flat[: height * width].reshape(height, width),
        flat[height * width : height * width + quarter].reshape(height // 2, width // 2),
        flat[height * width + quarter :].reshape(height // 2, width // 2),
    )


def draw_labels_yuv(
    planes: tuple[np.ndarray, np.ndarray, np.ndarray], labels: Sequence[Label], matrix: str
) -> None:
    """Draw labels in place on the Y, U, V planes of a yuv420p frame, as draw_label would.

    Luma is drawn at full resolution, chroma at half: only the pixels of boxes and tags are
    touched, so the rest of the frame goes to the encoder exactly as it was decoded. Box edges
    go straight into the planes; only the small tag patch is blended (text anti-aliasing).
    """
    luma, cb, cr = planes
    fh, fw = luma.shape
    for label in labels:
        color = tuple(int(c) for c in label.color_rgb)
        at = _layout(fw, fh, label.box, label.text, color)
        y, u, v = (int(round(c)) for c in _to_yuv(color, matrix))
        left, top, right, bottom = at.box
        # The box straight into each plane (chroma at half size, never thinner than a sample).
        cv2.rectangle(luma, (left, top), (right, bottom), y, at.thickness, cv2.LINE_8)
        half = max(1, at.thickness // 2)
        for plane, value in ((cb, u), (cr, v)):
            cv2.rectangle(
                plane, (left // 2, top // 2), (right // 2, bottom // 2), value, half, cv2.LINE_8
            )
        if at.tag is None:
            continue
        # The tag: filled, then the text blended in by its anti-aliased coverage, over an
        # even-aligned patch so the chroma samples line up.
        tl, tt, tr, tb = at.tag
        x0, y0 = tl & ~1, tt & ~1
        x1, y1 = min(fw, (tr + 2) & ~1), min(fh, (tb + 2) & ~1)
        cover, text, cover2, text2 = _tag_masks(
            label.text,
            at.scale,
            at.weight,
            (x1 - x0, y1 - y0),
            (at.text_at[0] - x0, at.text_at[1] - y0),
            (tl - x0, tt - y0, tr - x0, tb - y0),
        )
        patch = luma[y0:y1, x0:x1].astype(np.float32)
        patch += (y - patch) * cover
        patch += ((235.0 if at.ink_white else 16.0) - patch) * text
        luma[y0:y1, x0:x1] = np.clip(patch + 0.5, 0, 255).astype(np.uint8)
        for plane, value in ((cb, u), (cr, v)):
            patch = plane[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2].astype(np.float32)
            patch += (value - patch) * cover2
            patch += (128.0 - patch) * text2
            plane[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2] = np.clip(patch + 0.5, 0, 255).astype(
                np.uint8
            )


@functools.lru_cache(maxsize=256)
def _tag_masks(
    text: str,
    scale: float,
    weight: int,
    size: tuple[int, int],
    origin: tuple[int, int],
    tag: tuple[int, int, int, int],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Coverage of a tag and of its text over an even-sized patch, at full and half resolution.

    A name's tag has the same size in every frame of a video, so these are made once per name
    and position parity rather than once per frame.
    """
    width, height = size
    ink = np.zeros((height, width), np.uint8)
    cv2.putText(ink, text, origin, _FONT, scale, 255, weight, cv2.LINE_AA)
    cover = np.zeros((height, width), np.float32)
    cover[tag[1] : tag[3] + 1, tag[0] : tag[2] + 1] = 1.0
    text_cover = ink.astype(np.float32) / 255
    rows, cols = height // 2, width // 2
    cover2 = cover.reshape(rows, 2, cols, 2).mean(axis=(1, 3))
    text2 = text_cover.reshape(rows, 2, cols, 2).mean(axis=(1, 3))
    for mask in (cover, text_cover, cover2, text2):
        mask.flags.writeable = False  # shared between frames
    return cover, text_cover, cover2, text2


# --------------------------------------------------------------------------- encode


def render(
    path_in: str | os.PathLike[str],
    path_out: str | os.PathLike[str],
    info: VideoInfo,
    labels: Callable[[int], Sequence[Label]],
    *,
    preset: str = DEFAULT_PRESET,
    crf: int = DEFAULT_CRF,
) -> None:
    """Decode every frame, draw labels(index) on it, encode H.264 MP4 with the original audio.

    One pass inside this process (PyAV: FFmpeg's own libraries, x264 included): demux, decode,
    draw, encode and mux, with the original audio copied when browsers play it in MP4 and
    re-encoded to AAC otherwise. No frame is copied through a pipe, and a frame without labels
    goes from decoder to encoder untouched: labels are drawn straight into the YUV planes
    (draw_labels_yuv), so no pixel outside a label is converted.

    Frames and audio keep their own timestamps, so the output has the input's frame count,
    duration, variable frame rate and audio offset. Frames that are not 8-bit limited-range
    yuv420p of the displayed size (rotation, odd sides, 10-bit, full range, RGB) go through
    one FFmpeg filter graph: rotate as the player would, crop odd sides (box coordinates stay
    valid), convert to limited-range yuv420p (RGB becomes BT.709).

    Colour: the output carries the input's colour tags (matrix, primaries, transfer) in limited
    range; RGB sources become BT.709 and say so; untagged stays untagged. The output appears
    at path_out only when complete.
    """
    if preset not in X264_PRESETS:
        raise MediaError(f"unknown x264 preset {preset!r}: one of {', '.join(X264_PRESETS)}")
    name = Path(path_in).name
    with _atomic_output(path_out) as tmp:
        try:
            with (
                av.open(os.fspath(path_in), metadata_errors="ignore") as source,
                av.open(tmp, "w", format="mp4", options={"movflags": "+faststart"}) as output,
            ):
                written = _Renderer(source, output, info, preset, crf).run(labels)
        except av.FFmpegError as exc:
            raise MediaError(f"{name}: rendering failed: {exc}") from None
        if written == 0:
            raise MediaError(f"{name}: no frames decoded")


X264_PRESETS = (
    "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower",
    "veryslow", "placebo",
)  # fmt: skip


class _Renderer:
    """The state of one render(): streams, the frame converter, the encoder."""

    def __init__(
        self,
        source: av.container.InputContainer,
        output: av.container.OutputContainer,
        info: VideoInfo,
        preset: str,
        crf: int,
    ) -> None:
        self.source, self.output = source, output
        self.video_in = source.streams[info.stream_index]
        self.video_in.thread_type = "AUTO"
        self.size = _even_size(info.width, info.height)
        self.matrix, self.tags = _yuv_tags(info)
        filters = [*_yuv420p_filters(info), ("setparams", self.tags)]
        self.converter = _Converter(filters, info.rotation, self.size)

        options = {"preset": preset, "crf": str(crf)}
        if info.vfr:
            # MP4 stores a frame's duration as the gap to the next frame in decode order. With
            # B-frames and irregular times that is the wrong gap, and the last frame shown ends
            # early; without B-frames decode order is display order and every frame keeps its
            # own duration.
            options["bf"] = "0"
        self.video_out = output.add_stream("libx264", options=options)
        ctx = self.video_out.codec_context
        ctx.width, ctx.height = self.size
        ctx.pix_fmt = "yuv420p"
        ctx.time_base = self.video_in.time_base
        rate = self.video_in.average_rate or self.video_in.guessed_rate
        if rate:
            ctx.framerate = rate
        ctx.sample_aspect_ratio = Fraction(*info.sar)

        self.audio_in = self.audio_out = None
        self.audio_copied = info.audio_codec in MP4_COPY_AUDIO
        if info.has_audio and info.audio_index is not None:
            self.audio_in = source.streams[info.audio_index]
            if self.audio_copied:
                self.audio_out = output.add_stream_from_template(self.audio_in)
            else:
                self.audio_out = output.add_stream("aac", rate=self.audio_in.rate)
                self.audio_out.layout = self.audio_in.layout
                self.audio_out.bit_rate = AAC_BITRATE
        # Nothing is muxed before the first video frame has set the encoder's colour tags.
        self.held: list[av.Packet] | None = []
        self.durations: dict[int, int] = {}

    def run(self, labels: Callable[[int], Sequence[Label]]) -> int:
        streams = [s for s in (self.video_in, self.audio_in) if s is not None]
        index = 0
        for packet in self.source.demux(*streams):
            if packet.stream is self.video_in:
                for frame in _decoded(packet):
                    self.encode(self.prepare(frame, labels(index)))
                    index += 1
            elif self.audio_out is not None and packet.dts is not None:  # dts None: flush packet
                if self.audio_copied:
                    packet.stream = self.audio_out
                    self.mux([packet])
                else:
                    for frame in _decoded(packet):
                        self.mux(self.audio_out.encode(frame))
        if index:
            self.encode(None)
            if self.audio_out is not None and not self.audio_copied:
                self.mux(self.audio_out.encode(None))
        return index

    def prepare(self, frame: av.VideoFrame, found: Sequence[Label]) -> av.VideoFrame:
        """The frame as the encoder takes it: displayed, even-sized yuv420p, labels drawn."""
        frame = self.converter.frame(frame)
        if found:
            frame.make_writable()  # the decoder may still reference its buffer
            draw_labels_yuv(_plane_views(frame), found, self.matrix)
        frame.pict_type = av.video.frame.PictureType.NONE  # x264 picks frame types itself
        return frame

    def encode(self, frame: av.VideoFrame | None) -> None:
        """Encode a frame (None: flush), giving each packet its frame's duration."""
        if frame is not None and frame.pts is not None:
            # x264 drops frame durations; without them the last frame of a variable-rate
            # video would get whatever the muxer guesses.
            self.durations[frame.pts] = frame.duration
        if self.held is not None and frame is not None:
            ctx = self.video_out.codec_context
            ctx.colorspace = frame.colorspace
            ctx.color_primaries = frame.color_primaries
            ctx.color_trc = frame.color_trc
            ctx.color_range = _MPEG_RANGE
        packets = self.video_out.encode(frame)
        for packet in packets:
            duration = self.durations.pop(packet.pts, 0)
            if duration:
                packet.duration = duration
        self.mux(packets)
        if self.held is not None:
            held, self.held = self.held, None
            self.mux(held)

    def mux(self, packets: Sequence[av.Packet]) -> None:
        if self.held is not None:
            self.held.extend(packets)
        else:
            self.output.mux(packets)


def _plane_views(frame: av.VideoFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Writable views of a yuv420p frame's Y, U and V planes, without their row padding."""
    views = []
    for plane in frame.planes:
        rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
        views.append(rows[:, : plane.width])
    return views[0], views[1], views[2]


def transcode(
    path_in: str | os.PathLike[str],
    path_out: str | os.PathLike[str],
    *,
    preset: str = DEFAULT_PRESET,
    crf: int = DEFAULT_CRF,
    info: VideoInfo | None = None,
) -> None:
    """Plain ffmpeg transcode with render()'s encoder settings and audio rule: the baseline."""
    info = info or probe(path_in)
    maps = ["-map", f"0:{info.stream_index}"]
    if info.has_audio and info.audio_index is not None:
        maps += ["-map", f"0:{info.audio_index}", *_audio_args(info)]
    vf = _even_crop(info.width, info.height)
    with _atomic_output(path_out) as tmp, tempfile.TemporaryFile() as errfile:
        cmd = [
            ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
            "-i", os.fspath(path_in), *maps, *(["-vf", ",".join(vf)] if vf else []),
            *_x264_args(preset, crf), "-f", "mp4", tmp,
        ]  # fmt: skip
        if subprocess.run(cmd, stderr=errfile, check=False).returncode != 0:
            raise MediaError(f"{Path(path_in).name}: transcode failed: {_ffmpeg_message(errfile)}")


def _x264_args(preset: str, crf: int) -> list[str]:
    # yuv420p and faststart (index first) are what browsers need to start playing at once.
    return [
        "-c:v", "libx264", "-preset", preset, "-crf", str(crf), "-pix_fmt", "yuv420p",
        "-movflags", "+faststart",
    ]  # fmt: skip


def _audio_args(info: VideoInfo) -> list[str]:
    if info.audio_codec in MP4_COPY_AUDIO:
        return ["-c:a", "copy"]
    return ["-c:a", "aac", "-b:a", str(AAC_BITRATE)]


def _is_yuv(info: VideoInfo) -> bool:
    """Whether the stream is coded as YUV (or grey), not RGB or a palette."""
    rgb = ("rgb", "bgr", "gbr", "argb", "abgr", "0rgb", "0bgr", "pal8", "x2rgb", "x2bgr")
    return not info.pix_fmt.startswith(rgb)


def _yuv_tags(info: VideoInfo) -> tuple[str, str]:
    """The matrix render() draws with and the setparams tags of its output.

    Decoding to yuv420p keeps a YUV input's matrix (it only converts range and subsampling), so
    the output repeats the input's tags and every player shows both alike; an untagged input
    stays untagged. RGB sources were converted with BT.709 by read_frames() and are tagged so.
    """
    matrix = info.color_matrix if _is_yuv(info) else "bt709"
    tags = [] if matrix == "unknown" else [f"colorspace={matrix}"]
    tags.append("range=tv")
    if info.color_primaries != "unknown":
        tags.append(f"color_primaries={info.color_primaries}")
    if info.color_transfer != "unknown":
        tags.append(f"color_trc={info.color_transfer}")
    return matrix, ":".join(tags)


def _even_size(width: int, height: int) -> tuple[int, int]:
    """The frame size yuv420p can hold: odd sides lose their last column/row."""
    even_w, even_h = width - width % 2, height - height % 2
    if (even_w, even_h) != (width, height) and (even_w < 2 or even_h < 2):
        raise MediaError(f"frame {width}x{height} is too small to encode")
    return even_w, even_h


def _even_crop(width: int, height: int) -> list[str]:
    """A crop filter dropping the last column/row when a side is odd (yuv420p needs even)."""
    even_w, even_h = _even_size(width, height)
    return [] if (even_w, even_h) == (width, height) else [f"crop={even_w}:{even_h}:0:0"]


def _umask() -> int:
    # os.umask() can only be read by setting it, which races with other threads creating files.
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    return 0o022


class _atomic_output:
    """Context manager: a temp path next to path_out, moved into place only on success."""

    def __init__(self, path_out: str | os.PathLike[str]) -> None:
        self.path_out = Path(path_out)
        self.tmp: str | None = None

    def __enter__(self) -> str:
        directory = self.path_out.parent
        if not directory.is_dir():
            raise MediaError(f"{directory}: output directory does not exist")
        # Same directory, so the final rename is atomic (same filesystem).
        fd, self.tmp = tempfile.mkstemp(
            dir=directory, prefix=f".{self.path_out.name}.", suffix=".part"
        )
        os.close(fd)
        return self.tmp

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        assert self.tmp is not None
        if exc_type is None and os.path.getsize(self.tmp) > 0:
            # mkstemp makes the file 0600; give the output the mode a plain open() would.
            os.chmod(self.tmp, 0o666 & ~_umask())
            os.replace(self.tmp, self.path_out)
            return
        try:
            os.unlink(self.tmp)
        except FileNotFoundError:
            pass
        if exc_type is None:
            raise MediaError(f"{self.path_out.name}: ffmpeg wrote nothing")
