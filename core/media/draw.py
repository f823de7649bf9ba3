"""Draw member-coloured boxes and name tags on RGB frames, or straight into YUV planes."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np


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
