"""Alignment to the ArcFace 112x112 template: a similarity transform from five keypoints.

Django-free.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["ARCFACE_TEMPLATE", "align", "alignment_transform", "similarity_transform"]

#: Where the five keypoints of an ArcFace-aligned 112x112 face chip lie (left eye, right
#: eye, nose, left mouth corner, right mouth corner; x, y in pixels).
ARCFACE_TEMPLATE = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform (rotation, uniform scale, translation; no
    reflection) taking points ``src`` (N, 2) onto ``dst`` (N, 2), by Umeyama's method
    (IEEE TPAMI 13(4), 1991). Returns the 2x3 float64 matrix M with dst ~ M @ [x, y, 1].
    """
    src = np.asarray(src, dtype=np.float64).reshape(-1, 2)
    dst = np.asarray(dst, dtype=np.float64).reshape(-1, 2)
    if src.shape != dst.shape or len(src) < 2:
        raise ValueError("need two equal-length sets of at least two points")
    mu_src, mu_dst = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - mu_src, dst - mu_dst
    var_src = (src_c**2).sum() / len(src)
    if var_src <= 1e-12:
        raise ValueError("source points coincide")
    cov = dst_c.T @ src_c / len(src)  # 2x2 cross-covariance
    u, sig, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1.0  # the best orthogonal map would reflect: use the best rotation instead
    rot = u @ np.diag(d) @ vt
    scale = (sig * d).sum() / var_src
    m = np.empty((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_dst - scale * rot @ mu_src
    return m


def alignment_transform(keypoints: np.ndarray, size: int = 112) -> np.ndarray:
    """The 2x3 matrix taking image pixels to a ``size`` x ``size`` chip in which the five
    ``keypoints`` best fit the ArcFace template (scaled by size / 112)."""
    return similarity_transform(keypoints, ARCFACE_TEMPLATE * (size / 112.0))


def align(image_rgb: np.ndarray, keypoints: np.ndarray, size: int = 112) -> np.ndarray:
    """Warp ``image_rgb`` to an ArcFace-aligned (size, size, 3) uint8 face chip, using
    the face's five keypoints. Outside the image is black."""
    m = alignment_transform(keypoints, size)
    return cv2.warpAffine(
        image_rgb,
        m,
        (size, size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0, 0, 0),
    )
