"""Alignment: a similarity transform from five keypoints onto the ArcFace template."""

from __future__ import annotations

import cv2
import numpy as np

from core.faces.align import (
    ARCFACE_TEMPLATE,
    align,
    alignment_transform,
    similarity_transform,
)


def apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return np.asarray(pts, float) @ m[:, :2].T + m[:, 2]


def test_similarity_transform_recovers_a_known_one():
    rng = np.random.default_rng(1)
    for _ in range(20):
        angle, scale = rng.uniform(-np.pi, np.pi), rng.uniform(0.2, 5)
        t = rng.uniform(-300, 300, 2)
        r = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        src = rng.uniform(0, 500, (5, 2))
        m = similarity_transform(src, src @ r.T + t)
        np.testing.assert_allclose(m[:, :2], r, atol=1e-9)
        np.testing.assert_allclose(m[:, 2], t, atol=1e-6)


def test_similarity_transform_never_reflects():
    mirrored = ARCFACE_TEMPLATE * [-1, 1]
    m = similarity_transform(ARCFACE_TEMPLATE, mirrored)
    assert np.linalg.det(m[:, :2]) > 0


def test_align_puts_the_keypoints_on_the_template():
    # Keypoints of a face at some angle, scale and place in a big image, with a little
    # noise; mark them in the image, align, and find the marks in the chip.
    rng = np.random.default_rng(2)
    for angle, scale, centre in [(0, 1, (56, 56)), (25, 2.2, (400, 250)), (-70, 0.8, (90, 300))]:
        m = cv2.getRotationMatrix2D((56, 56), angle, scale)
        m[:, 2] += np.asarray(centre, float) - 56
        kps = apply(m, ARCFACE_TEMPLATE) + rng.normal(0, 0.3, (5, 2))
        mt = alignment_transform(kps)
        assert np.linalg.norm(apply(mt, kps) - ARCFACE_TEMPLATE, axis=1).max() < 2
        for k, target in enumerate(ARCFACE_TEMPLATE):
            img = np.zeros((500, 640, 3), np.uint8)
            x, y = kps[k]
            cv2.circle(img, (round(x), round(y)), max(2, round(2 * scale)), (255, 255, 255), -1)
            chip = align(img, kps)
            assert chip.shape == (112, 112, 3) and chip.dtype == np.uint8
            weight = chip[:, :, 0].astype(float)
            ys, xs = np.mgrid[:112, :112]
            assert weight.sum() > 0, k
            found = (xs * weight).sum() / weight.sum(), (ys * weight).sum() / weight.sum()
            assert np.hypot(found[0] - target[0], found[1] - target[1]) < 2, (angle, k)


def test_align_other_sizes():
    kps = ARCFACE_TEMPLATE * 2 + 10
    m = alignment_transform(kps, size=224)
    np.testing.assert_allclose(apply(m, kps), ARCFACE_TEMPLATE * 2, atol=1e-6)
    assert align(np.zeros((300, 300, 3), np.uint8), kps, size=224).shape == (224, 224, 3)
