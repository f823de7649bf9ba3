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
