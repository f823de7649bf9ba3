"""One re-render per burst of corrections, and never two renders of one video at once."""

import json
import subprocess
import sys
import threading
import time

import pytest
from django.db import connection
from django.urls import reverse

from tests.conftest import ROOT, wait_for, worker_env
from videos import jobs
from videos.models import Correction, RenderRun, Video

pytestmark = pytest.mark.django_db(transaction=True)


def correct(client, video, **body):
    response = client.post(
        reverse("videos:correct", args=[video.uuid]), json.dumps(body), "application/json"
    )
    assert response.status_code == 200, response.content
    assert not response.json()["unchanged"]
    return response


def test_ten_corrections_in_a_burst_cause_one_rerender(
    client, fan, processed_video, members, rq_queue
):
    import django_rq
    from rq import Worker

    client.force_login(fan)
    nayeon, mina, sana = members
    # A worker that is up before the first correction: one still starting when the quiet
    # window had already passed would render at once and never wait (on a loaded machine).
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "rqworker", "video", "--name", "burst-test"],
        cwd=ROOT, env={**worker_env(), "VIDEO_RERENDER_QUIET_SECONDS": "3"},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        queue = django_rq.get_queue("video")
        wait_for(
            lambda: "burst-test" in {w.name for w in Worker.all(queue=queue)}, 120, "the worker"
        )
        correct(client, processed_video, track=1, action="member", member=mina.pk)
        run = RenderRun.objects.get(video=processed_video)
        # The worker has taken the job and waits for the burst to end.
        wait_for(
            lambda: "waiting a moment" in RenderRun.objects.get(pk=run.pk).stage, 90, "the wait"
        )
        for step in range(9):
            if step % 2 == 0:
                correct(client, processed_video, track=1, action="member",
                        member=(sana if step % 4 == 0 else mina).pk)  # fmt: skip
            else:
                correct(client, processed_video, track=2, action="member",
                        member=(nayeon if step % 4 == 1 else mina).pk)  # fmt: skip
            time.sleep(0.3)
        wait_for(
            lambda: RenderRun.objects.get(pk=run.pk).state == RenderRun.State.DONE, 120, "the run"
        )
        worker.terminate()  # a warm shutdown: nothing is running any more
        _, errors = worker.communicate(timeout=60)
        assert worker.returncode == 0, errors[-2000:]
    finally:
        if worker.poll() is None:
            worker.kill()
    assert Correction.objects.count() == 10
    runs = list(RenderRun.objects.filter(video=processed_video))
    assert len(runs) == 1
    run = runs[0]
    assert (run.state, run.requests) == (RenderRun.State.DONE, 10)
    last = Correction.objects.order_by("-created").first()
    assert run.started > last.created  # so it drew the labels of the whole burst


def test_two_workers_never_render_the_same_video_at_once(processed_video, settings):
    settings.VIDEO_RERENDER_QUIET_SECONDS = 0
    runs = [
        RenderRun.objects.create(video=processed_video, state=RenderRun.State.QUEUED, attempt=1)
        for _ in range(2)
    ]
    start = threading.Barrier(2)
    results = {}

    def worker(run):
        try:
            start.wait()
            results[run.pk] = jobs.render_video_job(run.pk, 1)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(run,)) for run in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    done = list(RenderRun.objects.filter(pk__in=[r.pk for r in runs]).order_by("started"))
    assert [r.state for r in done] == [RenderRun.State.DONE] * 2, [r.error for r in done]
    first, second = done
    assert first.finished <= second.started  # one after the other, never at once
    video = Video.objects.get(pk=processed_video.pk)
    assert video.render_lease == "" and video.labelled


def test_a_dead_workers_render_lease_runs_out(processed_video, settings):
    from datetime import timedelta

    from django.utils import timezone

    Video.objects.filter(pk=processed_video.pk).update(
        render_lease="dead-worker", render_lease_until=timezone.now() - timedelta(seconds=1)
    )
    run = RenderRun.objects.create(video=processed_video, state=RenderRun.State.QUEUED, attempt=1)
    jobs.render_video_job(run.pk, 1)
    run.refresh_from_db()
    assert run.state == RenderRun.State.DONE, run.error


def test_a_lease_left_by_a_killed_process_of_this_machine_is_taken_at_once(processed_video):
    import socket
    from datetime import timedelta

    from django.utils import timezone

    dead = subprocess.Popen(["true"])  # a process that has ended
    dead.wait()
    Video.objects.filter(pk=processed_video.pk).update(
        render_lease=f"{socket.gethostname()[:30]}:{dead.pid}:killed",
        render_lease_until=timezone.now() + timedelta(minutes=5),
    )
    run = RenderRun.objects.create(video=processed_video, state=RenderRun.State.QUEUED, attempt=1)
    started = time.monotonic()
    jobs.render_video_job(run.pk, 1)
    run.refresh_from_db()
    assert run.state == RenderRun.State.DONE, run.error
    assert time.monotonic() - started < 30  # not the five minutes the lease had left
