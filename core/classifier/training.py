"""Train a classifier on gallery embeddings: the calibrated SVM, and open-set gates chosen by
cross-validation on the gallery alone (out-of-fold faces stand for known people seen anew,
leave-one-member-out folds for strangers)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.special import expit
from sklearn.calibration import CalibratedClassifierCV
from sklearn.model_selection import StratifiedKFold
from sklearn.svm import SVC
from threadpoolctl import threadpool_limits

from core.classifier.model import (
    DEFAULT_MAX_DISTANCE,
    DEFAULT_MAX_KNOWN_UNKNOWN,
    ClassifierError,
    FaceClassifier,
    Thresholds,
    check_training,
    distance_matrix,
    sorted_gallery,
)


def fit(
    X: np.ndarray,
    labels: Sequence[str],
    *,
    folds: int = 5,
    random_state: int = 0,
    max_known_unknown: float = DEFAULT_MAX_KNOWN_UNKNOWN,
    default_max_distance: float = DEFAULT_MAX_DISTANCE,
) -> FaceClassifier:
    """Train on gallery embeddings and their member labels; choose thresholds by CV.

    `default_max_distance` is the distance gate used where cross-validation cannot choose
    one: the embedding's own same-person bound."""
    # Training is hundreds of tiny solves (2-parameter sigmoid fits); threaded BLAS only
    # adds hand-offs, which cost 4x the time on a busy 2-core machine.
    with threadpool_limits(limits=1, user_api="blas"):
        return fit_unlimited(
            X,
            labels,
            folds=folds,
            random_state=random_state,
            max_known_unknown=max_known_unknown,
            default_max_distance=default_max_distance,
        )


def fit_unlimited(
    X: np.ndarray,
    labels: Sequence[str],
    *,
    folds: int,
    random_state: int,
    max_known_unknown: float,
    default_max_distance: float = DEFAULT_MAX_DISTANCE,
) -> FaceClassifier:
    X, y, members = check_training(X, labels)
    if folds < 2:
        raise ClassifierError("folds must be at least 2")
    counts = np.bincount(y, minlength=len(members))
    # CalibratedClassifierCV needs every member in every fold (two faces at least), and the
    # SVM needs two members; below that only nearest-face verification is possible.
    if len(members) < 2 or counts.min() < 2:
        return _fit_distance_only(
            X,
            y,
            members,
            max_known_unknown=max_known_unknown,
            default_max_distance=default_max_distance,
        )
    clf = _fit_svm(X, y, members, folds=folds, random_state=random_state)
    clf.thresholds = Thresholds(0.0, default_max_distance, "default")
    # Nested folds need two faces per member in every training split: three faces each.
    if counts.min() < 3:
        return clf
    gen, imp = _svm_cv_features(X, y, members, folds=folds, random_state=random_state)
    t = _choose_thresholds(*gen, *imp, budget=max_known_unknown)
    clf.thresholds = t
    return clf


def _fit_svm(
    X: np.ndarray, y: np.ndarray, members: tuple, *, folds: int, random_state: int
) -> FaceClassifier:
    k = int(min(folds, np.bincount(y).min()))
    cal = CalibratedClassifierCV(
        SVC(kernel="linear", C=1.0),
        method="sigmoid",
        cv=StratifiedKFold(k, shuffle=True, random_state=random_state),
        # One SVM on all faces, sigmoids fitted on its out-of-fold scores: k times cheaper
        # to predict than the ensemble, and what the sklearn 1.9 deprecation note suggests.
        ensemble=False,
    )
    cal.fit(X, y)
    pair = cal.calibrated_classifiers_[0]
    svm = pair.estimator
    gallery, g_members = sorted_gallery(X, y)
    return FaceClassifier(
        members=members,
        gallery=gallery,
        gallery_members=g_members,
        thresholds=Thresholds(0.0, DEFAULT_MAX_DISTANCE, "default"),
        coef=np.asarray(svm.coef_, dtype=np.float64).copy(),
        intercept=np.asarray(svm.intercept_, dtype=np.float64).copy(),
        sigmoid_a=np.array([c.a_ for c in pair.calibrators], dtype=np.float64),
        sigmoid_b=np.array([c.b_ for c in pair.calibrators], dtype=np.float64),
    )


def _fit_distance_only(
    X: np.ndarray,
    y: np.ndarray,
    members: tuple,
    *,
    max_known_unknown: float,
    default_max_distance: float = DEFAULT_MAX_DISTANCE,
) -> FaceClassifier:
    gallery, g_members = sorted_gallery(X, y)
    thresholds = Thresholds(0.0, default_max_distance, "default")
    n = len(members)
    # Known faces: leave-one-out nearest face (drop the face itself). Strangers: each
    # member's faces against the others. Needs two members and a member with two faces.
    has_pair = np.bincount(y, minlength=n)[y] >= 2
    if n >= 2 and has_pair.any():
        full = distance_matrix(X, X)
        np.fill_diagonal(full, np.inf)
        D_loo = np.stack([full[:, y == m].min(1) for m in range(n)], axis=1)
        cand = D_loo.argmin(1)
        g = has_pair
        own = np.arange(n)[None, :] == y[:, None]
        t = _choose_thresholds(
            np.ones(g.sum()),
            D_loo[g, cand[g]],
            cand[g] == y[g],
            np.ones(len(X)),
            np.where(own, np.inf, D_loo).min(1),
            budget=max_known_unknown,
        )
        thresholds = Thresholds(
            0.0,
            t.max_distance,
            t.source,
            t.cv_known_unknown,
            t.cv_named_wrong,
            t.cv_strangers_named,
        )
    return FaceClassifier(
        members=members, gallery=gallery, gallery_members=g_members, thresholds=thresholds
    )


def _candidate_features(clf: FaceClassifier, X: np.ndarray) -> tuple[np.ndarray, ...]:
    """(candidate, probability, distance) of each face under an SVM-mode classifier."""
    P = clf.scores(X)
    D = clf.distances(X)
    cand = P.argmax(1)
    rows = np.arange(len(X))
    return cand, P[rows, cand], D[rows, cand]


def _svm_cv_features(
    X: np.ndarray, y: np.ndarray, members: tuple, *, folds: int, random_state: int
) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    """Out-of-fold (p, d, right) of gallery faces; (p, d) of leave-one-member-out strangers."""
    k = int(min(folds, np.bincount(y).min()))
    gen_p, gen_d, gen_ok = np.zeros(len(X)), np.zeros(len(X)), np.zeros(len(X), bool)
    for tr, te in StratifiedKFold(k, shuffle=True, random_state=random_state).split(X, y):
        inner = _fit_svm(X[tr], y[tr], members, folds=folds, random_state=random_state)
        cand, gen_p[te], gen_d[te] = _candidate_features(inner, X[te])
        gen_ok[te] = cand == y[te]
    imp_p, imp_d = np.zeros(len(X)), np.zeros(len(X))
    for h in range(len(members)):
        rest, out = y != h, y == h
        left = np.unique(y[rest])
        if len(left) == 1:
            # One member left: an SVM cannot fit, and would name it with certainty anyway.
            imp_p[out] = 1.0
            imp_d[out] = distance_matrix(X[out], X[rest]).min(1)
            continue
        relabel = np.searchsorted(left, y[rest])
        inner = _fit_svm(
            X[rest],
            relabel,
            tuple(members[i] for i in left),
            folds=folds,
            random_state=random_state,
        )
        _, imp_p[out], imp_d[out] = _candidate_features(inner, X[out])
    return (gen_p, gen_d, gen_ok), (imp_p, imp_d)


def _choose_thresholds(
    gen_p: np.ndarray,
    gen_d: np.ndarray,
    gen_ok: np.ndarray,
    imp_p: np.ndarray,
    imp_d: np.ndarray,
    *,
    budget: float,
) -> Thresholds:
    """Gates with the fewest CV errors, known faces left unknown within ``budget`` being free.

    An error is a simulated stranger named, a known face given another's name, or a known
    face left unknown beyond the budget (small galleries can need more than the budget to keep
    strangers out). Ties are common, since other members are easier to reject than real
    look-alikes; they go to the pair that keeps the simulated strangers furthest outside the
    gates, measured with soft (logistic) gates a quarter of the known faces' interquartile
    range wide. So where strangers are easy the budget is spent on safety margin. The
    probability gate stays at 0 unless it makes fewer errors than the distance gate alone.
    """
    # Candidate gates sit at the known faces' own values; 128 per gate at most keeps big
    # galleries cheap.
    p_cands = _spread(np.unique(np.r_[0.0, gen_p]))
    d_cands = _spread(np.unique(np.r_[gen_d, np.inf]))
    sp = max(float(np.subtract(*np.percentile(gen_p, [75, 25]))) / 4, 1e-3)
    sd = max(float(np.subtract(*np.percentile(gen_d, [75, 25]))) / 4, 1e-3)
    td = d_cands[:, None]
    soft_d = expit((np.where(np.isinf(td), 10.0, td) - imp_d) / sd)  # (D, n_imp)
    best = None
    for tp in p_cands:
        passed = (gen_p >= tp) & (gen_d <= td)  # (D, n)
        rejected = 1.0 - passed.mean(1)
        wrong = (passed & ~gen_ok).mean(1)
        imp_passed = ((imp_p >= tp) & (imp_d <= td)).mean(1) if len(imp_p) else 0 * wrong
        soft = (expit((imp_p - tp) / sp) * soft_d).mean(1) if len(imp_p) else 0 * wrong
        errors = np.round(wrong + imp_passed + np.maximum(rejected - budget, 0.0), 12)
        j = np.lexsort((soft, errors))[0]
        # A probability gate only where it keeps out more than the distance gate can: as a
        # free safety margin it rejected new photos of members that the gallery's own
        # cross-validation had passed (2.5% against 0.8% on the shared faces, ArcFace).
        key = (float(errors[j]), tp > 0, float(soft[j]))
        if best is None or key < best[0]:
            best = (key, tp, d_cands[j], rejected[j], wrong[j], imp_passed[j])
    _, tp, tdist, rejected, wrong, imp_passed = best
    return Thresholds(
        min_probability=float(tp),
        max_distance=float(tdist),
        source="cross-validation",
        cv_known_unknown=float(rejected),
        cv_named_wrong=float(wrong),
        cv_strangers_named=float(imp_passed),
    )


def _spread(values: np.ndarray, most: int = 128) -> np.ndarray:
    if len(values) <= most:
        return values
    return values[np.unique(np.linspace(0, len(values) - 1, most).round().astype(int))]
