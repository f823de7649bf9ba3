"""Find faces, align them, and turn them into 128-d embeddings, in batches.

Images are RGB uint8 arrays of shape (H, W, 3). Boxes are (left, top, right, bottom) ints in
image pixels, clipped to the image; right and bottom are the last pixel inside the box, as in
dlib's rectangles, so a box converts to and from dlib without loss.

The embedding is dlib's face-recognition ResNet (dlib_face_recognition_resnet_model_v1.dat).
By default it runs on onnxruntime from a graph rebuilt from the .dat file at start-up (see
dlib_resnet.py): within 1e-6 of dlib's own CPU path on the fixture faces (1e-4 is the bound
the tests hold) and 10-15x faster per core (bench/bench_embed.py). The dlib path stays
selectable as the reference. Models load lazily, once per process.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from typing import NamedTuple

import dlib
import face_recognition_models
import numpy as np

from recognition.core.dlib_resnet import (
    EMBEDDING_SIZE,
    INPUT_SIZE,
    ModelLoadError,
    file_sha256,
    read_dlib_resnet,
    serialized_onnx,
)

Box = tuple[int, int, int, int]

CHIP_SIZE = INPUT_SIZE
CHIP_PADDING = 0.25  # dlib's default; the ResNet was trained on chips cut this way
BACKENDS = ("onnx", "dlib")
DETECTOR_MODELS = ("hog", "cnn")

__all__ = [
    "BACKENDS",
    "CHIP_PADDING",
    "CHIP_SIZE",
    "Box",
    "DETECTOR_MODELS",
    "Detection",
    "EMBEDDING_SIZE",
    "Embedder",
    "ModelLoadError",
    "default_model_path",
    "detect",
    "detect_scored",
    "embed",
    "face_chips",
    "find_faces_in_photo",
    "landmarks",
    "load_detectors",
]


class Detection(NamedTuple):
    """A detected face: its box and the detector's score (HOG margin or CNN confidence)."""

    box: Box
    score: float


# --- model loading (once per process) -------------------------------------------------------


def default_model_path() -> str:
    """Path of dlib_face_recognition_resnet_model_v1.dat from face_recognition_models."""
    return face_recognition_models.face_recognition_model_location()


def _load_dlib(factory, path: str):
    try:
        return factory(path)
    except RuntimeError as exc:
        raise ModelLoadError(f"{path}: dlib could not load it ({exc})") from exc


@functools.cache
def _hog_detector():
    return dlib.get_frontal_face_detector()


@functools.cache
def _cnn_detector():
    path = face_recognition_models.cnn_face_detector_model_location()
    return _load_dlib(dlib.cnn_face_detection_model_v1, path)


# dlib's CNN detector keeps scratch tensors in the object; calls from two threads would clash.
_cnn_lock = threading.Lock()


@functools.cache
def _shape_predictor():
    path = face_recognition_models.pose_predictor_five_point_model_location()
    return _load_dlib(dlib.shape_predictor, path)


@functools.cache
def _dlib_recognizer(path: str):
    return _load_dlib(dlib.face_recognition_model_v1, path)


@functools.cache
def _onnx_session(path: str, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # ENABLE_ALL turns on the blocked (NCHWc) convolution layout, about 30% faster on x86.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    model = serialized_onnx(read_dlib_resnet(path))
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


@functools.cache
def _model_id(path: str) -> str:
    # Both backends share this id: the tests hold onnx within 1e-4 of dlib on real faces.
    return f"dlib-resnet-v1-{file_sha256(path)[:16]}"


# --- detection and alignment ------------------------------------------------------------------


def _check_image(image: np.ndarray, *, grey_ok: bool = False) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise ValueError("image must be a numpy uint8 array")
    if not (image.ndim == 3 and image.shape[2] == 3) and not (grey_ok and image.ndim == 2):
        expected = "RGB of shape (H, W, 3) or grey (H, W)" if grey_ok else "RGB of shape (H, W, 3)"
        raise ValueError(f"image must be {expected}, got {image.shape}")
    return np.ascontiguousarray(image)


def _clip(rect, width: int, height: int) -> Box:
    return (
        min(max(rect.left(), 0), width - 1),
        min(max(rect.top(), 0), height - 1),
        min(max(rect.right(), 0), width - 1),
        min(max(rect.bottom(), 0), height - 1),
    )


def detect_scored(
    image: np.ndarray, *, upsample: int = 0, model: str = "hog", threshold: float = 0.0
) -> list[Detection]:
    """Faces in an RGB image with detector scores, best first; threshold shifts HOG's cut-off.

    HOG also takes a grey image (H, W), such as a video frame's luma plane: it then computes
    one gradient per pixel instead of three.
    """
    image = _check_image(image, grey_ok=model == "hog")
    height, width = image.shape[:2]
    if model == "hog":
        rects, scores, _ = _hog_detector().run(image, upsample, threshold)
        found = zip(rects, scores, strict=True)
    elif model == "cnn":
        with _cnn_lock:
            found = [(d.rect, d.confidence) for d in _cnn_detector()(image, upsample)]
        found = [(rect, score) for rect, score in found if score >= threshold]
    else:
        raise ValueError(f"unknown detector model {model!r}; expected one of {DETECTOR_MODELS}")
    detections = [Detection(_clip(rect, width, height), float(score)) for rect, score in found]
    return sorted(detections, key=lambda d: -d.score)


def detect(image: np.ndarray, *, upsample: int = 0, model: str = "hog") -> list[Box]:
    """Face boxes in an RGB image, best first."""
    return [d.box for d in detect_scored(image, upsample=upsample, model=model)]


# Photos no larger than this are taken to be face crops.
CROP_SIDE = 400
DETECT_SIDE = 1024


def find_faces_in_photo(pixels: np.ndarray) -> list[Box]:
    """Face boxes in a gallery photo, tuned for tight face crops as well as whole photos.

    HOG misses faces that touch the border (tight crops): a replicated margin fixes most, an
    upsampled pass catches small faces, and on crop-sized images a lower HOG threshold takes the
    rest. Measured on the 300 dev gallery faces: one face found in 272 -> 293.
    """
    pixels = _check_image(pixels)
    # HOG's cost grows with the pixels, four times over with the upsampled pass: look at big
    # photos at most DETECT_SIDE wide (faces in them are big enough to be found there).
    shrink = min(1.0, DETECT_SIDE / max(pixels.shape[:2]))
    if shrink < 1.0:
        import cv2

        small = cv2.resize(pixels, None, fx=shrink, fy=shrink, interpolation=cv2.INTER_AREA)
        return [tuple(int(round(v / shrink)) for v in box) for box in find_faces_in_photo(small)]
    margin = max(8, int(0.25 * min(pixels.shape[:2])))
    padded = np.pad(pixels, ((margin, margin), (margin, margin), (0, 0)), mode="edge")
    passes = [(0, 0.0), (1, 0.0)]
    if max(pixels.shape[:2]) <= CROP_SIDE:
        passes.append((1, -0.5))
    found: list[Box] = []
    for upsample, threshold in passes:
        found = [d.box for d in detect_scored(padded, upsample=upsample, threshold=threshold)]
        if found:
            break
    height, width = pixels.shape[:2]
    boxes = []
    for left, top, right, bottom in found:
        box = (
            max(0, left - margin),
            max(0, top - margin),
            min(width, right - margin),
            min(height, bottom - margin),
        )
        if box[2] - box[0] > 4 and box[3] - box[1] > 4:
            boxes.append(box)
    return boxes


def load_detectors() -> None:
    """Load the HOG detector and the landmark model now, e.g. once before forking workers."""
    _hog_detector()
    _shape_predictor()


def _shapes(image: np.ndarray, boxes: Sequence[Box]) -> dlib.full_object_detections:
    predictor = _shape_predictor()
    shapes = dlib.full_object_detections()
    for left, top, right, bottom in boxes:
        shapes.append(
            predictor(image, dlib.rectangle(int(left), int(top), int(right), int(bottom)))
        )
    return shapes


def landmarks(image: np.ndarray, boxes: Sequence[Box]) -> np.ndarray:
    """The 5 dlib landmarks (eye corners and nose base) per box, as (N, 5, 2) int (x, y)."""
    image = _check_image(image)
    points = [[(p.x, p.y) for p in shape.parts()] for shape in _shapes(image, boxes)]
    return np.asarray(points, dtype=np.int64).reshape(len(points), 5, 2)


def face_chips(
    image: np.ndarray,
    boxes: Sequence[Box],
    *,
    size: int = CHIP_SIZE,
    padding: float = CHIP_PADDING,
) -> np.ndarray:
    """Aligned face chips, one per box, as (N, size, size, 3) uint8 (dlib.get_face_chips)."""
    image = _check_image(image)
    if len(boxes) == 0:
        return np.empty((0, size, size, 3), dtype=np.uint8)
    chips = dlib.get_face_chips(image, _shapes(image, boxes), size=size, padding=padding)
    return np.stack([np.asarray(chip, dtype=np.uint8) for chip in chips])


# --- embedding --------------------------------------------------------------------------------


class Embedder:
    """128-d face embeddings from aligned 150 px chips, on onnxruntime (default) or dlib."""

    def __init__(
        self,
        *,
        backend: str = "onnx",
        model_path: str | None = None,
        threads: int = 1,
        batch_size: int = 32,
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; expected one of {BACKENDS}")
        if threads < 1 or batch_size < 1:
            raise ValueError("threads and batch_size must be at least 1")
        self.backend = backend
        self.model_path = model_path or default_model_path()
        self.threads = threads
        # Batches of 32 run as fast per face as larger ones and keep activations near 100 MB.
        self.batch_size = batch_size

    def __repr__(self) -> str:
        return f"Embedder(backend={self.backend!r}, model_path={self.model_path!r})"

    @property
    def model_id(self) -> str:
        """Identifies the embedding model, so embeddings of different models never mix."""
        return _model_id(self.model_path)

    def load(self) -> Embedder:
        """Load the model now rather than on first use (raises ModelLoadError)."""
        if self.backend == "onnx":
            _onnx_session(self.model_path, self.threads)
        else:
            _dlib_recognizer(self.model_path)
        return self

    def embed_chips(self, chips: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """Embeddings of aligned chips (N, 150, 150, 3) uint8, as (N, 128) float32."""
        chips = np.asarray(chips)
        if chips.ndim >= 1 and len(chips) == 0:
            return np.empty((0, EMBEDDING_SIZE), dtype=np.float32)
        expected = (CHIP_SIZE, CHIP_SIZE, 3)
        if chips.dtype != np.uint8 or chips.ndim != 4 or chips.shape[1:] != expected:
            raise ValueError(
                f"chips must be (N, {CHIP_SIZE}, {CHIP_SIZE}, 3) uint8, got {chips.dtype} {chips.shape}"
            )
        chips = np.ascontiguousarray(chips)
        if self.backend == "dlib":
            recognizer = _dlib_recognizer(self.model_path)
            vectors = recognizer.compute_face_descriptor(list(chips))
            return np.asarray([np.asarray(v) for v in vectors], dtype=np.float32)
        session = _onnx_session(self.model_path, self.threads)
        parts = [
            session.run(None, {"chips": chips[start : start + self.batch_size]})[0]
            for start in range(0, len(chips), self.batch_size)
        ]
        return np.concatenate(parts).astype(np.float32, copy=False)


_default_embedder: Embedder | None = None


def embed(image: np.ndarray, boxes: Sequence[Box], embedder: Embedder | None = None) -> np.ndarray:
    """Embeddings (N, 128) float32 of the faces in boxes, via aligned chips."""
    global _default_embedder
    if embedder is None:
        if _default_embedder is None:
            _default_embedder = Embedder()
        embedder = _default_embedder
    return embedder.embed_chips(face_chips(image, boxes))
