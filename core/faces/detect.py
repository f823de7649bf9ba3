"""Face detection with SCRFD-500M: boxes, scores and five keypoints per face.

Django-free; the model file comes from weights.SCRFD (checked by SHA-256).

The model
---------
One input, ``(N, 3, H, W)`` float32, H and W multiples of 32 (every axis is dynamic),
RGB normalised as ``(x - 127.5) / 128``. Nine outputs, three per stride s in (8, 16, 32):

- ``score_s`` ``(N, A, 1)``: face probability (the graph already applies the sigmoid),
- ``bbox_s``  ``(N, A, 4)``: distances left, top, right, bottom from the anchor centre,
  in units of the stride,
- ``kps_s``   ``(N, A, 10)``: five (x, y) keypoint offsets from the anchor centre, in
  units of the stride: left eye, right eye (as seen in the image), nose, left and right
  mouth corner,

where ``A = (H / s) * (W / s) * 2``: the head's NCHW maps are transposed to NHWC and
flattened, so row ``(y * W/s + x) * 2 + a`` is anchor ``a`` (two per place) of grid place
``(x, y)``, whose centre is ``(x * s, y * s)`` input pixels (no half-cell offset).

Typical use::

    det = Detector()
    faces = det.detect(frame_rgb, input_size=(640, 384))
    face = main_face(detect_in_crop(det, crop_rgb), 112, 112)   # an image that is all face
"""

from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np

from core.faces import weights

__all__ = [
    "CROP_INPUT_SIZE",
    "CROP_PAD",
    "DEFAULT_MAX_SIDE",
    "Detector",
    "Face",
    "detect_in_crop",
    "fit_input_size",
    "main_face",
    "window_around",
]

STRIDES = (8, 16, 32)
ANCHORS_PER_PLACE = 2

#: Longest input side used when ``detect`` is given no ``input_size``.
DEFAULT_MAX_SIDE = 640

#: Padding for :func:`detect_in_crop`, as a fraction of the crop's longest side added in black
#: on each side, and the longest input side it detects at (measured on the 600 shared 112x112
#: crops and tighter zooms of them, see REPORT.md).
CROP_PAD = 0.1
CROP_INPUT_SIZE = 192


class Face(NamedTuple):
    """One detected face, in the pixels of the image passed to ``detect``."""

    #: (left, top, right, bottom), floats, clipped to the image.
    box: tuple[float, float, float, float]
    #: Detector confidence in [0, 1].
    score: float
    #: (5, 2) float32 x, y of left eye, right eye, nose, left and right mouth corner. Not
    #: clipped: a keypoint of a face cut by the image edge may lie outside the image.
    keypoints: np.ndarray


def fit_input_size(width: int, height: int, max_side: int = DEFAULT_MAX_SIDE) -> tuple[int, int]:
    """The input size (w, h) for an image: its longest side scaled to ``max_side``, the
    other side in proportion, both rounded up to multiples of 32 (1280x720 -> 640x384)."""
    if width <= 0 or height <= 0:
        raise ValueError("empty image")
    scale = max_side / max(width, height)
    return (_ceil32(width * scale), _ceil32(height * scale))


def window_around(
    box: tuple[int, int, int, int], width: int, height: int, margin: float
) -> tuple[int, int, int, int] | None:
    """The window around a face's box (whole pixels) `margin` of its longer side wider on every
    side, clipped to a `width` x `height` image: (x0, y0, x1, y1); None where under 8 px of it
    are left on the image (a box off it)."""
    left, top, right, bottom = box
    wider = round(margin * max(right - left, bottom - top))
    x0, y0 = max(0, left - wider), max(0, top - wider)
    x1, y1 = min(width, right + wider), min(height, bottom + wider)
    if x1 - x0 < 8 or y1 - y0 < 8:
        return None
    return x0, y0, x1, y1


def _ceil32(x: float) -> int:
    return max(32, int(np.ceil(round(x, 6) / 32.0)) * 32)


def _as_rgb(image: np.ndarray) -> np.ndarray:
    """Return an (H, W, 3) uint8 view of ``image``: grey is replicated, alpha dropped."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise TypeError(f"expected a uint8 image, got {image.dtype}")
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim == 3 and image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    if image.ndim == 3 and image.shape[2] in (3, 4):
        return image[:, :, :3]
    raise ValueError(f"expected an (H, W), (H, W, 3) or (H, W, 4) image, got {image.shape}")


def _nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression; returns the kept indices, best score first."""
    order = np.argsort(-scores, kind="stable")
    x1, y1, x2, y2 = boxes.T
    areas = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]))
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]))
        inter = w * h
        iou = inter / np.maximum(areas[i] + areas[rest] - inter, 1e-9)
        order = rest[iou <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


class Detector:
    """SCRFD face detector on onnxruntime's CPU provider.

    One instance holds one ONNX session and is not meant to be shared between threads that
    call ``detect`` at the same time. ``model_bytes`` defaults to the checked SCRFD file.
    """

    def __init__(self, model_bytes: bytes | None = None, threads: int = 1):
        if model_bytes is None:
            model_bytes = weights.SCRFD.read()
        self._session = weights.cpu_session(model_bytes, threads)
        self._input_name = self._session.get_inputs()[0].name
        names = [o.name for o in self._session.get_outputs()]
        # Look outputs up by name (score_8, bbox_8, kps_8, ...), not by position.
        self._outputs = [f"{kind}_{s}" for s in STRIDES for kind in ("score", "bbox", "kps")]
        missing = set(self._outputs) - set(names)
        if missing:
            raise ValueError(f"not an SCRFD model with keypoints: no outputs {sorted(missing)}")
        self._centres: dict[tuple[int, int, int], np.ndarray] = {}

    # -- pre- and post-processing -------------------------------------------------------

    @staticmethod
    def preprocess(
        image_rgb: np.ndarray, input_size: tuple[int, int]
    ) -> tuple[np.ndarray, tuple[float, float]]:
        """Letterbox ``image_rgb`` into ``input_size`` (w, h): resize keeping the aspect
        ratio so it fits, pad right and bottom with black, normalise to the model's
        (1, 3, h, w) float32 input. Returns the blob and the (x, y) scales applied (input
        px per image px; equal but for rounding the resized sides to whole pixels).
        """
        in_w, in_h = input_size
        if in_w % 32 or in_h % 32 or in_w <= 0 or in_h <= 0:
            raise ValueError(f"input size sides must be positive multiples of 32: {input_size}")
        h, w = image_rgb.shape[:2]
        scale = min(in_w / w, in_h / h)
        new_w = min(in_w, max(1, round(w * scale)))
        new_h = min(in_h, max(1, round(h * scale)))
        resized = image_rgb
        if (new_w, new_h) != (w, h):
            resized = cv2.resize(image_rgb, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
        canvas = np.zeros((in_h, in_w, 3), dtype=np.uint8)
        canvas[:new_h, :new_w] = resized
        blob = canvas.transpose(2, 0, 1)[None].astype(np.float32)
        blob -= 127.5
        blob *= 1.0 / 128.0
        return blob, (new_w / w, new_h / h)

    def _anchor_centres(self, in_h: int, in_w: int, stride: int) -> np.ndarray:
        """(A, 2) float32 anchor centres (x, y) in input pixels, cached per size."""
        key = (in_h, in_w, stride)
        centres = self._centres.get(key)
        if centres is None:
            gh, gw = in_h // stride, in_w // stride
            ys, xs = np.mgrid[:gh, :gw]
            centres = np.stack([xs, ys], axis=-1).reshape(-1, 2).astype(np.float32) * stride
            centres = np.repeat(centres, ANCHORS_PER_PLACE, axis=0)
            self._centres[key] = centres
        return centres

    def _decode(
        self, outputs: list[np.ndarray], in_h: int, in_w: int, threshold: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Decode the nine outputs (batch item 0) into scores (K,), boxes (K, 4) and
        keypoints (K, 5, 2) in input pixels, keeping anchors scoring >= threshold."""
        scores_all, boxes_all, kps_all = [], [], []
        for i, stride in enumerate(STRIDES):
            score, dist, kps = (o[0] for o in outputs[3 * i : 3 * i + 3])
            score = score[:, 0]
            keep = np.nonzero(score >= threshold)[0]
            if keep.size == 0:
                continue
            centres = self._anchor_centres(in_h, in_w, stride)[keep]
            dist = dist[keep] * stride
            boxes = np.concatenate([centres - dist[:, :2], centres + dist[:, 2:]], axis=1)
            points = centres[:, None, :] + kps[keep].reshape(-1, 5, 2) * stride
            scores_all.append(score[keep])
            boxes_all.append(boxes)
            kps_all.append(points)
        if not scores_all:
            return np.zeros(0, np.float32), np.zeros((0, 4), np.float32), np.zeros((0, 5, 2))
        return np.concatenate(scores_all), np.concatenate(boxes_all), np.concatenate(kps_all)

    # -- detection ----------------------------------------------------------------------

    def detect(
        self,
        image_rgb: np.ndarray,
        *,
        input_size: tuple[int, int] | None = None,
        threshold: float = 0.5,
        nms_threshold: float = 0.4,
        max_faces: int | None = None,
        min_size: float = 0.0,
    ) -> list[Face]:
        """Detect faces in an RGB uint8 image (grey (H, W) is accepted and replicated).

        ``input_size`` (w, h), multiples of 32: the image is resized keeping its aspect
        ratio to fit, the rest padded. ``None`` picks :func:`fit_input_size` (longest side
        640, e.g. 640x384 for 16:9). Detections scoring below ``threshold`` are dropped,
        overlapping ones merged by NMS at ``nms_threshold`` IoU; boxes whose shorter side
        is under ``min_size`` image pixels are dropped. Returns at most ``max_faces``
        faces, best score first, in image pixels with boxes clipped to the image.

        A face that fills most of the input is missed: for an image that is all face use
        :func:`detect_in_crop`; to pick the subject of a photo, :func:`main_face`.
        """
        image_rgb = _as_rgb(image_rgb)
        h, w = image_rgb.shape[:2]
        if h == 0 or w == 0:
            return []
        if input_size is None:
            input_size = fit_input_size(w, h)
        blob, (sx, sy) = self.preprocess(image_rgb, input_size)
        in_w, in_h = input_size
        outputs = self._session.run(self._outputs, {self._input_name: blob})
        scores, boxes, kps = self._decode(outputs, in_h, in_w, threshold)
        if scores.size == 0:
            return []
        keep = _nms(boxes, scores, nms_threshold)
        boxes = boxes[keep] / np.array([sx, sy, sx, sy], np.float32)
        kps = kps[keep] / np.array([sx, sy], np.float32)
        scores = scores[keep]
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h)
        faces = []
        for box, score, points in zip(boxes, scores, kps, strict=True):
            if min(box[2] - box[0], box[3] - box[1]) < max(min_size, 1e-6):
                continue  # nothing left after clipping, or too small
            faces.append(
                Face(
                    box=tuple(float(v) for v in box),
                    score=float(score),
                    keypoints=points.astype(np.float32),
                )
            )
            if max_faces is not None and len(faces) >= max_faces:
                break
        return faces


def detect_in_crop(
    detector: Detector,
    crop_rgb: np.ndarray,
    *,
    pad: float = CROP_PAD,
    input_size: int = CROP_INPUT_SIZE,
    threshold: float = 0.5,
    max_faces: int | None = None,
) -> list[Face]:
    """Detect in a photo that is nothing but a face (an aligned 112x112 crop, a tight
    scrape). SCRFD misses a face that is too large in its input (a 112x112 crop sent as
    it is at 640x640 puts a ~500 px face there; found in 5 of the 600 shared crops), so the
    crop is padded with black by ``pad`` times its longest side on every side and the
    padded image is detected with its longest side at ``input_size`` (for the defaults, a
    face box of about 110x150 input px; 599 of 600 crops give exactly one face).
    Black, not replicated edges: edge streaks cost detections on tight crops. Results
    are in the crop's pixels, boxes clipped to the crop.
    """
    crop_rgb = _as_rgb(crop_rgb)
    h, w = crop_rgb.shape[:2]
    if h == 0 or w == 0:
        return []
    p = round(pad * max(h, w))
    padded = cv2.copyMakeBorder(crop_rgb, p, p, p, p, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    faces = detector.detect(
        padded,
        input_size=fit_input_size(w + 2 * p, h + 2 * p, input_size),
        threshold=threshold,
        max_faces=max_faces,
    )
    out = []
    for f in faces:
        left, top, right, bottom = f.box
        box = (
            float(np.clip(left - p, 0, w)),
            float(np.clip(top - p, 0, h)),
            float(np.clip(right - p, 0, w)),
            float(np.clip(bottom - p, 0, h)),
        )
        if box[2] > box[0] and box[3] > box[1]:
            out.append(Face(box=box, score=f.score, keypoints=f.keypoints - np.float32(p)))
    return out


def main_face(faces: list[Face], width: int, height: int) -> Face | None:
    """The face a photo is of: the largest box near the centre, not the best score. Each
    face is valued at its box area less twice its squared distance (box centre to image
    centre); e.g. the shared crop drew-barrymore/038.png holds a man's face too, scoring
    0.72 against Drew Barrymore's 0.61. None when there are no faces."""
    if not faces:
        return None

    def value(f: Face) -> float:
        left, top, right, bottom = f.box
        dx, dy = (left + right - width) / 2, (top + bottom - height) / 2
        return (right - left) * (bottom - top) - 2.0 * (dx * dx + dy * dy)

    return max(faces, key=value)
