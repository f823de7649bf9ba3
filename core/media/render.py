"""Encode: the labelled render (one in-process pass with the original audio) and the plain
ffmpeg transcode it is measured against."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import IO

import av
import numpy as np

from core.files import atomic_output
from core.media.decode import (
    Converter,
    decoded,
    even_crop,
    even_size,
    indexed_frames,
    is_yuv,
    yuv420p_filters,
)
from core.media.draw import Label, draw_labels_yuv
from core.media.probe import MediaError, VideoInfo, ffmpeg_exe, probe

DEFAULT_PRESET = "veryfast"
# CRF 20 keeps the thin label strokes and small text clean at 720p for a modest size increase
# over x264's default of 23.
DEFAULT_CRF = 20

# Audio codecs that are copied into the MP4 untouched: MP4 can hold them and current browsers
# play them. ALAC, AC-3/E-AC-3 and PCM are legal in MP4 (some only with -strict) but Chrome and
# Firefox do not play them, so they are re-encoded to AAC like every other codec.
MP4_COPY_AUDIO = frozenset({"aac", "mp3", "opus", "flac"})
AAC_BITRATE = 192_000

_MPEG_RANGE = 1  # AVCOL_RANGE_MPEG: limited ("tv") range


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
    encode_with(
        path_in,
        path_out,
        lambda source, output: Renderer(source, output, info, preset, crf, labels),
    )


def render_part(
    path_in: str | os.PathLike[str],
    path_out: str | os.PathLike[str],
    info: VideoInfo,
    labels: Callable[[int], Sequence[Label]],
    start: int,
    end: int,
    *,
    preset: str = DEFAULT_PRESET,
    crf: int = DEFAULT_CRF,
) -> int:
    """Frames [start, end) of render()'s output, without audio: one piece of a render spread
    over workers, which join_parts() puts together. labels(index) takes the frame's index in
    the whole video. The piece's times count from the video's first frame, so the pieces of a
    video line up end to end. Returns the frames written."""
    if not 0 <= start < end:
        raise ValueError(f"bad frame range start={start} end={end}")
    return encode_with(
        path_in, path_out,
        lambda source, output: _PartRenderer(source, output, info, preset, crf, labels, start, end),
    )


def join_parts(
    parts: Sequence[str | os.PathLike[str]],
    original: str | os.PathLike[str],
    path_out: str | os.PathLike[str],
    info: VideoInfo,
) -> None:
    """The pieces render_part() made, in order, as one MP4 with the original's audio: the
    video is copied, not encoded again (ffmpeg's concat demuxer), and the audio copied or
    re-encoded by render()'s rule, at its offset from the first frame as in the original."""
    if not parts:
        raise ValueError("no parts to join")
    maps = ["-map", "0:v:0"]
    if info.has_audio and info.audio_index is not None:
        maps += ["-map", f"1:{info.audio_index}", *_audio_args(info)]
    with atomic_output(path_out) as tmp, tempfile.TemporaryDirectory() as folder:
        listing = Path(folder) / "parts.txt"
        listing.write_text("".join(f"file {_concat_quoted(p)}\n" for p in parts))
        _ffmpeg(
            [
                # Every stream keeps the original's clock (-copyts: the file's start is not
                # moved to 0), and the parts, timed from 0, start at the first frame's time.
                "-copyts", "-itsoffset", f"{info.clock().first:.6f}", "-f", "concat",
                "-safe", "0", "-i", listing, "-i", os.fspath(original), *maps, "-c:v", "copy",
                "-movflags", "+faststart", "-f", "mp4", tmp,
            ],
            f"{Path(original).name}: joining the rendered parts failed",
        )  # fmt: skip


def _concat_quoted(path: str | os.PathLike[str]) -> str:
    """A path as the concat demuxer's list reads it: absolute, in single quotes."""
    return "'" + str(Path(path).resolve()).replace("'", "'\\''") + "'"


def encode_with(path_in, path_out, make: Callable[..., Renderer]) -> int:
    """Run the Renderer that make(source, output) builds from path_in into path_out (H.264
    MP4, index first), which appears only when complete; returns the frames written."""
    name = Path(path_in).name
    with atomic_output(path_out) as tmp:
        try:
            with (
                av.open(os.fspath(path_in), metadata_errors="ignore") as source,
                av.open(tmp, "w", format="mp4", options={"movflags": "+faststart"}) as output,
            ):
                written = make(source, output).run()
        except av.FFmpegError as exc:
            raise MediaError(f"{name}: rendering failed: {exc}") from None
        if written == 0:
            raise MediaError(f"{name}: no frames decoded")
    return written


X264_PRESETS = (
    "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower",
    "veryslow", "placebo",
)  # fmt: skip


class Renderer:
    """The state of one render: streams, the frame converter, the encoder.

    This one draws labels(index) on every frame. Subclasses change what a frame becomes
    (video_frame(), which may also drop it), the output `size`, and with `audio_recoded` they
    get every decoded audio frame in audio_frame() to re-encode (AAC) as they choose."""

    audio_recoded = False

    def __init__(
        self,
        source: av.container.InputContainer,
        output: av.container.OutputContainer,
        info: VideoInfo,
        preset: str,
        crf: int,
        labels: Callable[[int], Sequence[Label]] = lambda index: (),
        size: tuple[int, int] | None = None,
        audio: bool = True,
    ) -> None:
        if preset not in X264_PRESETS:
            raise MediaError(f"unknown x264 preset {preset!r}: one of {', '.join(X264_PRESETS)}")
        self.source, self.output, self.info, self.labels = source, output, info, labels
        self.video_in = source.streams[info.stream_index]
        self.video_in.thread_type = "AUTO"
        self.frame_size = even_size(info.width, info.height)
        self.size = size or self.frame_size
        self.matrix, self.tags = _yuv_tags(info)
        filters = [*yuv420p_filters(info), ("setparams", self.tags)]
        self.converter = Converter(filters, info.rotation, self.frame_size)

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
        # Frame threads, as ffmpeg's command line runs x264: PyAV's default (slice threads)
        # made the render 12% slower on stage-dev (5.3-5.6 s against 4.6-5.0 s).
        ctx.thread_type = "FRAME"
        ctx.time_base = self.video_in.time_base
        rate = self.video_in.average_rate or self.video_in.guessed_rate
        if rate:
            ctx.framerate = rate
        ctx.sample_aspect_ratio = Fraction(*info.sar)

        self.audio_in = self.audio_out = None
        self.audio_copied = info.audio_codec in MP4_COPY_AUDIO and not self.audio_recoded
        if audio and info.has_audio and info.audio_index is not None:
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

    def run(self) -> int:
        streams = [s for s in (self.video_in, self.audio_in) if s is not None]
        index = written = 0
        for packet in self.source.demux(*streams):
            if packet.stream is self.video_in:
                for frame in decoded(packet):
                    out = self.video_frame(frame, index)
                    index += 1
                    if out is not None:
                        self.encode(out)
                        written += 1
            elif self.audio_out is not None and packet.dts is not None:  # dts None: flush packet
                if self.audio_copied:
                    packet.stream = self.audio_out
                    self.mux([packet])
                else:
                    for frame in decoded(packet):
                        self.audio_frame(frame)
        if written:
            self.encode(None)
            if self.audio_out is not None and not self.audio_copied:
                self.audio_frame(None)
        return written

    def video_frame(self, frame: av.VideoFrame, index: int) -> av.VideoFrame | None:
        """What decoded frame `index` becomes in the output (None: left out)."""
        return self.prepare(frame, self.labels(index))

    def audio_frame(self, frame: av.AudioFrame | None) -> None:
        """Re-encode a decoded audio frame (None: flush the encoder)."""
        self.mux(self.audio_out.encode(frame))

    def prepare(self, frame: av.VideoFrame, found: Sequence[Label]) -> av.VideoFrame:
        """The frame as the encoder takes it: displayed, even-sized yuv420p, labels drawn."""
        frame = self.converter.frame(frame)
        if found:
            frame.make_writable()  # the decoder may still reference its buffer
            draw_labels_yuv(plane_views(frame), found, self.matrix)
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


class _PartRenderer(Renderer):
    """render_part(): the video stream's frames [start, end) only, timed from the first frame."""

    def __init__(self, source, output, info, preset, crf, labels, start: int, end: int) -> None:
        super().__init__(source, output, info, preset, crf, labels, audio=False)
        self.start, self.end = start, end

    def run(self) -> int:
        first = self.video_in.start_time or 0
        written = 0
        for index, frame in indexed_frames(
            self.source, self.video_in, self.info, self.start, self.end
        ):
            out = self.video_frame(frame, index)
            if out.pts is not None:
                out.pts -= first
            self.encode(out)
            written += 1
        if written:
            self.encode(None)
        return written


def plane_views(frame: av.VideoFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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
    vf = even_crop(info.width, info.height)
    with atomic_output(path_out) as tmp:
        _ffmpeg(
            [
                "-i", os.fspath(path_in), *maps, *(["-vf", ",".join(vf)] if vf else []),
                *_x264_args(preset, crf), "-f", "mp4", tmp,
            ],
            f"{Path(path_in).name}: transcode failed",
        )  # fmt: skip


def _ffmpeg(args: list, failure: str) -> None:
    """Run the ffmpeg binary quietly on args; a failure raises MediaError("failure: why")."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args]
    with tempfile.TemporaryFile() as errfile:
        if subprocess.run(cmd, stderr=errfile, check=False).returncode != 0:
            raise MediaError(f"{failure}: {_ffmpeg_message(errfile)}")


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


def _yuv_tags(info: VideoInfo) -> tuple[str, str]:
    """The matrix render() draws with and the setparams tags of its output.

    Decoding to yuv420p keeps a YUV input's matrix (it only converts range and subsampling), so
    the output repeats the input's tags and every player shows both alike; an untagged input
    stays untagged. RGB sources were converted with BT.709 by read_frames() and are tagged so.
    """
    matrix = info.color_matrix if is_yuv(info) else "bt709"
    tags = [] if matrix == "unknown" else [f"colorspace={matrix}"]
    tags.append("range=tv")
    if info.color_primaries != "unknown":
        tags.append(f"color_primaries={info.color_primaries}")
    if info.color_transfer != "unknown":
        tags.append(f"color_trc={info.color_transfer}")
    return matrix, ":".join(tags)


_PREFIX = re.compile(r"^(?:\[[^\]]* @ 0x[0-9a-f]+\] ?)+")


def _ffmpeg_message(errfile: IO[bytes], lines: int = 3) -> str:
    """ffmpeg's first error lines: the cause comes first, the knock-on failures after it."""
    errfile.seek(0)
    text = errfile.read().decode("utf-8", "replace")
    found = [_PREFIX.sub("", line).strip() for line in text.splitlines() if line.strip()]
    return " | ".join(found[:lines])[:500] or "no message from ffmpeg"
