"""The one clash rule: a member is named at most once in any frame."""

import numpy as np

from core.tracking.naming import Fixed, clash_losers, name_samples


def frames(a, b):
    return np.arange(a, b)


def test_the_stronger_of_two_tracks_on_screen_together_keeps_the_name():
    losers = clash_losers(["tom", "tom"], [0.7, 0.9], [frames(0, 50), frames(40, 90)])
    assert losers == {0}


def test_tracks_that_never_share_a_frame_both_keep_the_name():
    # Overlapping spans, no shared frame: one face left the stage before the other came on.
    a, b = np.array([0, 1, 2, 9]), np.array([5, 6, 7])
    assert clash_losers(["tom", "tom"], [0.9, 0.8], [a, b]) == set()


def test_a_track_that_lost_its_name_does_not_take_it_from_a_third():
    # a beats b; b overlapped c but no longer has the name, so c keeps it.
    a, b, c = frames(0, 10), frames(5, 30), frames(20, 40)
    assert clash_losers(["tom"] * 3, [0.9, 0.8, 0.7], [a, b, c]) == {1}


def test_a_persons_name_beats_the_models_however_confident():
    fixed = [Fixed("tom", frames(0, 10))]
    assert clash_losers(
        ["tom", "tom"], [0.99, 0.5], [frames(5, 8), frames(20, 30)], fixed=fixed
    ) == {0}


class Nearest:
    """A classifier over two prototypes: named when a track's mean is near one of them."""

    def predict_track(self, samples):
        from core.classifier.model import Prediction

        mean = samples.mean(axis=0)
        label = "tom" if mean[0] > 0 else "keanu"
        return Prediction(label, float(abs(mean[0])), label, 0.0)


def test_stored_samples_are_named_and_settled_in_one_call():
    samples = [np.array([[0.9, 0]]), np.array([[0.6, 0]]), np.array([[-0.8, 0]]), np.empty((0, 2))]
    spans = [frames(0, 10), frames(5, 15), frames(5, 15), frames(0, 5)]
    names = name_samples(samples, spans, Nearest())
    assert [n.label for n in names] == ["tom", None, "keanu", None]
    assert names[1].candidate == "tom"  # it lost the name, not what it looks like


class Gated:
    """Candidate by the sign of the samples' mean, named only when it is 0.5 or more away."""

    def predict_track(self, samples, excluded=()):
        from core.classifier.model import Prediction

        mean = float(samples.mean(axis=0)[0])
        candidate = "tom" if mean > 0 else "keanu"
        return Prediction(candidate if abs(mean) >= 0.5 else None, abs(mean), candidate, 0.0)


def test_parts_of_a_split_track_that_agree_are_named_together():
    """One face's track split where its looks changed: the part that is unsure alone (0.4) is
    named with its neighbour (mean 0.55); a track that was never split is not helped."""
    samples = [np.array([[0.7]]), np.array([[0.4]]), np.array([[0.4]])]
    spans = [frames(0, 10), frames(10, 20), frames(30, 40)]
    alone = name_samples(samples, spans, Gated())
    assert [n.label for n in alone] == ["tom", None, None]
    together = name_samples(samples, spans, Gated(), kin=[7, 7, None])
    assert [n.label for n in together] == ["tom", "tom", None]
    assert together[0].confidence == together[1].confidence == 0.55


def test_parts_with_different_candidates_are_two_people_and_stay_apart():
    # tom, then keanu (the track jumped to another face), then tom again: only neighbours
    # with one candidate go together, and tom's last part is unsure alone.
    samples = [np.array([[0.9]]), np.array([[-0.9]]), np.array([[0.3]])]
    spans = [frames(0, 10), frames(10, 20), frames(20, 30)]
    names = name_samples(samples, spans, Gated(), kin=[3, 3, 3])
    assert [n.label for n in names] == ["tom", "keanu", None]


def test_a_part_a_person_said_is_not_someone_is_named_on_its_own():
    samples = [np.array([[0.7]]), np.array([[0.4]])]
    spans = [frames(0, 10), frames(10, 20)]
    names = name_samples(samples, spans, Gated(), excluded=[set(), {"keanu"}], kin=[1, 1])
    assert [n.label for n in names] == ["tom", None]
