"""Find faces and turn them into embeddings: SCRFD finds them, ArcFace (or dlib) names them.

Images are RGB uint8 arrays of shape (H, W, 3). Boxes are (left, top, right, bottom) in image
pixels. One embedding model per group, each with its own alignment:

- "arcface": ArcFace MobileFaceNet (w600k_mbf), 512-d, unit length. Chips are 112x112, warped
  from SCRFD's five keypoints onto the ArcFace template. The default for new groups.
- "dlib": dlib's face-recognition ResNet, 128-d, for seed pickles (which hold dlib
  descriptors) and for anyone who needs the Boost licence. Chips are dlib's own: its 5-point
  landmarks found in SCRFD's box, 150 px with 0.25 padding.

Every embedding carries its model's id (`Embedder.model_id`, which includes the file's
digest), so embeddings of two models never meet. Models load lazily, once per process.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import cv2
import dlib
import numpy as np

from core.faces import weights
from core.faces.align import ARCFACE_TEMPLATE, align
from core.faces.detect import Detector, Face, detect_in_crop, fit_input_size, main_face
from core.faces.dlib_resnet import file_sha256, read_dlib_resnet
from core.faces.mmod import FaceCheck
from core.faces.weights import ModelLoadError

Box = tuple[int, int, int, int]

DEFAULT_EMBEDDING = "arcface"
# Faces per onnxruntime call of ArcFace. Per-face time is flat from 1 to about 4 faces and
# grows beyond (about +10% at 8, +35% at 32): the 56x56 activations (1.6 MB per face) fall out
# of L2 and then L3, and the PRelu passes and the 1x1 convolutions (which re-read their input
# once per 16 output channels) become memory-bound. Two faces per call halve the cost of
# streaming the 6.4 MB Gemm weight per face while keeping the activations small.
ARCFACE_BATCH = 2

__all__ = [
    "DEFAULT_EMBEDDING",
    "EMBEDDINGS",
    "ArcFaceEmbedder",
    "Box",
    "DlibEmbedder",
    "Face",
    "ModelLoadError",
    "detector",
    "embedder",
    "face_check",
    "embedder_for_model_id",
    "find_faces_in_photo",
]

# Photos no larger than this are taken to be face crops (a tight scrape, an aligned crop).
CROP_SIDE = 400


@functools.cache
def detector(threads: int = 1) -> Detector:
    """The process's SCRFD detector (ModelLoadError if its file is missing or altered)."""
    return Detector(weights.SCRFD.read(), threads=threads)


@functools.cache
def face_check() -> FaceCheck:
    """The process's second opinion on weak detections, dlib's MMOD detector (ModelLoadError
    if its file is missing or altered); loaded on first use, which most videos never make."""
    return FaceCheck()


def find_faces_in_photo(pixels: np.ndarray) -> list[Face]:
    """Faces in a gallery photo, the photo's subject first: tight face crops are padded
    before detecting (SCRFD misses a face that fills its input), whole photos are detected
    at a longest side of 640 (1280 for big photos, whose faces can be small)."""
    pixels = _check_image(pixels)
    height, width = pixels.shape[:2]
    det = detector()
    if max(height, width) <= CROP_SIDE:
        found = detect_in_crop(det, pixels)
    else:
        side = 640 if max(height, width) <= 1280 else 1280
        found = det.detect(pixels, input_size=fit_input_size(width, height, side))
    subject = main_face(found, width, height)
    return sorted(found, key=lambda f: f is not subject)


def box_of(face: Face) -> Box:
    """A detection's box as whole pixels."""
    return tuple(int(round(v)) for v in face.box)


def _check_image(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise ValueError("image must be a numpy uint8 array")
    if not (image.ndim == 3 and image.shape[2] == 3):
        raise ValueError(f"image must be RGB of shape (H, W, 3), got {image.shape}")
    return np.ascontiguousarray(image)


def keypoints_in_box(image: np.ndarray, box: Sequence[float]) -> np.ndarray:
    """SCRFD's five keypoints for the face in `box` (detected again around it), or the
    template's points laid over the box when no face is found there (a curator chose it)."""
    left, top, right, bottom = (float(v) for v in box)
    right, bottom = max(right, left + 1), max(bottom, top + 1)
    side = max(right - left, bottom - top)
    height, width = image.shape[:2]
    margin = 0.35 * side
    x0, y0 = int(max(0, left - margin)), int(max(0, top - margin))
    x1, y1 = int(min(width, right + margin)), int(min(height, bottom + margin))
    if x1 - x0 >= 8 and y1 - y0 >= 8:
        found = detect_in_crop(detector(), image[y0:y1, x0:x1])
        if found:
            cx, cy = (left + right) / 2 - x0, (top + bottom) / 2 - y0
            best = min(
                found,
                key=lambda f: (
                    (f.box[0] + f.box[2] - 2 * cx) ** 2 + (f.box[1] + f.box[3] - 2 * cy) ** 2
                ),
            )
            return best.keypoints + np.array([x0, y0], np.float32)
    # On the 600 shared ArcFace-aligned crops SCRFD's box is on average (16.8, 9.2) to
    # (94.3, 111.8): lay the template over the box in that proportion.
    sx, sy = (right - left) / (94.3 - 16.8), (bottom - top) / (111.8 - 9.2)
    return ((ARCFACE_TEMPLATE - [16.8, 9.2]) * [sx, sy] + [left, top]).astype(np.float32)


# --- embedders ------------------------------------------------------------------------------


class ArcFaceEmbedder:
    """512-d ArcFace embeddings (unit length) of 112x112 chips aligned from five keypoints."""

    name = "arcface"
    label = "ArcFace MobileFaceNet (w600k, 512-d)"
    dimensions = 512
    chip_size = 112
    # Distances are euclidean between unit vectors: d = sqrt(2 - 2 cos). Measured on the
    # shared gallery (first 30 faces of 8 people): two photos of one person are closer than
    # cos 0.2 (d 1.265) in 97.5% of pairs, two people in 0.3% of pairs.
    same_person_distance = 1.265
    # The same photo resized and re-encoded as JPEG embeds at most 0.34 from itself (95% within
    # 0.30); the nearest other photo of the same person is 0.354 away at the least.
    duplicate_distance = 0.30

    def __init__(self, *, threads: int = 1, batch_size: int = ARCFACE_BATCH) -> None:
        self.threads = threads
        self.batch_size = batch_size

    def __repr__(self) -> str:
        return f"ArcFaceEmbedder(threads={self.threads})"

    @property
    def model_id(self) -> str:
        return f"arcface-w600k-mbf-{weights.ARCFACE.sha256[:16]}"

    def load(self) -> ArcFaceEmbedder:
        _arcface_session(self.threads)
        return self

    def chips(
        self, image: np.ndarray, boxes: Sequence[Sequence[float]], keypoints=None
    ) -> np.ndarray:
        """Aligned chips (N, 112, 112, 3): from the detector's keypoints when given, else
        found again in each box."""
        image = _check_image(image)
        if keypoints is None:
            keypoints = [keypoints_in_box(image, box) for box in boxes]
        if len(keypoints) == 0:
            return np.empty((0, 112, 112, 3), np.uint8)
        return np.stack([align(image, points) for points in keypoints])

    def embed_chips(self, chips: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        chips = _check_chips(chips, self.chip_size, self.dimensions)
        if len(chips) == 0:
            return np.empty((0, self.dimensions), np.float32)
        session = _arcface_session(self.threads)
        name = session.get_inputs()[0].name
        out = np.empty((len(chips), self.dimensions), dtype=np.float32)
        for start in range(0, len(chips), self.batch_size):
            rgb = chips[start : start + self.batch_size].transpose(0, 3, 1, 2)  # NHWC -> NCHW
            batch = np.empty(rgb.shape, dtype=np.float32)
            np.subtract(rgb, np.float32(127.5), out=batch, dtype=np.float32)  # (x - 127.5) / 127.5
            batch /= np.float32(127.5)
            out[start : start + len(batch)] = session.run(None, {name: batch})[0]
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


@functools.cache
def _arcface_session(threads: int):
    # The file as published, checked by its digest, then rewritten for speed (exactly).
    # onnx (1.5 s to import) is needed only to rewrite the graph, once per process, here.
    from core.faces import arcface_graph

    return arcface_graph.session(weights.ARCFACE.read(), threads)


class DlibEmbedder:
    """128-d dlib ResNet embeddings of dlib's own 150 px chips, on onnxruntime (default; a
    graph rebuilt from the .dat file, within 1e-6 of dlib) or dlib itself (the reference)."""

    name = "dlib"
    label = "dlib ResNet (128-d)"
    dimensions = 128
    chip_size = 150
    chip_padding = 0.25  # dlib's default; the ResNet was trained on chips cut this way
    # dlib's usual bound: one person's faces embed within 0.6 of each other.
    same_person_distance = 0.6
    # Embeddings of one photo re-encoded or resized differ by ~0.05; two photos by 0.3+.
    duplicate_distance = 0.15

    def __init__(
        self,
        *,
        backend: str = "onnx",
        model_path: str | None = None,
        threads: int = 1,
        batch_size: int = 32,
    ) -> None:
        if backend not in ("onnx", "dlib"):
            raise ValueError(f"unknown backend {backend!r}; expected 'onnx' or 'dlib'")
        if threads < 1 or batch_size < 1:
            raise ValueError("threads and batch_size must be at least 1")
        self.backend = backend
        if model_path is None:
            import face_recognition_models  # pkg_resources: only when dlib's model is wanted

            model_path = face_recognition_models.face_recognition_model_location()
        self.model_path = model_path
        self.threads = threads
        # Batches of 32 run as fast per face as larger ones and keep activations near 100 MB.
        self.batch_size = batch_size

    def __repr__(self) -> str:
        return f"DlibEmbedder(backend={self.backend!r}, model_path={self.model_path!r})"

    @property
    def model_id(self) -> str:
        # Both backends share this id: the tests hold onnx within 1e-4 of dlib on real faces.
        return _dlib_model_id(self.model_path)

    def load(self) -> DlibEmbedder:
        if self.backend == "onnx":
            _dlib_onnx_session(self.model_path, self.threads)
        else:
            _dlib_recognizer(self.model_path)
        _shape_predictor()
        return self

    def chips(
        self, image: np.ndarray, boxes: Sequence[Sequence[float]], keypoints=None
    ) -> np.ndarray:
        """dlib's aligned chips (N, 150, 150, 3), from its 5-point landmarks in each box
        (SCRFD's boxes are first made the square boxes dlib's landmark model was trained on)."""
        return self.chips_in_dlib_boxes(image, [hog_like_box(box) for box in boxes])

    def chips_in_dlib_boxes(self, image: np.ndarray, boxes: Sequence[Sequence[float]]):
        """Chips from boxes of dlib's own detectors (as the seed scripts cut them)."""
        image = _check_image(image)
        size = self.chip_size
        if len(boxes) == 0:
            return np.empty((0, size, size, 3), dtype=np.uint8)
        chips = dlib.get_face_chips(
            image, _shapes(image, boxes), size=size, padding=self.chip_padding
        )
        return np.stack([np.asarray(chip, dtype=np.uint8) for chip in chips])

    def embed_chips(self, chips: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        chips = _check_chips(chips, self.chip_size, self.dimensions)
        if len(chips) == 0:
            return np.empty((0, self.dimensions), dtype=np.float32)
        if self.backend == "dlib":
            recognizer = _dlib_recognizer(self.model_path)
            vectors = recognizer.compute_face_descriptor(list(chips))
            return np.asarray([np.asarray(v) for v in vectors], dtype=np.float32)
        session = _dlib_onnx_session(self.model_path, self.threads)
        parts = [
            session.run(None, {"chips": chips[start : start + self.batch_size]})[0]
            for start in range(0, len(chips), self.batch_size)
        ]
        return np.concatenate(parts).astype(np.float32, copy=False)


def hog_like_box(box: Sequence[float]) -> tuple[float, float, float, float]:
    """The square box dlib's HOG detector would give a face SCRFD boxed (forehead to chin,
    taller than wide): on 271 shared faces both found, HOG's side is 1.04 times SCRFD's width
    and its centre 0.085 of SCRFD's height lower."""
    left, top, right, bottom = (float(v) for v in box)
    side = 1.04 * (right - left)
    cx, cy = (left + right) / 2, (top + bottom) / 2 + 0.085 * (bottom - top)
    return (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)


def _check_chips(chips, size: int, dimensions: int) -> np.ndarray:
    chips = np.asarray(chips)
    if chips.ndim >= 1 and len(chips) == 0:
        return chips
    if chips.dtype != np.uint8 or chips.ndim != 4 or chips.shape[1:] != (size, size, 3):
        raise ValueError(
            f"chips must be (N, {size}, {size}, 3) uint8, got {chips.dtype} {chips.shape}"
        )
    return np.ascontiguousarray(chips)


def _load_dlib(factory, path: str):
    try:
        return factory(path)
    except RuntimeError as exc:
        raise ModelLoadError(f"{path}: dlib could not load it ({exc})") from exc


@functools.cache
def _shape_predictor():
    import face_recognition_models

    path = face_recognition_models.pose_predictor_five_point_model_location()
    return _load_dlib(dlib.shape_predictor, path)


@functools.cache
def _dlib_recognizer(path: str):
    return _load_dlib(dlib.face_recognition_model_v1, path)


@functools.cache
def _dlib_onnx_session(path: str, threads: int):
    from core.faces.dlib_onnx import serialized_onnx  # onnx: only when the model is built

    return weights.cpu_session(serialized_onnx(read_dlib_resnet(path)), threads)


@functools.cache
def _dlib_model_id(path: str) -> str:
    return f"dlib-resnet-v1-{file_sha256(path)[:16]}"


def _shapes(image: np.ndarray, boxes: Sequence[Sequence[float]]) -> dlib.full_object_detections:
    predictor = _shape_predictor()
    shapes = dlib.full_object_detections()
    for left, top, right, bottom in boxes:
        rect = dlib.rectangle(int(left), int(top), int(right), int(bottom))
        shapes.append(predictor(image, rect))
    return shapes


EMBEDDINGS: dict[str, type] = {"arcface": ArcFaceEmbedder, "dlib": DlibEmbedder}


@functools.cache
def embedder(name: str = DEFAULT_EMBEDDING):
    """The process's embedder for model `name` ("arcface" or "dlib")."""
    try:
        return EMBEDDINGS[name]()
    except KeyError:
        known = ", ".join(EMBEDDINGS)
        raise ValueError(f"unknown embedding model {name!r}; one of {known}") from None


def embedder_for_model_id(model_id: str):
    """The embedder whose embeddings carry this id, or ValueError (an unknown or old model)."""
    for name in EMBEDDINGS:
        candidate = embedder(name)
        if candidate.model_id == model_id:
            return candidate
    raise ValueError(f"no embedding model here makes embeddings of {model_id!r}")


def resize_for_detection(image: np.ndarray, width: int) -> np.ndarray:
    """An RGB frame scaled down to `width` (never up), as the detector would see it."""
    if image.shape[1] <= width:
        return image
    height = round(image.shape[0] * width / image.shape[1])
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
