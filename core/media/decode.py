"""Decode a video in this process (PyAV) to RGB or YUV frames of the displayed frame, scaled."""

from __future__ import annotations

import os
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from core.media.probe import MediaError, VideoInfo

_JPEG_RANGE = 2  # AVCOL_RANGE_JPEG: full range


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
        filters = yuv420p_filters(info)
        plain: tuple[int, int] | None = even_size(info.width, info.height)
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
    return _frames(path, info, start, end, Converter(filters, info.rotation, plain), threads)


def _frames(
    path: str | os.PathLike[str],
    info: VideoInfo,
    start: int,
    end: int | None,
    converter: Converter,
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
        try:
            for index, frame in indexed_frames(container, stream, info, start, end):
                yield index, converter.array(frame)
        except av.FFmpegError as exc:
            raise MediaError(f"{name}: decoding failed: {exc}") from None


def indexed_frames(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    info: VideoInfo,
    start: int,
    end: int | None,
) -> Iterator[tuple[int, av.VideoFrame]]:
    """(index, decoded frame) for frames start..end-1 of an open container's video stream.

    Constant-rate video seeks to the keyframe before `start` and counts frames from their
    timestamps; variable-rate video decodes from the beginning and counts."""
    index: int | None = 0
    first_pts = stream.start_time or 0
    if start and not info.vfr:
        # Aim half a frame early: whatever rounding the container's clock has, the keyframe
        # found is at or before frame `start`; frames are then counted from timestamps.
        at = first_pts + (start - 0.5) / info.fps / stream.time_base
        container.seek(max(int(at), first_pts), stream=stream, backward=True)
        index = None
    for packet in container.demux(stream):
        for frame in decoded(packet):
            if index is None:
                pts = frame.pts if frame.pts is not None else first_pts
                index = round(float((pts - first_pts) * stream.time_base) * info.fps)
            if index >= start:
                if end is not None and index >= end:
                    return
                yield index, frame
            index += 1


class Converter:
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


def yuv420p_filters(info: VideoInfo) -> list[tuple[str, str]]:
    """Displayed, even-sized, limited-range 8-bit yuv420p; RGB sources become BT.709."""
    filters = _turn_filters(info.rotation)
    filters += [("crop", crop.removeprefix("crop=")) for crop in even_crop(info.width, info.height)]
    width, height = even_size(info.width, info.height)
    matrix = "" if is_yuv(info) else ":out_color_matrix=bt709"
    filters += [("scale", f"{width}:{height}:out_range=tv{matrix}"), ("format", "yuv420p")]
    return filters


def decoded(packet: av.Packet) -> list[av.frame.Frame]:
    """A packet's frames; a damaged packet gives none, as ffmpeg skips it and goes on."""
    try:
        return packet.decode()
    except av.InvalidDataError:
        return []


def is_yuv(info: VideoInfo) -> bool:
    """Whether the stream is coded as YUV (or grey), not RGB or a palette."""
    rgb = ("rgb", "bgr", "gbr", "argb", "abgr", "0rgb", "0bgr", "pal8", "x2rgb", "x2bgr")
    return not info.pix_fmt.startswith(rgb)


def even_size(width: int, height: int) -> tuple[int, int]:
    """The frame size yuv420p can hold: odd sides lose their last column/row."""
    even_w, even_h = width - width % 2, height - height % 2
    if (even_w, even_h) != (width, height) and (even_w < 2 or even_h < 2):
        raise MediaError(f"frame {width}x{height} is too small to encode")
    return even_w, even_h


def even_crop(width: int, height: int) -> list[str]:
    """A crop filter dropping the last column/row when a side is odd (yuv420p needs even)."""
    even_w, even_h = even_size(width, height)
    return [] if (even_w, even_h) == (width, height) else [f"crop={even_w}:{even_h}:0:0"]
