"""Fancam framing: a crop window that follows one member's stored boxes the way a camera
operator would, chosen with the whole performance known in advance.

Per shot (cuts split the video; the window jumps at a cut, never pans across one):
- Where she is on screen, the target puts her face a little above the window's centre, the
  window `FACE_SHARE` of her face's height... so she stays at a steady size. The window never
  shrinks below `CLOSEST` of the source's height and never leaves the frame.
- A dead zone: the target only moves once she leaves a zone around the framing it holds, so
  the window keeps still through small moves and jitter of the boxes.
- The held path is smoothed forward and backward with a critically damped filter: zero lag,
  no overshoot (the output stays between the values it smooths), easing in and out of pans.
- Where she is off screen, the last framing is held and widened; it eases back when she
  returns. A shot she never appears in shows the whole frame's width, centred.

Boxes are (left, top, right, bottom) in displayed-frame pixels; windows are (x, y, w, h)
with even integers, inside the frame.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

ASPECTS = {"9:16": (9, 16), "1:1": (1, 1), "16:9": (16, 9)}
DEFAULT_ASPECT = "9:16"

# Her face's height as a share of the window's height, and where its centre sits.
FACE_SHARE = 0.2
FACE_AT = (0.5, 0.42)  # of the window's width and height: a little above the centre
# The dead zone, as shares of the window: she may drift this far from the held framing
# before the camera follows.
DEAD_ZONE = (0.08, 0.06)
ZOOM_DEAD_ZONE = 0.15  # relative change of the wanted size before the camera zooms
# Seconds the smoothing takes to settle, for position and for zoom; off screen, how much
# wider the held framing becomes.
SETTLE_S = 0.5
ZOOM_SETTLE_S = 1.0
WIDEN = 1.5
# Between two frames of one shot the window's centre moves at most this share of the frame's
# width (the whole width in a second, a fast pan), and its height changes by at most this
# share of itself: a pan, never a jump. Faster runs are caught up with after.
MAX_MOVE = 0.04
MAX_ZOOM = 0.01
# How close the window may zoom, as a share of the source's height: the fancam is as tall as
# the source (608x1080 at 9:16 from 1080p), so at its closest a frame is scaled up by 1.5.
CLOSEST = 2 / 3


@dataclass(frozen=True)
class Plan:
    """Where the window is in every frame, and the output size it is scaled to."""

    windows: np.ndarray  # (frames, 4): x, y, w, h, even ints
    output: tuple[int, int]  # width, height, even
    cuts: tuple[int, ...]  # frames where the window jumped


def output_size(frame: tuple[int, int], aspect: str = DEFAULT_ASPECT) -> tuple[int, int]:
    """The fancam's size: the source's height (its width, for a shape that would not fit),
    even sides rounded up but never past the source's: 608x1080 at 9:16 from 1080p."""
    width, height = frame
    aw, ah = ASPECTS[aspect]
    out_w, out_h = _fitted(width, height, aw, ah, 1.0)
    return _even_up(out_w, width), _even_up(out_h, height)


def _fitted(width: int, height: int, aw: int, ah: int, share: float) -> tuple[float, float]:
    """A window of the shape aw:ah, `share` of the source's height, or of its width if that
    would not fit."""
    out_h = height * share
    out_w = out_h * aw / ah
    if out_w > width * share:
        out_w = width * share
        out_h = out_w * ah / aw
    return out_w, out_h


def plan(
    boxes: Mapping[int, Sequence[float]],
    *,
    frames: int,
    frame: tuple[int, int],
    fps: float,
    cuts: Sequence[int] = (),
    aspect: str = DEFAULT_ASPECT,
) -> Plan:
    """The window for each of `frames` frames of a `frame`-sized video, following `boxes`
    (frame index -> her box)."""
    out_w, out_h = output_size(frame, aspect)
    aw, ah = ASPECTS[aspect]
    edges = sorted({0, frames, *(c for c in cuts if 0 < c < frames)})
    # Per frame: wanted centre (x, y) and window height, NaN where she is not on screen.
    centre = np.full((frames, 2), np.nan)
    size = np.full(frames, np.nan)
    for index, (left, top, right, bottom) in boxes.items():
        if 0 <= index < frames:
            face_h = max(bottom - top, 1.0)
            window_h = face_h / FACE_SHARE
            centre[index] = (
                (left + right) / 2 + (0.5 - FACE_AT[0]) * window_h * aw / ah,
                (top + bottom) / 2 + (0.5 - FACE_AT[1]) * window_h,
            )
            size[index] = window_h
    lo_h, hi_h = _even(_fitted(*frame, aw, ah, CLOSEST)[1]), _max_height(frame, aw, ah)
    windows = np.zeros((frames, 4), dtype=np.int64)
    for start, end in zip(edges, edges[1:], strict=False):
        cx, cy, h = _shot(centre[start:end], size[start:end], frame, fps, (lo_h, hi_h), aw / ah)
        windows[start:end] = _windows(cx, cy, h, frame, aw / ah)
    return Plan(windows=windows, output=(out_w, out_h), cuts=tuple(edges[1:-1]))


def highlight_ranges(
    present: Sequence[int], *, frames: int, cuts: Sequence[int] = ()
) -> list[tuple[int, int]]:
    """[start, end) of the shots she appears in, in order: what the highlights keep."""
    edges = sorted({0, frames, *(c for c in cuts if 0 < c < frames)})
    seen = np.zeros(frames, dtype=bool)
    seen[[f for f in present if 0 <= f < frames]] = True
    return [(a, b) for a, b in zip(edges, edges[1:], strict=False) if seen[a:b].any()]


def _shot(centre, size, frame, fps, heights, ratio):
    """Smoothed (cx, cy, h) for one shot's frames."""
    width, height = frame
    lo_h, hi_h = heights
    seen = ~np.isnan(size)
    n = len(size)
    if not seen.any():  # she is not in this shot: the widest view, centred
        return np.full(n, width / 2), np.full(n, height / 2), np.full(n, hi_h)
    wanted_h = np.clip(size, lo_h, hi_h)
    # Off screen: the framing glides from where she left to where she comes back (held at
    # the shot's ends), widened.
    filled_c = np.stack([_bridge(centre[:, 0], seen), _bridge(centre[:, 1], seen)], axis=1)
    filled_h = _bridge(wanted_h, seen)
    filled_h = np.where(seen, filled_h, np.minimum(filled_h * WIDEN, hi_h))
    held_h = _dead_zone_path(filled_h, ZOOM_DEAD_ZONE * filled_h)
    h = np.clip(_smooth(held_h, ZOOM_SETTLE_S * fps), lo_h, hi_h)
    h = _limited(h, MAX_ZOOM * lo_h)
    held_x = _dead_zone_path(filled_c[:, 0], DEAD_ZONE[0] * h * ratio)
    held_y = _dead_zone_path(filled_c[:, 1], DEAD_ZONE[1] * h)
    step = (MAX_MOVE * width - 4) / np.sqrt(2)  # 4: what rounding to even pixels may add
    cx = _limited(_smooth(held_x, SETTLE_S * fps), step)
    cy = _limited(_smooth(held_y, SETTLE_S * fps), step)
    return cx, cy, h


def _limited(values: np.ndarray, step: float) -> np.ndarray:
    """The path with no step between frames larger than `step` (it catches up afterwards)."""
    out = values.astype(float).copy()
    for i in range(1, len(out)):
        out[i] = out[i - 1] + np.clip(out[i] - out[i - 1], -step, step)
    return out


def _bridge(values: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """Gaps filled in a straight line between the values on either side; before the first
    and after the last seen value, that value held."""
    index = np.arange(len(values))
    return np.interp(index, index[seen], values[seen])


def _dead_zone_path(target: np.ndarray, zone: np.ndarray) -> np.ndarray:
    """A path that holds still while the target stays within `zone` of it, and otherwise
    moves just enough to keep it at the zone's edge."""
    out = np.empty_like(target)
    held = target[0]
    for i, value in enumerate(target):
        gap = value - held
        if abs(gap) > zone[i]:
            held = value - np.sign(gap) * zone[i]
        out[i] = held
    return out


def _smooth(values: np.ndarray, settle_frames: float) -> np.ndarray:
    """Zero-lag smoothing: a critically damped second-order filter run forward, then backward
    over its own output. Its step response never overshoots, so the result stays between the
    values it smooths; `settle_frames` is about the time a step takes to be 95% done."""
    if len(values) < 3:
        return values.astype(float)
    omega = 4.7 / max(settle_frames, 1.0)  # critically damped: 95% settled at t = 4.7 / omega
    out = _damped(values, omega)
    return _damped(out[::-1], omega)[::-1]


def _damped(values: np.ndarray, omega: float) -> np.ndarray:
    """A critically damped spring following `values` (one step per frame, exact update)."""
    out = np.empty(len(values))
    x, v = float(values[0]), 0.0
    decay = np.exp(-omega)
    for i, target in enumerate(values):
        # The exact solution over one step of x'' = -2w x' - w^2 (x - target).
        offset = x - target
        k = v + omega * offset
        x = target + (offset + k) * decay
        v = (v - omega * k) * decay
        out[i] = x
    return out


def _windows(cx, cy, h, frame, ratio) -> np.ndarray:
    """Even-sided windows of height h and aspect `ratio` around (cx, cy), kept in the frame."""
    width, height = frame
    w = np.minimum(h * ratio, width)
    h = np.minimum(w / ratio, height)
    x = np.clip(cx - w / 2, 0, width - w)
    y = np.clip(cy - h / 2, 0, height - h)
    wi = np.array([_even(v) for v in w])
    hi = np.array([_even(v) for v in h])
    xi = np.clip((np.round(x) // 2 * 2).astype(np.int64), 0, width - wi)
    yi = np.clip((np.round(y) // 2 * 2).astype(np.int64), 0, height - hi)
    return np.stack([xi, yi, wi, hi], axis=1)


def _max_height(frame: tuple[int, int], aw: int, ah: int) -> float:
    width, height = frame
    return min(height, width * ah / aw)


def _even(value: float) -> int:
    return max(2, int(value) // 2 * 2)


def _even_up(value: float, most: int) -> int:
    """`value` rounded up to an even number, but at most `most` (rounded down to even)."""
    return max(2, min(2 * math.ceil(value / 2), most // 2 * 2))
