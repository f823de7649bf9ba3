"""Name faces from their embeddings, with an "unknown" outcome for people not in the gallery.

A linear SVM proposes the most likely member; the name is given only when its probability is
high enough *and* the face is close enough to one of that member's own gallery faces, or, under
the gated rule, a track (several faces) much closer to that member than to any other
(``margin_gate``: further ahead than any stranger of the gallery's cross-validation came, and no
further from that member than the nearest of those strangers came, ``margin_reach``). The
probability is one of two rules' (``FaceClassifier.rule``): "gated", the SVM calibrated by
cross-validation (``CalibratedClassifierCV``, one sigmoid per member), or "seed", the original
scripts' ``SVC(probability=True)`` (libsvm's pairwise sigmoids, coupled), whose own gates were
0.7 and no distance gate. Which rule and which gates are chosen by cross-validation on the
gallery itself: out-of-fold gallery faces stand for known people seen anew, and
leave-one-member-out folds (train without a member, score that member's faces) stand for
strangers. Nothing here imports Django.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from core.files import atomic_output

FORMAT_NAME = "twicesite-face-classifier"
# 2 added the rule, libsvm's pairwise sigmoids, the operating points and the same-person
# distance; files of version 1 are read as the "gated" rule with only its default point.
# 3 added the margin gate; older files are read without one.
# 4 added the margin gate's reach; version 3 files get it from their gallery when read.
FORMAT_VERSION = 4
READS_VERSIONS = (1, 2, 3, 4)

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


@dataclass(frozen=True)
class OperatingPoint:
    """A pair of gates a curator can choose, with what it cost in the gallery's
    cross-validation: the share of members' faces left unnamed, of strangers named."""

    min_probability: float
    max_distance: float
    cv_known_unknown: float
    cv_strangers_named: float


# Operating points from "name only when sure" (-2) to "name more, risk mistakes" (2); 0 is the
# cross-validated choice.
POINTS = (-2, -1, 0, 1, 2)

# The four axes of #24's comparison with the seed scripts' rule, in words, and which way is
# better: a rule is no worse than the seed's when it is at least as good on each.
SEED_AXES = {
    "known_unknown": ("known faces called unknown", -1),
    "known_wrong": ("known faces named wrong", -1),
    "strangers_unknown": ("strangers kept out", 1),
    "balanced_accuracy": ("balanced accuracy", 1),
}


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
    # "gated" (calibrated probability >= its gate) or "seed" (libsvm's probability > its
    # gate, from pair_a/pair_b: libsvm's probA_/probB_, one per member pair).
    rule: str = "gated"
    pair_a: np.ndarray | None = None
    pair_b: np.ndarray | None = None
    # The gates at each of POINTS, in order (empty for files that predate them).
    points: tuple[OperatingPoint, ...] = ()
    # The embedding's same-person bound: "unsure" is judged against it when the rule has no
    # distance gate of its own.
    same_person_distance: float = DEFAULT_MAX_DISTANCE
    # A track beyond the distance gate is still named when its member is nearer than any other
    # member by at least this much (inf: never). Faces on a stage (turned, blurred, lit) are
    # further from every gallery face than new photos are, so the distance gate leaves them
    # unknown; but they stay nearer their own member than the others, and strangers do not.
    margin_gate: float = math.inf
    # The margin gate names a track no further than this from its member (inf: at any
    # distance): the nearest any stranger of the gallery's cross-validation came to a member's
    # face. Nearer, cross-validation saw no stranger; further, it did, and a lead there is what
    # a look-alike stranger has too: on two of five fresh stage videos a stranger's track 1.20
    # from its look-alike, ahead of the next member by the margin gate, was named (19% and 7%
    # of the strangers' faces), while no member's track that far was.
    margin_reach: float = math.inf

    def at_point(self, point: int) -> FaceClassifier:
        """This classifier with the gates of an operating point (-2 strictest .. 2 loosest)."""
        if point not in POINTS:
            raise ClassifierError(f"operating point must be one of {POINTS}, got {point!r}")
        if not self.points:
            if point == 0:
                return self
            raise ClassifierError("this classifier was saved without operating points")
        p = self.points[POINTS.index(point)]
        t = self.thresholds
        if (p.min_probability, p.max_distance) == (t.min_probability, t.max_distance):
            return self
        return replace(
            self,
            # "Name only when sure" is the gates alone; looser points keep the margin gate.
            margin_gate=self.margin_gate if point > 0 else math.inf,
            thresholds=replace(
                t,
                min_probability=p.min_probability,
                max_distance=p.max_distance,
                source=f"operating point {point:+d}",
            ),
        )

    def with_min_probability(self, value: float) -> FaceClassifier:
        """This classifier naming only faces whose top member's probability reaches `value`
        (the seed's -t); its distance gate stays."""
        value = float(value)
        if not 0.0 <= value <= 1.0:
            raise ClassifierError(f"a probability threshold is between 0 and 1, got {value}")
        if self.mode == "distance":
            raise ClassifierError("a distance-only classifier has no probability to threshold")
        return replace(
            self,
            thresholds=replace(self.thresholds, min_probability=value, source="threshold given"),
        )

    @property
    def look_alike_distance(self) -> float:
        """The distance within which a face counts as this person's: the distance gate, or the
        embedding's same-person bound for a rule without one."""
        gate = self.thresholds.max_distance
        return gate if math.isfinite(gate) else self.same_person_distance

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
            # The margin gate weighs a track's evidence, two samples at least; one face alone
            # is judged by the gates.
            lead = -np.inf
            if len(X) >= 2:
                lead = _lead(np.where(allowed, d_track, np.inf)[None, :], np.array([m]))[0]
            return self._decide(m, float(q[m]), float(d_track[m]), float(lead))
        m = int(np.where(allowed, d_track, np.inf).argmin())
        return self._decide(m, float(self._similarity(d_track)[m]), float(d_track[m]))

    def _decide(
        self, member: int, score: float, distance: float, lead: float = -math.inf
    ) -> Prediction:
        t = self.thresholds
        if self.mode == "distance":
            sure = True
        elif self.rule == "seed":
            sure = score > t.min_probability  # the seed scripts' strict comparison
        else:
            sure = score >= t.min_probability
        by_lead = lead >= self.margin_gate and distance <= self.margin_reach
        named = sure and (distance <= t.max_distance or by_lead)
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
        if self.rule == "seed":
            # sklearn turns the sign of a two-member SVM's score (positive for the second).
            raw = -pair_scores if m == 2 else pair_scores
            return libsvm_probabilities(raw, self.pair_a, self.pair_b, m)
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
    arrays |= {
        "rule": np.array(clf.rule),
        "same_person_distance": np.array(clf.same_person_distance),
        "margin_gate": np.array(clf.margin_gate),
        "margin_reach": np.array(clf.margin_reach),
        "points": np.array(
            [
                [p.min_probability, p.max_distance, p.cv_known_unknown, p.cv_strangers_named]
                for p in clf.points
            ],
            dtype=np.float64,
        ).reshape(-1, 4),
    }
    if clf.mode == "svm":
        arrays |= {"coef": clf.coef, "intercept": clf.intercept}
        if clf.rule == "seed":
            arrays |= {"pair_a": clf.pair_a, "pair_b": clf.pair_b}
        else:
            arrays |= {"sigmoid_a": clf.sigmoid_a, "sigmoid_b": clf.sigmoid_b}
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


def libsvm_probabilities(raw: np.ndarray, a: np.ndarray, b: np.ndarray, m: int) -> np.ndarray:
    """libsvm's probabilities (svm_predict_probability) from its pairwise decision values:
    a Platt sigmoid per pair, coupled by Wu, Lin and Weng's iteration (the copy sklearn ships
    couples two members too); within 1e-15 of ``SVC.predict_proba``."""
    from scipy.special import expit

    r = np.clip(expit(-(raw * a + b)), 1e-7, 1 - 1e-7)  # P(first of the pair)
    n = len(raw)
    R = np.zeros((n, m, m))
    first, second = np.triu_indices(m, 1)
    R[:, first, second] = r
    R[:, second, first] = 1.0 - r
    Rt = R.transpose(0, 2, 1)
    Q = -Rt * R  # Q[t][j] = -r[j][t] r[t][j] off the diagonal
    idx = np.arange(m)
    Q[:, idx, idx] = (Rt**2).sum(2)  # Q[t][t] = sum_j r[j][t]^2
    p = np.full((n, m), 1.0 / m)
    eps = 0.005 / m
    active = np.ones(n, dtype=bool)
    for _ in range(max(100, m)):
        Qp = np.einsum("ntj,nj->nt", Q, p)
        pQp = (p * Qp).sum(1)
        # Each face stops where libsvm's loop stops for it, so the values are libsvm's.
        active &= np.abs(Qp - pQp[:, None]).max(1) >= eps
        if not active.any():
            break
        rows = np.flatnonzero(active)
        pa, Qa, Qpa, pQpa = p[rows], Q[rows], Qp[rows], pQp[rows]
        for t in range(m):
            diff = (pQpa - Qpa[:, t]) / Qa[:, t, t]
            pa[:, t] += diff
            pQpa = (pQpa + diff * (diff * Qa[:, t, t] + 2 * Qpa[:, t])) / (1 + diff) ** 2
            Qpa = (Qpa + diff[:, None] * Qa[:, t, :]) / (1 + diff)[:, None]
            pa /= (1 + diff)[:, None]
        p[rows] = pa
    return p


def _lead(D: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    """How much nearer each row's chosen member is than its nearest other member (negative
    where another is nearer; -inf with no other member)."""
    if D.shape[1] < 2:
        return np.full(len(D), -np.inf)
    rows = np.arange(len(D))
    others = D.copy()
    others[rows, chosen] = np.inf
    return others.min(axis=1) - D[rows, chosen]


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


def nearest_other_member(X: np.ndarray, y: np.ndarray) -> float:
    """The least distance between two faces of different members (inf with one member): the
    nearest a gallery face comes to a member when its own member is left out."""
    nearest = math.inf
    for m in np.unique(y):
        mine, others = X[y == m], X[y != m]
        for i in range(0, len(mine), 1024):  # bounded memory, as _member_distances
            if len(others):
                nearest = min(nearest, float(distance_matrix(mine[i : i + 1024], others).min()))
    return nearest


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
    if version not in READS_VERSIONS:
        raise ValueError(f"format version {version}, this code reads {READS_VERSIONS}")
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
    rule = str(a["rule"]) if "rule" in a else "gated"
    if rule not in ("gated", "seed"):
        raise ValueError(f"rule {rule!r}")
    extra: dict = {"rule": rule}
    if "same_person_distance" in a:
        extra["same_person_distance"] = float(a["same_person_distance"])
    if "margin_gate" in a:
        extra["margin_gate"] = float(a["margin_gate"])
    if "margin_reach" in a:
        extra["margin_reach"] = float(a["margin_reach"])
    elif math.isfinite(extra.get("margin_gate", math.inf)):
        # A version 3 file: the reach its training would have found, from its own gallery.
        extra["margin_reach"] = nearest_other_member(gallery, g_members)
    if "points" in a and len(a["points"]):
        rows = np.asarray(a["points"], dtype=np.float64)
        if rows.shape != (len(POINTS), 4):
            raise ValueError("operating points do not match")
        extra["points"] = tuple(OperatingPoint(*(float(v) for v in r)) for r in rows)
    if "coef" in a:
        sig = ("pair_a", "pair_b") if rule == "seed" else ("sigmoid_a", "sigmoid_b")
        svm = {k: np.asarray(a[k], dtype=np.float64) for k in ("coef", "intercept", *sig)}
        m = len(members)
        pairs = m * (m - 1) // 2
        sigmoids = pairs if rule == "seed" else (1 if m == 2 else m)
        if (
            svm["coef"].shape != (pairs, gallery.shape[1])
            or svm["intercept"].shape != (pairs,)
            or svm[sig[0]].shape != (sigmoids,)
            or svm[sig[1]].shape != (sigmoids,)
        ):
            raise ValueError("SVM arrays do not match the member list")
        extra |= svm
    return FaceClassifier(
        members=members, gallery=gallery, gallery_members=g_members, thresholds=thresholds, **extra
    )
