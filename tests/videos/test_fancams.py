"""Fancams through the site: asked for on the watch page, made by a job, served like the video."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from django.core.files import File
from django.core.management import call_command
from django.urls import reverse

from base.storage import local_copy
from core.media.probe import probe
from tests.conftest import ROOT, reread, under_way, wait_for, work, worker_env
from tests.videos.conftest import make_clip
from videos.models import Detection, Fancam, Track, Video

pytestmark = pytest.mark.django_db(transaction=True)


def ask(client, video, member, **options):
    return client.post(
        reverse("videos:fancams", args=[video.uuid]),
        json.dumps({"member": member.slug, **options}),
        content_type="application/json",
    )


@pytest.fixture
def stage(group, members, fan, tmp_path):
    """A processed 8 s 640x360 video: Nayeon walks across the stage, shot cut at 4 s; Mina is
    in the second shot only; Sana never appears."""
    path = tmp_path / "stage.mp4"
    make_clip(path, seconds=8, size="640x360")
    video = Video(
        owner=fan, group=group, title="Stage", original_name="stage.mp4", size=path.stat().st_size,
        fps=25.0, frames=200, width=640, height=360, duration=8.0, has_audio=True,
        state=Video.State.DONE, cuts=[100], probe_facts=probe(path).to_json(),
    )  # fmt: skip
    with path.open("rb") as handle:
        video.original.save("stage.mp4", File(handle), save=False)
    with path.open("rb") as handle:
        video.labelled.save("labelled.mp4", File(handle), save=False)
    video.save()
    vector = np.zeros((1, 128), dtype=np.float32).tobytes()
    rows = []
    for number, (member, first, last, x0) in enumerate(
        [(members[0], 0, 99, 40), (members[0], 100, 199, 400), (members[1], 100, 199, 100)], 1
    ):
        track = Track.objects.create(
            video=video, number=number, member=member, confidence=0.9, first_frame=first,
            last_frame=last, embedding=vector, samples=vector, embedding_model="m",
        )  # fmt: skip
        for f in range(first, last + 1):
            x = x0 + 2 * (f - first)
            rows.append(
                Detection(
                    video=video,
                    track=track,
                    frame=f,
                    time=f / 25,
                    left=x,
                    top=80,
                    right=x + 50,
                    bottom=130,
                )  # fmt: skip
            )
    Detection.objects.bulk_create(rows)
    return video


def test_a_fan_asks_for_a_fancam_and_gets_it_made_played_and_reused(
    client, fan, members, stage, rq_queue
):
    client.force_login(fan)
    response = ask(client, stage, members[0])
    assert response.status_code == 202
    job = response.json()
    assert job["state"] == "queued" and job["member"] == members[0].slug
    work()
    done = client.get(job["status_url"]).json()
    assert done["state"] == "done", done
    fancam = Fancam.objects.get(pk=job["id"])
    with local_copy(fancam.file) as path:
        made = probe(path)
    assert made.frames == 200 and made.has_audio
    assert (made.width, made.height) == (204, 360)  # 9:16 as tall as the source
    # Played in the page by ranges, downloaded with a name that says what it is.
    part = client.get(done["url"], HTTP_RANGE="bytes=0-99")
    assert part.status_code == 206 and len(b"".join(part.streaming_content)) == 100
    whole = client.get(done["url"])
    assert "nayeon-fancam-9x16.mp4" in whole["Content-Disposition"]
    # The same request again: the stored file, no new job.
    again = ask(client, stage, members[0])
    assert again.status_code == 200 and again.json()["id"] == job["id"]
    assert rq_queue.count == 0
    page = client.get(stage.get_absolute_url())
    assert b"9:16" in page.content and b"fancam-make" in page.content


def test_highlights_keep_only_the_shots_she_is_in(client, fan, members, stage, rq_queue):
    client.force_login(fan)
    job = ask(client, stage, members[1], highlights=True, aspect="1:1").json()
    work()
    fancam = Fancam.objects.get(pk=job["id"])
    assert fancam.state == "done", fancam.error
    with local_copy(fancam.file) as path:
        made = probe(path)
    assert made.frames == 100  # the second shot only
    assert made.width == made.height
    assert abs(made.duration - 4.0) <= 0.05


def test_a_member_who_never_appears_gets_a_clear_message_and_no_file(client, fan, members, stage):
    client.force_login(fan)
    response = ask(client, stage, members[2])
    assert response.status_code == 422
    assert "not recognised anywhere in this video" in response.json()["error"]
    assert not Fancam.objects.exists()


def test_a_private_videos_fancams_are_refused_to_other_users(
    client, fan, other_fan, members, stage, rq_queue
):
    client.force_login(fan)
    job = ask(client, stage, members[0]).json()
    work()
    url = client.get(job["status_url"]).json()["url"]
    client.force_login(other_fan)
    assert ask(client, stage, members[0]).status_code == 404
    assert client.get(job["status_url"]).status_code == 404
    assert client.get(url).status_code == 404
    client.logout()
    assert client.get(url).status_code in (302, 404)


def test_bad_requests_get_plain_answers(client, fan, members, stage):
    client.force_login(fan)
    assert ask(client, stage, members[0], aspect="4:3").status_code == 422
    assert ask(client, stage, members[0], labels="yes").status_code == 400
    url = reverse("videos:fancams", args=[stage.uuid])
    assert client.get(url).status_code == 405
    assert client.post(url, "{", content_type="application/json").status_code == 400


def test_a_fancam_file_dies_with_its_video(client, fan, members, stage, rq_queue):
    client.force_login(fan)
    ask(client, stage, members[0])
    work()
    fancam = Fancam.objects.get()
    storage, name = fancam.file.storage, fancam.file.name
    assert storage.exists(name)
    stage.delete()
    assert not storage.exists(name)


def test_the_command_runs_what_the_job_runs(fan, members, stage, tmp_path, capsys):
    out = tmp_path / "nayeon.mp4"
    call_command(
        "fancam", str(stage.uuid), "--member", members[0].slug, "--out", str(out),
        "--aspect", "16:9", "--labels",
    )  # fmt: skip
    made = probe(out)
    assert made.frames == 200 and made.width > made.height
    call_command("fancam", str(stage.uuid), "--member", members[0].slug, "--out", str(out))
    assert Fancam.objects.count() == 2  # one per setting


def test_a_killed_fancam_job_leaves_no_half_written_file(client, fan, members, stage, rq_queue):
    from django.conf import settings

    client.force_login(fan)
    job = ask(client, stage, members[0], labels=True).json()
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "rqworker", "video"],
        cwd=ROOT, env=worker_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    folder = Path(settings.MEDIA_ROOT) / stage.storage_folder() / "fancams"
    try:
        fancam = Fancam.objects.get(pk=job["id"])
        wait_for(lambda: under_way(fancam), 60, "the fancam's job to be under way", every=0.02)
        out = subprocess.run(
            ["ps", "-o", "pid=", "--ppid", str(worker.pid)], capture_output=True, text=True
        )
        for pid in out.stdout.split():
            os.kill(int(pid), signal.SIGKILL)
        assert not folder.exists() or not any(folder.iterdir())  # nothing half-written in place
        wait_for(lambda: reread(fancam).state == "done", 90, "the fancam to be made again")
        assert [p.name for p in folder.iterdir()] == [f"{fancam.pk}.mp4"]
    finally:
        worker.send_signal(signal.SIGINT)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()


@pytest.mark.browser
def test_the_fancam_button_shows_progress_then_plays_and_offers_the_file(
    page, fan, members, stage, rq_queue, tmp_path
):
    from tests.conftest import run_worker

    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    page.goto("/accounts/login/")
    page.fill("#id_username", "fan")
    page.fill("#id_password", "pw-fan-123")
    page.click("button[type=submit]")
    page.wait_for_url("**/videos/")
    page.goto(stage.get_absolute_url())
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing spills out
    page.select_option("#fancam-options select[name=aspect]", "1:1")
    page.locator(".fancam-make[data-member=nayeon]").click()
    state = page.locator(".fancam-state[data-member=nayeon]")
    page.wait_for_function(
        "() => /waiting|queued/.test(document.querySelector('.fancam-state[data-member=nayeon]').textContent)"
    )
    run_worker("video")
    page.wait_for_function("() => !document.getElementById('fancam-player').hidden", timeout=60_000)
    assert state.inner_text() == "ready"
    src = page.locator("#fancam-video").evaluate("v => v.src")
    assert "/fancams/" in src and src.endswith(".mp4")
    page.wait_for_function("() => document.getElementById('fancam-video').readyState >= 1")
    width, height = page.locator("#fancam-video").evaluate("v => [v.videoWidth, v.videoHeight]")
    assert width == height > 0  # the square the fan chose, playing in the page
    assert page.locator("#fancam-download").get_attribute("download").endswith("fancam-1x1.mp4")
    assert "1:1" in page.locator("#fancam-list").inner_text()
    page.screenshot(path=str(tmp_path / "phone.png"), full_page=True)


def test_a_box_fixed_in_her_track_makes_her_fancam_again(client, fan, members, stage, rq_queue):
    from videos.fancams import _source_key

    made = Fancam.objects.create(
        video=stage, member=members[0], state=Fancam.State.DONE,
        source_key=_source_key(stage, members[0], False),
    )  # fmt: skip
    client.force_login(fan)
    assert ask(client, stage, members[0]).status_code == 200  # still right: the stored one
    fixed = client.post(
        reverse("videos:correct", args=[stage.uuid]),
        json.dumps({"action": "box", "track": 1, "frame": 50, "box": [200, 60, 260, 120]}),
        content_type="application/json",
    )
    assert fixed.status_code == 200, fixed.content
    again = ask(client, stage, members[0])
    assert again.status_code == 202 and again.json()["id"] == made.pk
    assert Fancam.objects.get(pk=made.pk).state == Fancam.State.QUEUED
