"""A worker stopped while it warms up stops quietly."""

import logging

import pytest
from rq.exceptions import StopRequested

from base.worker import Worker, worker_warm


@pytest.mark.django_db
def test_a_stop_during_the_warm_up_stops_the_worker_without_an_error_logged(caplog):
    """Ctrl-C while a receiver loads its modules raises StopRequested in that receiver: the
    worker stops, and nothing is logged as an error (Django's send_robust logged it with a
    traceback, which the demo printed on Ctrl-C)."""
    ran = []

    def loading(sender, **kwargs):
        raise StopRequested()

    def other(sender, **kwargs):
        ran.append(sender)

    worker_warm.connect(loading, weak=False, dispatch_uid="test-loading")
    worker_warm.connect(other, weak=False, dispatch_uid="test-other")
    try:
        worker = Worker.__new__(Worker)  # warm() reads nothing of the worker's own state
        with caplog.at_level(logging.INFO), pytest.raises(StopRequested):
            worker.warm()
    finally:
        worker_warm.disconnect(dispatch_uid="test-loading")
        worker_warm.disconnect(dispatch_uid="test-other")
    assert ran == [Worker]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.django_db
def test_a_receiver_that_fails_is_still_logged_as_an_error(caplog):
    def broken(sender, **kwargs):
        raise RuntimeError("no face model")

    worker_warm.connect(broken, weak=False, dispatch_uid="test-broken")
    try:
        with caplog.at_level(logging.INFO):
            Worker.__new__(Worker).warm()
    finally:
        worker_warm.disconnect(dispatch_uid="test-broken")
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("no face model" in message for message in errors)


@pytest.mark.django_db
def test_a_stop_while_a_face_model_loads_is_not_taken_for_a_broken_model(
    group, members, monkeypatch, caplog
):
    """RQ's Ctrl-C handler raises StopRequested wherever the worker is, here inside
    models_warm's loading of a group's face model (the demo stopped 2 s after it began serving,
    on a loaded machine): it stops the worker, and is not logged as a model that could not
    load, with a traceback. A model that fails to load for a reason is still logged."""
    from core.faces import embed
    from recognition.models import ModelVersion
    from recognition.services import models_warm

    ModelVersion.objects.create(
        group=group, number=1, sha256="0" * 64, embedding_model="m", members=["nayeon"],
        training_counts={"nayeon": 1}, metrics={"negatives": 0}, is_active=True,
    )  # fmt: skip

    class Loading:
        def __init__(self, failure):
            self.failure = failure

        def load(self):
            raise self.failure

    monkeypatch.setattr(embed, "embedder_for_model_id", lambda _: Loading(StopRequested()))
    with caplog.at_level(logging.INFO), pytest.raises(StopRequested):
        models_warm()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]

    monkeypatch.setattr(embed, "embedder_for_model_id", lambda _: Loading(OSError("truncated")))
    with caplog.at_level(logging.INFO):
        models_warm()
    assert any("could not load" in r.getMessage() for r in caplog.records)
