"""The queue as a promise: a video once accepted is processed, whatever Redis or a worker does.

Each test runs on a Redis server of its own that it crashes and restarts, once with the
bundled server's binary and once with the one CI runs (see `own_redis`)."""

import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import django_rq
import pytest
from django.conf import settings as django_settings
from django.urls import reverse
from django.utils import timezone

from base import jobs
from tests.conftest import ROOT, wait_for, work, worker_env
from videos import services
from videos.models import Detection, Track, Video

pytestmark = pytest.mark.django_db(transaction=True)


def age(rows):
    """Make rows look queued a while ago, past the grace the sweep gives jobs on their way."""
    rows.update(enqueued=timezone.now() - jobs.SEND_GRACE - timedelta(seconds=1))


def start_worker(name: str, log: Path, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", "rqworker", "video", "--name", name],
        cwd=ROOT, env={**worker_env(), **env}, stdout=log.open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip


def stop(worker: subprocess.Popen) -> None:
    if worker.poll() is None:
        worker.send_signal(signal.SIGINT)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()


def children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead too: it waits only for its parent to read its status.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(")")[-1].split()[0] != "Z"


def test_an_upload_while_redis_is_down_is_kept_and_processed_once_it_is_back(
    client, celebs, stage_clip, fan, own_redis
):
    own_redis.crash()
    client.force_login(fan)
    with stage_clip.open("rb") as handle:
        response = client.post(
            reverse("videos:upload"), {"group": celebs.pk, "title": "", "file": handle}
        )
    assert response.status_code == 201, response.content
    video = Video.objects.get()
    assert video.state == Video.State.QUEUED
    assert video.stage.startswith("waiting for the queue")
    page = client.get(video.get_absolute_url())  # the page works while Redis is down
    assert page.status_code == 200
    assert b"waiting for the queue" in page.content

    own_redis.start()
    age(Video.objects.all())
    assert jobs.jobs_sweep()["requeued"] == 1
    work()
    video.refresh_from_db()
    assert video.state == Video.State.DONE, video.error
    assert video.attempt == 2 and video.tracks.exists()


def test_videos_queued_when_redis_restarts_are_queued_again_and_processed(
    celebs, stage_clip, fan, own_redis
):
    videos = [
        services.video_submit(source=stage_clip, name=f"v{n}.mp4", group=celebs, owner=fan)
        for n in range(2)
    ]
    own_redis.restart()  # keeps nothing: both jobs are gone
    assert django_rq.get_queue("video").count == 0
    age(Video.objects.all())
    counts = jobs.jobs_sweep()
    assert counts["requeued"] == 2
    assert jobs.jobs_sweep()["requeued"] == 0  # once is enough
    work()
    for video in videos:
        video.refresh_from_db()
        assert video.state == Video.State.DONE, video.error
        assert "queued again" not in video.stage


def test_a_worker_killed_outright_and_restarted_under_a_new_name_finishes_the_video(
    celebs, stage_clip, fan, own_redis, tmp_path
):
    video = services.video_submit(source=stage_clip, name="stage.mp4", group=celebs, owner=fan)
    first = start_worker("demo-1-111", tmp_path / "first.log")
    second = None
    try:

        def started():
            video.refresh_from_db()
            return video.state == Video.State.RUNNING and video.progress > 5

        wait_for(started, 90, "the first worker to start the video")
        horses = children(first.pid)
        assert horses, "the worker runs jobs in a forked work horse"
        first.kill()  # SIGKILL: no handler runs, the worker's Redis entry stays
        first.wait()
        # The horse and the analysis processes under it die with the worker.
        wait_for(lambda: not any(alive(pid) for pid in horses), 10, "the horses to die")

        second = start_worker("demo-1-222", tmp_path / "second.log")

        def finished():
            video.refresh_from_db()
            return video.state in (Video.State.DONE, Video.State.FAILED)

        wait_for(finished, 150, "the second worker to finish the video")
        assert video.state == Video.State.DONE, video.error
        assert video.attempt == 2 and video.losses == 1
        assert video.tracks.exists()
    finally:
        first.kill()
        if second is not None:
            stop(second)


def test_a_job_lost_again_and_again_ends_failed_with_a_reason_and_a_retry(
    client, celebs, stage_clip, fan, own_redis
):
    video = services.video_submit(source=stage_clip, name="stage.mp4", group=celebs, owner=fan)
    for _ in range(jobs.MAX_LOSSES):
        own_redis.restart()
        age(Video.objects.all())
        assert jobs.jobs_sweep()["requeued"] == 1
    own_redis.restart()
    age(Video.objects.all())
    assert jobs.jobs_sweep()["failed"] == 1
    video.refresh_from_db()
    assert video.state == Video.State.FAILED
    assert video.error == (
        "the queue lost it (Redis was restarted or emptied). It was tried 4 times; press Retry"
    )

    client.force_login(fan)
    page = client.get(video.get_absolute_url())
    assert b"Retry" in page.content
    response = client.post(reverse("videos:retry", args=[video.uuid]))
    assert response.status_code == 302
    work()
    video.refresh_from_db()
    assert video.state == Video.State.DONE, video.error
    assert video.losses == 0


def test_a_video_deleted_while_it_is_processed_stops_its_job_and_leaves_no_file(
    celebs, stage_clip, fan, own_redis, tmp_path
):
    video = services.video_submit(source=stage_clip, name="stage.mp4", group=celebs, owner=fan)
    log = tmp_path / "worker.log"
    worker = start_worker("w-delete", log)
    try:

        def started():
            video.refresh_from_db()
            return video.state == Video.State.RUNNING and video.progress > 5

        wait_for(started, 90, "the worker to start the video")
        job_id = video.rq_job_id
        services.video_delete(video=video)

        def job_ended():
            job = django_rq.get_queue("video").fetch_job(job_id)
            return job is not None and job.get_status() in ("finished", "failed")

        wait_for(job_ended, 60, "the job to notice")
        job = django_rq.get_queue("video").fetch_job(job_id)
        assert job.get_status() == "finished"  # it stopped cleanly, not with an error
        assert job.return_value().startswith("stopped: video")
        assert worker.poll() is None  # the worker goes on
    finally:
        stop(worker)
    folder = Path(django_settings.MEDIA_ROOT) / video.storage_folder()
    assert not folder.exists()
    assert not Track.objects.exists() and not Detection.objects.exists()
    text = log.read_text()
    assert "IntegrityError" not in text and "DoesNotExist" not in text


def test_a_render_killed_midway_leaves_nothing_behind_once_the_retry_is_done(
    celebs, stage_clip, fan, own_redis, tmp_path
):
    video = services.video_submit(source=stage_clip, name="stage.mp4", group=celebs, owner=fan)
    # The slowest x264 preset keeps the render going long enough to be caught in the act.
    worker = start_worker("w-render", tmp_path / "worker.log", VIDEO_RENDER_PRESET="placebo")
    try:

        def rendering():
            video.refresh_from_db()
            return (
                video.state == Video.State.RUNNING and video.stage == "drawing the labelled video"
            )

        wait_for(rendering, 90, "the render to start")
        horses = children(worker.pid)
        for pid in horses:
            os.kill(pid, signal.SIGKILL)

        def finished():
            video.refresh_from_db()
            return video.state in (Video.State.DONE, Video.State.FAILED)

        wait_for(finished, 120, "the retry to finish")
        assert video.state == Video.State.DONE, video.error
        assert video.attempt == 2
        # The next sweep clears the killed horse's scratch folder.
        work_root = Path(django_settings.WORK_DIR)
        wait_for(
            lambda: (
                not [p for p in work_root.glob("*-*") if p.name.split("-")[0] in map(str, horses)]
            ),
            30,
            "the dead horse's scratch folder to go",
        )
    finally:
        stop(worker)
    media = Path(django_settings.MEDIA_ROOT)
    videos = media / "videos"
    stored = sorted(p.relative_to(media).as_posix() for p in videos.rglob("*") if p.is_file())
    folder = video.storage_folder()
    strips = sorted(video.tracks.values_list("thumbnail", flat=True))
    assert stored == sorted([video.original.name, f"{folder}/labelled.mp4", *strips])
