"""Jobs go through a real Redis server and a real RQ worker."""

import operator
import os
import subprocess
import sys
from pathlib import Path

import django_rq
import pytest
from django.db import transaction
from rq import SimpleWorker


@pytest.mark.django_db(transaction=True)
def test_jobs_enqueue_only_after_the_transaction_commits(rq_queue):
    with transaction.atomic():
        django_rq.enqueue(operator.add, 2, 3)
        assert rq_queue.count == 0
    assert rq_queue.count == 1


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_transaction_enqueues_nothing(rq_queue):
    with pytest.raises(RuntimeError), transaction.atomic():
        django_rq.enqueue(operator.add, 2, 3)
        raise RuntimeError("rolled back")
    assert rq_queue.count == 0


def test_a_worker_runs_the_job(rq_queue):
    job = rq_queue.enqueue(operator.add, 2, 3)
    SimpleWorker([rq_queue], connection=rq_queue.connection).work(burst=True)
    job.refresh()
    assert job.is_finished
    assert job.return_value() == 5


def test_an_rqworker_process_shares_the_queue_with_this_process(rq_queue):
    job = rq_queue.enqueue(os.getpid)
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="tests.settings")
    result = subprocess.run(
        [sys.executable, "manage.py", "rqworker", "default", "--burst"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    job.refresh()
    assert job.is_finished
    assert job.return_value() != os.getpid()
