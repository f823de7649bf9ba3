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
