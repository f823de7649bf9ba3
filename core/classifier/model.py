"""Name faces from their embeddings, with an "unknown" outcome for people not in the gallery.

A linear SVM, calibrated by cross-validation (``CalibratedClassifierCV``), proposes the most
likely member; the name is given only when that probability is high enough *and* the face is
close enough to one of that member's own gallery faces. Both thresholds are chosen by
cross-validation on the gallery itself: out-of-fold gallery faces stand for known people seen
anew, and leave-one-member-out folds (train without a member, score that member's faces)
stand for strangers. Nothing here imports Django.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.files import atomic_output

FORMAT_NAME = "twicesite-face-classifier"
FORMAT_VERSION = 1

# Share of known faces that cross-validation may leave unknown at no cost while it tightens
# the gates against strangers (the product target: at most 2% of known faces unnamed).
DEFAULT_MAX_KNOWN_UNKNOWN = 0.01

# Used only when cross-validation cannot choose (one member, or a member with under 3 faces),
# for dlib's embedding: cross-validation on the 8-person development gallery picked 0.55-0.58;
# dlib's usual 0.6 let look-alike strangers through there. Other embeddings pass their own.
DEFAULT_MAX_DISTANCE = 0.55


class ClassifierError(ValueError):
    """Training data or a classifier file that cannot be used, with the reason."""


@dataclass(frozen=True)
class Prediction:
    """One decision: ``label`` is a member, or None for unknown."""

    label: str | None
    confidence: float
    candidate: str  # the most likely member, named or not (for review pages)
    distance: float  # euclidean distance to the candidate's nearest gallery face


@dataclass(frozen=True)
class Thresholds:
    """The gates a face must pass to be named, and where they came from."""

    min_probability: float
    max_distance: float
    source: str  # "cross-validation" or "default"
    cv_known_unknown: float | None = None
    cv_named_wrong: float | None = None
    cv_strangers_named: float | None = None


@dataclass(eq=False)
class FaceClassifier:
    """Members, their gallery embeddings, the calibrated linear SVM (if any) and thresholds."""

    members: tuple[str, ...]
    gallery: np.ndarray  # (G, D), grouped by member in ``members`` order
    gallery_members: np.ndarray  # (G,) index into ``members``, non-decreasing
    thresholds: Thresholds
    # Linear SVM weights, one row per member pair (i<j), and the Platt sigmoids (one per
    # member, one in all for two members); None in distance mode. Arrays, so a saved file
    # needs no pickle.
    coef: np.ndarray | None = None
    intercept: np.ndarray | None = None
    sigmoid_a: np.ndarray | None = None
    sigmoid_b: np.ndarray | None = None

    @property
    def mode(self) -> str:
        """'svm' (calibrated SVM plus distance gate) or 'distance' (nearest gallery face only)."""
        return "distance" if self.coef is None else "svm"

    @property
    def dimensions(self) -> int:
        """Length of the embeddings this classifier takes."""
        return int(self.gallery.shape[1])

    def distances(self, X: np.ndarray) -> np.ndarray:
        """(N, M) distance from each embedding to each member's nearest gallery face."""
        X = self._check_input(X)
        return _member_distances(X, self.gallery, self.gallery_members, len(self.members))

    def scores(self, X: np.ndarray) -> np.ndarray:
        """(N, M) per-member scores: calibrated probabilities, or similarities in distance mode."""
        X = self._check_input(X)
        if self.mode == "svm":
            return self._probabilities(X)
        return self._similarity(self.distances(X))

    def predict(self, X: np.ndarray) -> list[Prediction]:
        """Name each embedding, or say unknown (label None)."""
        X = self._check_input(X)
        if len(X) == 0:
            return []
        D = _member_distances(X, self.gallery, self.gallery_members, len(self.members))
        if self.mode == "svm":
            S = self._probabilities(X)
            best = S.argmax(axis=1)
        else:
            S = self._similarity(D)
            best = D.argmin(axis=1)
        rows = np.arange(len(X))
        return [
            self._decide(int(m), float(s), float(d))
            for m, s, d in zip(best, S[rows, best], D[rows, best], strict=True)
        ]

    def predict_track(self, X_samples: np.ndarray, excluded: Collection[str] = ()) -> Prediction:
        """Name one face track from several embeddings of it; never one of `excluded` (members
        a person said it is not): the next best then, or unknown."""
        X = self._check_input(X_samples)
        if len(X) == 0:
            raise ClassifierError("a track needs at least one embedding")
        allowed = np.array([member not in excluded for member in self.members])
        if not allowed.any():
            return Prediction(label=None, confidence=0.0, candidate="", distance=float("inf"))
        D = _member_distances(X, self.gallery, self.gallery_members, len(self.members))
        # The median ignores a stray bad frame (blur, occlusion) that the mean would not.
        d_track = np.median(D, axis=0)
        if self.mode == "svm":
            # Mean probability, not mean log-probability: one blurred or badly cropped frame
            # with a near-zero probability would otherwise veto the whole track. It also keeps
            # the per-face calibration, so the same thresholds apply.
            q = self._probabilities(X).mean(axis=0)
            m = int(np.where(allowed, q, -np.inf).argmax())
            return self._decide(m, float(q[m]), float(d_track[m]))
        m = int(np.where(allowed, d_track, np.inf).argmin())
        return self._decide(m, float(self._similarity(d_track)[m]), float(d_track[m]))

    def _decide(self, member: int, score: float, distance: float) -> Prediction:
        t = self.thresholds
        named = distance <= t.max_distance and (
            self.mode == "distance" or score >= t.min_probability
        )
        name = self.members[member]
        return Prediction(
            label=name if named else None, confidence=score, candidate=name, distance=distance
        )

    def _probabilities(self, X: np.ndarray) -> np.ndarray:
        from scipy.special import expit  # imported on first use: not at Django's start

        # Same arithmetic as sklearn's SVC.decision_function (one-vs-one scores folded into
        # one-vs-rest) and _CalibratedClassifier.predict_proba with sigmoid calibrators, so a
        # loaded file predicts exactly what was fitted.
        m = len(self.members)
        pair_scores = X @ self.coef.T + self.intercept  # (N, m(m-1)/2), pairs (i<j) in order
        if m == 2:
            p1 = expit(-(self.sigmoid_a[0] * pair_scores[:, 0] + self.sigmoid_b[0]))
            return np.column_stack([1.0 - p1, p1])
        s = expit(-(self.sigmoid_a * _one_vs_rest(pair_scores, m) + self.sigmoid_b))
        total = s.sum(axis=1, keepdims=True)
        uniform = np.full_like(s, 1.0 / m)
        return np.divide(s, total, out=uniform, where=total != 0)

    def _similarity(self, D: np.ndarray) -> np.ndarray:
        # 1 at distance 0, 0.5 exactly at the distance threshold, falling off like a Gaussian.
        return np.exp(-math.log(2.0) * (D / self.thresholds.max_distance) ** 2)

    def _check_input(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim == 1 and X.shape[0] == self.dimensions:
            X = X[None, :]
        if X.ndim != 2 or (len(X) and X.shape[1] != self.dimensions):
            raise ClassifierError(
                f"embeddings must have shape (N, {self.dimensions}), got {X.shape}"
            )
        _check_finite(X)
        return X


def save(clf: FaceClassifier, path: str | os.PathLike) -> str:
    """Write the classifier to ``path`` (an .npz, no pickle); return the file's SHA-256."""
    path = Path(path)
    t = clf.thresholds
    arrays = {
        "format_name": np.array(FORMAT_NAME),
        "format_version": np.array(FORMAT_VERSION),
        "members": np.array(clf.members, dtype=str),
        "gallery": clf.gallery,
        "gallery_members": clf.gallery_members.astype(np.int64),
        "threshold_values": np.array([t.min_probability, t.max_distance]),
        "threshold_source": np.array(t.source),
        "threshold_cv": np.array(
            [
                np.nan if v is None else v
                for v in (t.cv_known_unknown, t.cv_named_wrong, t.cv_strangers_named)
            ]
        ),
    }
    if clf.mode == "svm":
        arrays |= {
            "coef": clf.coef,
            "intercept": clf.intercept,
            "sigmoid_a": clf.sigmoid_a,
            "sigmoid_b": clf.sigmoid_b,
        }
    # Written beside the target and moved into place, so a crash never leaves half a file.
    with atomic_output(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        digest = _sha256(tmp)
    return digest


def load(path: str | os.PathLike, *, sha256: str | None = None) -> FaceClassifier:
    """Read a file written by save(); check its SHA-256 first when one is given."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ClassifierError(f"cannot read classifier file {path}: {e}") from e
    return loads(data, sha256=sha256, name=str(path))


def loads(data: bytes, *, sha256: str | None = None, name: str = "") -> FaceClassifier:
    """A classifier from the bytes of a file written by save(), checked like load()."""
    path = name or "(bytes)"
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256.lower():
        raise ClassifierError(f"classifier file {path} does not match its SHA-256")
    try:
        # The zip's CRC-32s catch truncation and flipped bytes; allow_pickle=False means a
        # hostile file can at most fail to load.
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            arrays = {key: z[key] for key in z.files}
    except Exception as e:  # damaged bytes fail inside zipfile and numpy in many ways
        raise ClassifierError(f"classifier file {path} is corrupt or truncated: {e}") from e
    try:
        return _from_arrays(arrays)
    except (KeyError, ValueError, TypeError, IndexError) as e:
        raise ClassifierError(f"classifier file {path} is not a valid classifier: {e}") from e


# --- shared with training ---------------------------------------------------------------------


def _one_vs_rest(pair_scores: np.ndarray, m: int) -> np.ndarray:
    """Fold one-vs-one SVM scores into one score per member: votes plus bounded confidence."""
    first, second = np.triu_indices(m, 1)
    to_first = np.eye(m)[first]  # (pairs, m)
    to_second = np.eye(m)[second]
    wins = (pair_scores >= 0).astype(np.float64)  # a positive score is a vote for `first`
    votes = wins @ to_first + (1.0 - wins) @ to_second
    confidence = pair_scores @ (to_first - to_second)
    # Squashed into (-1/3, 1/3) so confidence only breaks ties between vote counts.
    return votes + confidence / (3.0 * (np.abs(confidence) + 1.0))


def _check_finite(X: np.ndarray) -> None:
    bad = ~np.isfinite(X).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)[:5].tolist()
        raise ClassifierError(f"embeddings contain NaN or infinite values (rows {rows})")


def check_training(X: np.ndarray, labels: Sequence[str]) -> tuple[np.ndarray, np.ndarray, tuple]:
    labels = list(labels)
    if not all(isinstance(s, str) and s for s in labels):
        raise ClassifierError("every label must be a non-empty string")
    labels = [str(s) for s in labels]  # plain str, not numpy's, so metrics stay JSON-ready
    X = np.asarray(X, dtype=np.float64)
    if X.size == 0 and not labels:
        raise ClassifierError("no training faces")
    if X.ndim != 2:
        raise ClassifierError(f"embeddings must be a 2-D array (N, D), got shape {X.shape}")
    if len(X) != len(labels):
        raise ClassifierError(f"{len(X)} embeddings but {len(labels)} labels")
    if len(X) == 0:
        raise ClassifierError("no training faces")
    _check_finite(X)
    members = tuple(sorted(set(labels)))
    index = {m: i for i, m in enumerate(members)}
    y = np.array([index[s] for s in labels], dtype=np.int64)
    return X, y, members


def sorted_gallery(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(y, kind="stable")
    return X[order].copy(), y[order].copy()


def _member_distances(X: np.ndarray, G: np.ndarray, g_members: np.ndarray, n: int) -> np.ndarray:
    starts = np.searchsorted(g_members, np.arange(n))
    out = np.zeros((len(X), n))
    # Blocks of rows bound memory at 1024 x G distances however many faces come in.
    for i in range(0, len(X), 1024):
        d = distance_matrix(X[i : i + 1024], G)
        out[i : i + 1024] = np.minimum.reduceat(d, starts, axis=1)
    return out


def distance_matrix(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    # |a-b|^2 = |a|^2 + |b|^2 - 2a.b: one matrix product instead of |A|*|B| subtractions.
    sq = (A * A).sum(1)[:, None] + (B * B).sum(1)[None, :] - 2.0 * A @ B.T
    return np.sqrt(np.maximum(sq, 0.0))


# --- file format -----------------------------------------------------------------------------


def _sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _from_arrays(a: dict) -> FaceClassifier:
    if str(a["format_name"]) != FORMAT_NAME:
        raise ValueError(f"format {str(a['format_name'])!r}")
    version = int(a["format_version"])
    if version != FORMAT_VERSION:
        raise ValueError(f"format version {version}, this code reads {FORMAT_VERSION}")
    members = tuple(str(s) for s in a["members"])
    gallery = np.asarray(a["gallery"], dtype=np.float64)
    g_members = np.asarray(a["gallery_members"], dtype=np.int64)
    tv, cv = a["threshold_values"], a["threshold_cv"]
    cv_values = [None if np.isnan(v) else float(v) for v in cv]
    thresholds = Thresholds(float(tv[0]), float(tv[1]), str(a["threshold_source"]), *cv_values)
    if gallery.ndim != 2 or len(gallery) != len(g_members) or not len(members):
        raise ValueError("gallery arrays do not match")
    if np.any(np.diff(g_members) < 0) or set(np.unique(g_members)) != set(range(len(members))):
        raise ValueError("gallery member indices do not match the member list")
    svm = {}
    if "coef" in a:
        svm = {
            k: np.asarray(a[k], dtype=np.float64)
            for k in ("coef", "intercept", "sigmoid_a", "sigmoid_b")
        }
        m = len(members)
        pairs, sigmoids = m * (m - 1) // 2, 1 if m == 2 else m
        if (
            svm["coef"].shape != (pairs, gallery.shape[1])
            or svm["intercept"].shape != (pairs,)
            or svm["sigmoid_a"].shape != (sigmoids,)
            or svm["sigmoid_b"].shape != (sigmoids,)
        ):
            raise ValueError("SVM arrays do not match the member list")
    return FaceClassifier(
        members=members, gallery=gallery, gallery_members=g_members, thresholds=thresholds, **svm
    )
