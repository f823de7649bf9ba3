"""Render a fancam: the labelled render's in-process path (decode, then crop and scale each
frame to the planned window, encode H.264 with the original audio in the same pass).

By default every frame is kept with its own timestamp, so the fancam has the source's frame
count and duration, and the audio is the labelled render's (copied when browsers play it).
With highlights only the given frame ranges are kept, joined end to end: video timestamps
and audio samples are both moved by the time left out before them, so they stay in sync to
the sample; the audio is re-encoded to AAC, cut at exactly the kept times.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from fractions import Fraction

import av
import cv2
import numpy as np

from core.media.draw import Label, draw_labels_yuv
from core.media.probe import VideoInfo
from core.media.render import DEFAULT_CRF, DEFAULT_PRESET, Renderer, encode_with, plane_views


def render_fancam(
    path_in: str | os.PathLike[str],
    path_out: str | os.PathLike[str],
    info: VideoInfo,
    windows: np.ndarray,
    size: tuple[int, int],
    *,
    keep: Sequence[tuple[int, int]] | None = None,
    labels: Callable[[int], Sequence[Label]] | None = None,
    preset: str = DEFAULT_PRESET,
    crf: int = DEFAULT_CRF,
) -> int:
    """Write the fancam of `windows` (per frame x, y, w, h) scaled to `size`; with `keep`,
    only those [start, end) frame ranges. `labels` (full-frame boxes) are drawn into the
    window. Returns the frames written."""

    def make(source, output):
        cls = _HighlightsRenderer if keep is not None else _FancamRenderer
        renderer = cls(source, output, info, preset, crf, labels or (lambda index: ()), size)
        renderer.plan(windows, keep)
        return renderer

    return encode_with(path_in, path_out, make)


class _FancamRenderer(Renderer):
    def plan(self, windows: np.ndarray, keep) -> None:
        self.windows = windows

    def video_frame(self, frame: av.VideoFrame, index: int) -> av.VideoFrame | None:
        full = self.converter.frame(frame)
        x, y, w, h = (int(v) for v in self.windows[min(index, len(self.windows) - 1)])
        out = _crop_scaled(full, (x, y, w, h), self.size)
        found = self.labels(index)
        if found:
            draw_labels_yuv(
                plane_views(out), _in_window(found, (x, y, w, h), self.size), self.matrix
            )
        out.pts, out.time_base = full.pts, full.time_base
        out.duration = full.duration
        out.pict_type = av.video.frame.PictureType.NONE
        return out


class _HighlightsRenderer(_FancamRenderer):
    """Only the kept frame ranges, joined; audio cut at the same times and re-encoded."""

    audio_recoded = True

    def plan(self, windows: np.ndarray, keep) -> None:
        super().plan(windows, keep)
        clock = self.info.clock()
        # Kept stretches in seconds of the source's clock, and the time left out before each.
        self.kept: list[tuple[float, float, float]] = []
        removed = 0.0
        previous_end = clock.first
        for first, last in keep:
            t0, t1 = clock.span(first, last)
            removed += t0 - previous_end
            self.kept.append((t0, t1, removed))
            previous_end = t1
        self.ranges = list(keep)
        self.fifo = av.AudioFifo()
        self.resampler = None
        self.audio_pts: int | None = None

    def video_frame(self, frame: av.VideoFrame, index: int) -> av.VideoFrame | None:
        if not any(first <= index < last for first, last in self.ranges):
            return None
        out = super().video_frame(frame, index)
        moved = self._moved(float(frame.pts * frame.time_base))
        out.pts = round(moved / frame.time_base)
        return out

    def _moved(self, t: float) -> float:
        """Where time t of the source lands in the highlights."""
        for t0, t1, removed in self.kept:
            if t < t1 or (t0, t1, removed) == self.kept[-1]:
                return max(t, t0) - removed
        return t

    def audio_frame(self, frame: av.AudioFrame | None) -> None:
        encoder = self.audio_out
        if frame is not None:
            if self.resampler is None:
                self.resampler = av.AudioResampler(
                    format="fltp", layout=encoder.layout, rate=encoder.rate
                )
            for planar in self.resampler.resample(frame):
                self._cut(planar)
        chunk = encoder.codec_context.frame_size or 1024
        while self.fifo.samples >= chunk or (frame is None and self.fifo.samples):
            piece = self.fifo.read(min(chunk, self.fifo.samples))
            piece.pts, piece.time_base = self.audio_pts, Fraction(1, encoder.rate)
            self.audio_pts += piece.samples
            self.mux(encoder.encode(piece))
        if frame is None:
            self.mux(encoder.encode(None))

    def _cut(self, frame: av.AudioFrame) -> None:
        """The samples of a decoded frame that fall in kept stretches, into the FIFO."""
        rate = frame.sample_rate
        samples = frame.to_ndarray()  # (channels, n): planar
        t_first = float(frame.pts * frame.time_base)
        times = t_first + np.arange(samples.shape[1]) / rate
        kept = np.zeros(samples.shape[1], dtype=bool)
        for t0, t1, _ in self.kept:
            kept |= (times >= t0) & (times < t1)
        if not kept.any():
            return
        if self.audio_pts is None:
            first = times[int(np.argmax(kept))]
            self.audio_pts = round(self._moved(first) * rate)
        piece = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(samples[:, kept]), format="fltp", layout=frame.layout.name
        )
        piece.sample_rate = rate
        self.fifo.write(piece)


def _crop_scaled(frame: av.VideoFrame, window, size) -> av.VideoFrame:
    """The window of a yuv420p frame, scaled to `size`, as a new yuv420p frame."""
    x, y, w, h = window
    out_w, out_h = size
    planes = plane_views(frame)
    grow = out_h > h  # the plan never upscales; a rounding pixel may
    how = cv2.INTER_LINEAR if grow else cv2.INTER_AREA
    luma = cv2.resize(planes[0][y : y + h, x : x + w], (out_w, out_h), interpolation=how)
    u, v = (
        cv2.resize(
            p[y // 2 : (y + h) // 2, x // 2 : (x + w) // 2],
            (out_w // 2, out_h // 2),
            interpolation=how,
        )
        for p in planes[1:]
    )
    packed = np.concatenate([luma.reshape(-1), u.reshape(-1), v.reshape(-1)])
    out = av.VideoFrame.from_ndarray(packed.reshape(out_h * 3 // 2, out_w), format="yuv420p")
    out.colorspace, out.color_range = frame.colorspace, frame.color_range
    out.color_primaries, out.color_trc = frame.color_primaries, frame.color_trc
    return out


def _in_window(found: Sequence[Label], window, size) -> list[Label]:
    """Labels moved from frame pixels into the scaled window's pixels."""
    x, y, w, h = window
    sx, sy = size[0] / w, size[1] / h
    moved = []
    for label in found:
        left, top, right, bottom = label.box
        box = ((left - x) * sx, (top - y) * sy, (right - x) * sx, (bottom - y) * sy)
        if box[2] > 0 and box[3] > 0 and box[0] < size[0] and box[1] < size[1]:
            moved.append(Label(box, label.text, label.color_rgb))
    return moved
