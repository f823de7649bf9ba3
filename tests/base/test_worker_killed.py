"""A worker killed in the middle of a video: the job is retried and nothing half-written stays."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from tests.conftest import ROOT, reread, under_way, wait_for, worker_env
from videos import services
from videos.models import Video

pytestmark = pytest.mark.django_db(transaction=True)


def children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def test_a_killed_work_horse_is_retried_and_the_output_appears_only_when_complete(
    celebs, stage_clip, fan, rq_queue
):
    video = services.video_submit(source=stage_clip, name="stage.mp4", group=celebs, owner=fan)
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "rqworker", "video"],
        cwd=ROOT, env=worker_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for(lambda: under_way(video), 60, "the video's job to be under way", every=0.05)
        horses = children(worker.pid)
        assert horses, "the worker runs jobs in a forked work horse"
        for pid in horses:
            os.kill(pid, signal.SIGKILL)
        labelled = Path(django_settings.MEDIA_ROOT) / f"videos/{video.uuid.hex}/labelled.mp4"
        assert not labelled.exists()  # nothing half-written in place

        wait_for(lambda: reread(video).state == Video.State.DONE, 120, "the video to be done")
        assert labelled.exists()
        assert not list(labelled.parent.glob(".*tmp*"))  # no temp file left behind
    finally:
        worker.send_signal(signal.SIGINT)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()


def test_a_row_whose_job_was_cancelled_shows_failed_and_a_queued_one_is_left_alone(
    processed_video, rq_queue
):
    from rq import SimpleWorker

    from base.jobs import job_reconcile

    # A job that ended without our error handling running.
    job = rq_queue.enqueue(time.sleep, 0, job_id="cancelled-job")
    job.cancel()
    Video.objects.filter(pk=processed_video.pk).update(
        state=Video.State.RUNNING, rq_job_id="cancelled-job"
    )
    processed_video.refresh_from_db()
    assert job_reconcile(processed_video) is True
    assert processed_video.state == Video.State.FAILED
    assert processed_video.error == "it was cancelled"

    waiting = rq_queue.enqueue(time.sleep, 0, job_id="waiting-job")
    Video.objects.filter(pk=processed_video.pk).update(
        state=Video.State.QUEUED, rq_job_id=waiting.id
    )
    processed_video.refresh_from_db()
    assert job_reconcile(processed_video) is False  # still queued: left alone
    assert processed_video.state == Video.State.QUEUED
    SimpleWorker([rq_queue], connection=rq_queue.connection).work(burst=True)
