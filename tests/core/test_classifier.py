"""The face classifier on real dlib embeddings.

tests/fixtures/embeddings.npz holds face_recognition (dlib) embeddings of the first ten
face crops (000-009) of each of ten people, computed with HOG's box or, where HOG found no
face in the 112x112 crop, the whole crop as the box. Eight people form the gallery; will-smith
and jessica-alba are the strangers (jessica-alba looks like miley-cyrus to dlib).
"""

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from sklearn.calibration import CalibratedClassifierCV
from sklearn.model_selection import StratifiedKFold
from sklearn.svm import SVC

from core.classifier.evaluation import cross_validate
from core.classifier.model import ClassifierError, FaceClassifier, load, save
from core.classifier.training import fit, fit_choosing

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "embeddings.npz"
STRANGERS = ("jessica-alba", "will-smith")
GALLERY_IMAGES = 8  # per member; images 8 and 9 are the unseen ones


@pytest.fixture(scope="module")
def faces():
    with np.load(FIXTURE) as z:
        X, labels, index = z["embeddings"].astype(np.float64), z["labels"], z["index"]
    known = ~np.isin(labels, STRANGERS)
    gallery = known & (index < GALLERY_IMAGES)
    return {
        "X": X,
        "labels": labels,
        "index": index,
        "gallery": (X[gallery], [str(s) for s in labels[gallery]]),
        "unseen": (X[known & ~gallery], [str(s) for s in labels[known & ~gallery]]),
        "strangers": (X[~known], [str(s) for s in labels[~known]]),
    }


@pytest.fixture(scope="module")
def clf(faces):
    return fit(*faces["gallery"])


@pytest.fixture(scope="module")
def metrics(faces):
    return cross_validate(*faces["gallery"], folds=3)


def test_it_names_known_members_in_images_it_has_not_seen(clf, faces):
    X, truth = faces["unseen"]
    labels = [p.label for p in clf.predict(X)]
    assert all(label in (None, t) for label, t in zip(labels, truth, strict=True))
    assert sum(label == t for label, t in zip(labels, truth, strict=True)) >= len(truth) - 1


def test_it_says_unknown_for_people_outside_the_gallery(clf, faces):
    X, who = faces["strangers"]
    labels = [p.label for p in clf.predict(X)]
    will = [label for label, w in zip(labels, who, strict=True) if w == "will-smith"]
    assert will == [None] * 10
    # Most of jessica-alba's faces sit within dlib's usual 0.6 of a miley-cyrus face.
    assert sum(label is None for label in labels) >= len(labels) / 2
    assert all(label in (None, "miley-cyrus") for label in labels)


def test_it_keeps_its_best_guess_for_an_unknown_face(clf, faces):
    X, _ = faces["strangers"]
    for p in clf.predict(X):
        assert p.candidate in clf.members
        assert 0.0 < p.confidence <= 1.0
        if p.label is None:
            t = clf.thresholds
            assert p.distance > t.max_distance or p.confidence < t.min_probability


def test_its_scores_are_the_calibrated_svm_probabilities(clf, faces):
    X, labels = faces["gallery"]
    reference = CalibratedClassifierCV(
        SVC(kernel="linear"),
        cv=StratifiedKFold(5, shuffle=True, random_state=0),
        ensemble=False,
    ).fit(X, labels)
    assert list(reference.classes_) == list(clf.members)
    S = clf.scores(faces["X"])
    assert S.shape == (100, 8)
    np.testing.assert_allclose(S, reference.predict_proba(faces["X"]), atol=1e-12)
    np.testing.assert_allclose(S.sum(axis=1), 1.0)


def test_it_chooses_its_thresholds_by_cross_validation(faces):
    none_free = fit_choosing(*faces["gallery"], max_known_unknown=0.0).gated
    many_free = fit_choosing(*faces["gallery"], max_known_unknown=0.2).gated
    for clf in (none_free, many_free):
        assert clf.thresholds.source == "cross-validation"
        # 0: no probability gate, where the distance gate keeps the strangers out alone.
        assert 0.0 <= clf.thresholds.min_probability < 1.0
        assert 0.3 < clf.thresholds.max_distance < 0.8
    # Leaving known faces unknown for free buys tighter gates and fewer strangers named.
    assert many_free.thresholds.max_distance <= none_free.thresholds.max_distance
    assert many_free.thresholds.cv_known_unknown > none_free.thresholds.cv_known_unknown
    assert many_free.thresholds.cv_strangers_named <= none_free.thresholds.cv_strangers_named


def test_it_names_a_track_from_several_samples(clf, faces):
    X, labels = faces["X"], faces["labels"]
    miley = X[labels == "miley-cyrus"]
    assert clf.predict_track(miley[GALLERY_IMAGES:]).label == "miley-cyrus"
    assert clf.predict_track(X[labels == "will-smith"][:5]).label is None
    one = clf.predict_track(miley[8:9])
    single = clf.predict(miley[8:9])[0]
    assert one.label == single.label
    assert one.confidence == pytest.approx(single.confidence)
    assert one.distance == pytest.approx(single.distance)


def test_a_track_beyond_the_distance_gate_is_named_by_its_lead_over_the_next_member(clf, faces):
    """Faces turned and lit on a stage are further from every gallery face; a track of them
    still nearer one member than any other by the margin gate is named, one face is not."""
    X, labels = faces["X"], faces["labels"]
    miley = X[labels == "miley-cyrus"][GALLERY_IMAGES:]
    d = clf.distances(miley)
    gate = clf.thresholds.max_distance
    # Pushed away from everyone (away from the mean face), miley stays nearest, but beyond
    # the gate.
    centre = clf.gallery.mean(axis=0)
    far = miley + 1.2 * (miley - centre)
    far *= np.linalg.norm(miley, axis=1, keepdims=True) / np.linalg.norm(far, axis=1, keepdims=True)
    track = clf.predict_track(far)
    D = np.median(clf.distances(far), axis=0)
    lead = np.sort(D)[1] - D.min()
    assert d.min(axis=1).max() <= gate < track.distance and track.candidate == "miley-cyrus"
    assert track.label is None  # this classifier has no margin gate
    named = replace(clf, margin_gate=lead * 0.9)
    assert named.predict_track(far).label == "miley-cyrus"
    assert replace(clf, margin_gate=lead * 1.1).predict_track(far).label is None
    assert named.predict_track(far[:1]).label is None  # one face: the gates alone
    assert all(p.label is None for p in named.predict(far))
    # Strangers' tracks are not named by it.
    assert named.predict_track(X[labels == "will-smith"][:5]).label is None
    # Nor beyond its reach, however far ahead.
    assert replace(named, margin_reach=track.distance).predict_track(far).label == "miley-cyrus"
    beyond = replace(named, margin_reach=track.distance * 0.99)
    assert beyond.predict_track(far).label is None


def test_a_track_is_never_named_a_member_it_was_said_not_to_be(clf, faces):
    X, labels = faces["X"], faces["labels"]
    miley = X[labels == "miley-cyrus"][GALLERY_IMAGES:]
    free = clf.predict_track(miley)
    assert free.label == "miley-cyrus"
    barred = clf.predict_track(miley, excluded={"miley-cyrus"})
    assert barred.label != "miley-cyrus" and barred.candidate != "miley-cyrus"
    assert barred.confidence <= free.confidence  # the next best
    nobody = clf.predict_track(miley, excluded=set(clf.members))
    assert (nobody.label, nobody.confidence) == (None, 0.0)


def test_a_track_is_not_swayed_by_one_odd_sample(clf, faces):
    X, labels = faces["X"], faces["labels"]
    keanu = X[labels == "keanu-reeves"][GALLERY_IMAGES:]
    odd = X[labels == "will-smith"][:1]
    assert clf.predict_track(np.vstack([keanu, keanu])).label == "keanu-reeves"
    assert clf.predict_track(np.vstack([keanu, keanu, odd])).label == "keanu-reeves"


def test_cross_validate_reports_metrics_for_it_and_the_seed(metrics, faces):
    _, labels = faces["gallery"]
    json.dumps(metrics)  # JSON-serialisable as it is
    for m in (metrics, metrics["seed"]):
        assert m["members"] == sorted(set(labels))
        for key in (
            "accuracy",
            "closed_set_accuracy",
            "known_unknown",
            "known_wrong",
            "strangers_unknown",
            "balanced_accuracy",
            "coverage_at_99_precision",
        ):
            assert 0.0 <= m[key] <= 1.0, key
        assert m["accuracy"] + m["known_unknown"] + m["known_wrong"] == pytest.approx(1.0)
        confusion = m["confusion"]
        assert confusion["labels"] == [*m["members"], "unknown"]
        assert [sum(row) for row in confusion["matrix"]] == [GALLERY_IMAGES] * 8
        right = sum(confusion["matrix"][i][i] for i in range(8))
        assert right / m["faces"] == pytest.approx(m["accuracy"])
        assert sum(confusion["strangers"]) == m["strangers"] == 8 * GALLERY_IMAGES
        for name, row in m["per_member"].items():
            assert row["support"] == GALLERY_IMAGES, name
            assert 0.0 <= row["recall"] <= 1.0
            assert row["precision"] is None or 0.0 <= row["precision"] <= 1.0


def test_cross_validation_shows_it_is_not_worse_than_the_seed(metrics):
    assert metrics["not_worse_than_seed"] is True
    assert metrics["balanced_accuracy"] >= metrics["seed"]["balanced_accuracy"]
    assert metrics["strangers_unknown"] >= 0.9
    assert metrics["known_wrong"] <= 0.05


def test_save_and_load_give_identical_predictions(clf, faces, tmp_path):
    path = tmp_path / "model.npz"
    digest = save(clf, path)
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()
    again = load(path, sha256=digest)
    assert again.members == clf.members
    assert again.thresholds == clf.thresholds
    np.testing.assert_array_equal(again.scores(faces["X"]), clf.scores(faces["X"]))
    assert again.predict(faces["X"]) == clf.predict(faces["X"])
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_load_rejects_a_truncated_file(clf, tmp_path):
    path = tmp_path / "model.npz"
    save(clf, path)
    data = path.read_bytes()
    for size in (0, 10, len(data) // 2, len(data) - 1):
        path.write_bytes(data[:size])
        with pytest.raises(ClassifierError, match="corrupt or truncated"):
            load(path)


def test_load_rejects_a_corrupt_file(clf, tmp_path):
    path = tmp_path / "model.npz"
    save(clf, path)
    data = bytearray(path.read_bytes())
    middle = len(data) // 2  # inside the stored gallery embeddings
    data[middle] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ClassifierError, match="corrupt or truncated"):
        load(path)
    path.write_text("not a classifier")
    with pytest.raises(ClassifierError):
        load(path)
    with pytest.raises(ClassifierError, match="cannot read"):
        load(tmp_path / "missing.npz")


def test_load_rejects_a_file_whose_sha256_does_not_match(clf, tmp_path):
    path = tmp_path / "model.npz"
    digest = save(clf, path)
    with pytest.raises(ClassifierError, match="SHA-256"):
        load(path, sha256="0" * 64)
    other = fit(np.vstack([clf.gallery[:8], clf.gallery[-8:]]), ["a"] * 8 + ["b"] * 8)
    save(other, path)  # a valid file, just not the one the caller meant
    with pytest.raises(ClassifierError, match="SHA-256"):
        load(path, sha256=digest)


def test_it_refuses_an_empty_gallery():
    with pytest.raises(ClassifierError, match="no training faces"):
        fit(np.zeros((0, 128)), [])


def test_it_refuses_labels_and_embeddings_of_different_lengths(faces):
    X, labels = faces["gallery"]
    with pytest.raises(ClassifierError, match="64 embeddings but 63 labels"):
        fit(X, labels[:-1])


def test_it_refuses_nan_embeddings(clf, faces):
    X, labels = faces["gallery"]
    bad = X.copy()
    bad[3, 7] = np.nan
    with pytest.raises(ClassifierError, match="NaN"):
        fit(bad, labels)
    with pytest.raises(ClassifierError, match="NaN"):
        clf.predict(bad)
    with pytest.raises(ClassifierError, match="NaN"):
        clf.predict_track(bad[:5])


def test_it_refuses_embeddings_of_another_length(clf, faces):
    with pytest.raises(ClassifierError, match="shape"):
        clf.predict(faces["X"][:, :64])


def test_it_answers_nothing_for_no_faces_but_needs_a_face_for_a_track(clf):
    assert clf.predict(np.zeros((0, 128))) == []
    with pytest.raises(ClassifierError, match="at least one"):
        clf.predict_track(np.zeros((0, 128)))


def test_with_one_member_it_verifies_by_distance(faces):
    X, labels, index = faces["X"], faces["labels"], faces["index"]
    own_named = 0
    for person in sorted(set(labels)):
        theirs = labels == person
        solo = fit(X[theirs & (index < 5)], [str(person)] * 5)
        assert solo.mode == "distance" and solo.members == (person,)
        assert solo.scores(X).shape == (100, 1)
        own = [p.label for p in solo.predict(X[theirs & (index >= 5)])]
        assert set(own) <= {person, None}
        own_named += sum(label == person for label in own)
        assert all(p.label is None for p in solo.predict(X[~theirs])), person
    assert own_named >= 45  # of 50 unseen faces, against galleries of five


def test_a_member_with_one_image_falls_back_to_distance_for_everyone(faces):
    X, labels, index = faces["X"], faces["labels"], faces["index"]
    known = ~np.isin(labels, STRANGERS)
    keep = known & (index < GALLERY_IMAGES) & ((labels != "keanu-reeves") | (index == 0))
    clf = fit(X[keep], [str(s) for s in labels[keep]])
    assert clf.mode == "distance"
    assert clf.thresholds.source == "cross-validation"
    unseen = known & (index >= GALLERY_IMAGES) & (labels != "keanu-reeves")
    assert [p.label for p in clf.predict(X[unseen])] == [str(s) for s in labels[unseen]]
    keanu = clf.predict(X[labels == "keanu-reeves"][:1])[0]
    assert keanu.label == "keanu-reeves" and keanu.distance == pytest.approx(0.0, abs=1e-6)
    assert all(p.label is None for p in clf.predict(X[labels == "will-smith"]))


def test_two_members_work_and_survive_a_round_trip(faces, tmp_path):
    X, labels, index = faces["X"], faces["labels"], faces["index"]
    pair = np.isin(labels, ["barack-obama", "miley-cyrus"])
    two = fit(X[pair & (index < GALLERY_IMAGES)], [str(s) for s in labels[pair & (index < 8)]])
    assert two.mode == "svm" and two.scores(X).shape == (100, 2)
    unseen = pair & (index >= GALLERY_IMAGES)
    assert [p.label for p in two.predict(X[unseen])] == [str(s) for s in labels[unseen]]
    save(two, tmp_path / "two.npz")
    np.testing.assert_array_equal(load(tmp_path / "two.npz").scores(X), two.scores(X))


def test_it_refuses_too_few_folds_and_non_string_labels(faces):
    X, labels = faces["gallery"]
    with pytest.raises(ClassifierError, match="folds"):
        fit(X, labels, folds=1)
    with pytest.raises(ClassifierError, match="label"):
        fit(X[:2], ["a", 3])


def test_a_classifier_is_a_plain_object(clf):
    assert isinstance(clf, FaceClassifier)
    assert clf.mode == "svm" and clf.dimensions == 128
    assert clf.gallery.shape == (64, 128)


# The four women of the shared faces, all 60 images each, embedded by both models, and
# jessica-alba, who looks like miley-cyrus to dlib: a gallery of look-alikes and a stranger
# among them. Images 0-29 are the gallery, 30-59 unseen.
LOOKALIKES = Path(__file__).resolve().parents[1] / "fixtures" / "lookalikes.npz"
MODEL_GATES = {"arcface": 1.265, "dlib": 0.6}  # the embedders' same-person distances


def _seed_names(X, labels, V):
    """The seed method: a linear SVC with probabilities, named above 0.7."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        svc = SVC(kernel="linear", probability=True, random_state=0).fit(X, labels)
    P = svc.predict_proba(V)
    return [
        svc.classes_[i] if p > 0.7 else None for i, p in zip(P.argmax(1), P.max(1), strict=True)
    ]


@pytest.mark.parametrize("model", ["arcface", "dlib"])
def test_on_a_lookalike_gallery_it_is_never_worse_than_the_seed_method(model):
    with np.load(LOOKALIKES) as z:
        X, labels, index = z[model].astype(np.float64), z["labels"], z["index"]
    women = labels != "jessica-alba"
    gallery = women & (index < 30)
    Xg, yg = X[gallery], [str(s) for s in labels[gallery]]
    gate = MODEL_GATES[model]

    metrics = cross_validate(Xg, yg, default_max_distance=gate)
    seed = metrics["seed"]
    assert metrics["balanced_accuracy"] >= seed["balanced_accuracy"]
    assert metrics["known_unknown"] <= seed["known_unknown"]
    assert metrics["strangers_unknown"] >= seed["strangers_unknown"]
    # Known gap (#24): with dlib, one rule chosen in one of nine folds names one face of 120
    # wrong where the seed's rule names none; the four-axis check says so, and a version
    # measured like this waits for a curator (recognition.services.seed_regressions).
    assert metrics["known_wrong"] <= seed["known_wrong"] + 1 / len(yg) + 1e-12
    assert metrics["worse_than_seed"] in ([], ["known_wrong"])

    # On faces neither saw: as many members named right, no more strangers named.
    clf = fit(Xg, yg, default_max_distance=gate)
    unseen, stranger = women & (index >= 30), ~women
    ours = [p.label for p in clf.predict(X[unseen])]
    seed = _seed_names(Xg, yg, X[unseen])
    truth = labels[unseen]
    assert sum(a == t for a, t in zip(ours, truth, strict=True)) >= sum(
        a == t for a, t in zip(seed, truth, strict=True)
    )
    assert not any(a is not None and a != t for a, t in zip(ours, truth, strict=True))
    ours_strangers = sum(p.label is not None for p in clf.predict(X[stranger]))
    assert ours_strangers <= sum(n is not None for n in _seed_names(Xg, yg, X[stranger]))
