"""Uploads are checked before anything is stored, and bad files get a clear message."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from recognition.models import ModelVersion
from videos.models import Video

pytestmark = pytest.mark.django_db


@pytest.fixture
def trained(group, members):
    return ModelVersion.objects.create(
        group=group,
        number=1,
        sha256="0" * 64,
        embedding_model="m",
        members=["nayeon"],
        training_counts={"nayeon": 1},
        metrics={},
        is_active=True,
    )


def post(client, group, name, data, **extra):
    return client.post(
        reverse("videos:upload"),
        {"group": group.pk, "title": "", "file": SimpleUploadedFile(name, data)},
        **extra,
    )


def test_the_upload_page_needs_a_login(client):
    response = client.get(reverse("videos:upload"))
    assert response.status_code == 302
    assert reverse("login") in response["Location"]


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        (
            "notes.mp4",
            b"this is a text file, not a video\n" * 10,
            "This is not a video file",
        ),
        ("empty.mp4", b"", "empty"),
        ("song.mp3.exe", b"MZ" * 100, "“song.mp3.exe” is not a video file. Choose one of"),
    ],
    ids=["text-named-mp4", "zero-byte", "wrong-type"],
)
def test_a_bad_file_is_refused_with_a_clear_message_and_nothing_is_stored(
    client, fan, group, trained, media_root, name, data, message
):
    client.force_login(fan)
    response = post(client, group, name, data)
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert Video.objects.count() == 0
    assert not (media_root / "videos").exists()


def test_a_truncated_mp4_is_refused(client, fan, group, trained, clip):
    client.force_login(fan)
    data = clip.read_bytes()
    response = post(client, group, "cut.mp4", data[: len(data) // 3])
    assert response.status_code == 400
    # ffmpeg says "moov atom not found"; the fan reads what happened and what to do.
    assert response.json()["error"] == (
        "This file is cut short: it looks like the upload stopped early. Try again."
    )
    assert Video.objects.count() == 0


def test_an_audio_file_is_refused_as_sound_without_picture(client, fan, group, trained, tmp_path):
    import subprocess

    from core.media.probe import ffmpeg_exe

    song = tmp_path / "song.mp4"
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "sine=duration=1", "-c:a", "aac",
         str(song)],
        check=True,
    )  # fmt: skip
    client.force_login(fan)
    response = post(client, group, "song.mp4", song.read_bytes())
    assert response.status_code == 400
    assert response.json()["error"] == "This file has sound but no picture: choose a video."


def test_frames_sharing_a_timestamp_are_refused_before_anything_is_stored(
    client, fan, group, trained, clip, tmp_path, media_root
):
    import subprocess

    from core.media.probe import ffmpeg_exe

    broken = tmp_path / "broken.mkv"
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-i", str(clip), "-an", "-c", "copy", "-bsf:v",
         "setts=pts=floor(N/2)*512:dts=floor(N/2)*512", str(broken)],
        check=True,
    )  # fmt: skip
    client.force_login(fan)
    response = post(client, group, "broken.mkv", broken.read_bytes())
    assert response.status_code == 400
    assert response.json()["error"].startswith(
        "Several frames of this video share one timestamp, so no player can show them in order."
    )
    assert Video.objects.count() == 0
    assert not (media_root / "videos").exists()


def test_the_only_group_is_preselected_and_the_chooser_offers_videos(client, fan, group, trained):
    client.force_login(fan)
    page = client.get(reverse("videos:upload")).content.decode()
    assert f'<option value="{group.pk}" selected>' in page
    assert 'accept="video/*,.3gp,.avi,' in page


@pytest.mark.parametrize(
    ("limit", "sent", "message"),
    [
        (1000, 5000, "This file is 5 kB; the limit is 1 kB."),
        (500, 2_500_000, "This file is over the 500 bytes limit."),
        (1_500_000, 2_200_000, "This file is 2.2 MB; the limit is 1.5 MB."),
    ],
)
def test_a_file_over_the_limit_is_refused_with_both_sizes_in_plain_words(
    client, fan, group, trained, settings, limit, sent, message
):
    settings.VIDEO_MAX_BYTES = limit
    client.force_login(fan)
    response = post(client, group, "big.mp4", b"x" * sent)
    assert response.status_code in (400, 413)
    assert response.json()["error"] == message


def test_uploads_are_rate_limited_per_fan(client, fan, group, trained, clip, settings):
    settings.VIDEO_UPLOADS_PER_HOUR = 2
    client.force_login(fan)
    for _ in range(2):
        assert post(client, group, "clip.mp4", clip.read_bytes()).status_code == 201
    response = post(client, group, "clip.mp4", clip.read_bytes())
    assert response.status_code == 400
    assert "in the last hour" in response.json()["error"]


def test_a_good_upload_is_stored_with_its_probe_facts_and_queued(client, fan, group, trained, clip):
    client.force_login(fan)
    response = post(client, group, "clip.mp4", clip.read_bytes())
    assert response.status_code == 201
    video = Video.objects.get()
    assert response.json()["url"] == video.get_absolute_url()
    assert (video.owner, video.frames, video.width, video.height, video.has_audio) == (
        fan,
        25,
        160,
        120,
        True,
    )
    assert video.state == Video.State.QUEUED
    assert video.original.name.endswith("original.mp4")
    assert video.title == "clip"


def test_a_group_without_a_model_cannot_take_videos(client, fan, group, clip):
    client.force_login(fan)
    response = post(client, group, "clip.mp4", clip.read_bytes())
    assert response.status_code == 400


@pytest.mark.django_db(transaction=True)
def test_four_uploads_at_once_at_nine_of_ten_store_exactly_one(fan, group, trained, clip, settings):
    import threading

    from django.db import connections

    from videos import services

    settings.VIDEO_UPLOADS_PER_HOUR = 10
    for n in range(9):
        Video.objects.create(owner=fan, group=group, original=f"videos/x{n}/original.mp4")
    barrier = threading.Barrier(4)
    outcomes = []

    def upload(n):
        try:
            barrier.wait()
            services.video_submit(
                source=clip, name=f"c{n}.mp4", group=group, owner=fan, enqueue=False
            )
            outcomes.append("stored")
        except services.VideoRejected as exc:
            outcomes.append(str(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=upload, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("stored") == 1, outcomes
    assert Video.objects.filter(owner=fan).count() == 10
    # The refused uploads' files were removed again.
    stored = [p for p in (settings.MEDIA_ROOT / "videos").rglob("*") if p.is_file()]
    assert len(stored) == 1
