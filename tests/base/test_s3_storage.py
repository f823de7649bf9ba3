"""Media on an S3-compatible server (moto's, in a process of its own, spoken to over HTTP):
configuration, the storage helpers, and a video and a gallery image from upload to delete."""

import os
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import reverse
from rq import SimpleWorker

from base.storage import delete_tree, local_copy, local_path, open_for_reading
from core.media.probe import probe
from tests import imagefactory as make
from tests.conftest import run_worker
from tests.twicesite.test_configuration import manage
from twicesite.env import S3_VARIABLES, ConfigError, envs3storage
from videos.models import Video

FULL = {
    "MEDIA_S3_BUCKET": "media-bucket",
    "MEDIA_S3_ENDPOINT_URL": "https://s3.example.org",
    "MEDIA_S3_REGION": "eu-west-1",
    "MEDIA_S3_ACCESS_KEY_ID": "key",
    "MEDIA_S3_SECRET_ACCESS_KEY": "secret",
    "MEDIA_S3_PREFIX": "/site/media/",
}


@pytest.fixture
def s3_env(monkeypatch):
    """No S3 variable set to begin with; the test sets what it needs."""
    for name in (*S3_VARIABLES, "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)

    def set_env(**values):
        for name, value in values.items():
            monkeypatch.setenv(name, value)

    return set_env


# --- configuration --------------------------------------------------------------------------


def test_without_a_bucket_media_stay_on_the_local_disk(s3_env):
    assert envs3storage() is None
    assert django_settings.STORAGES["default"]["BACKEND"].endswith("FileSystemStorage")
    assert "staticfiles" in django_settings.STORAGES


def test_a_bucket_gives_private_objects_under_the_prefix(s3_env):
    s3_env(**FULL)
    entry = envs3storage()
    assert entry["BACKEND"] == "storages.backends.s3.S3Storage"
    options = entry["OPTIONS"]
    assert options["bucket_name"] == "media-bucket"
    assert options["endpoint_url"] == "https://s3.example.org"
    assert options["region_name"] == "eu-west-1"
    assert (options["access_key"], options["secret_key"]) == ("key", "secret")
    assert options["location"] == "site/media"
    assert options["default_acl"] is None and options["querystring_auth"] is True
    assert options["file_overwrite"] is True


def test_without_its_own_keys_the_bucket_takes_the_standard_aws_credentials(s3_env):
    s3_env(MEDIA_S3_BUCKET="b", AWS_ACCESS_KEY_ID="a", AWS_SECRET_ACCESS_KEY="s")
    options = envs3storage()["OPTIONS"]
    assert options["access_key"] is None and options["secret_key"] is None  # boto3 finds them


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MEDIA_S3_ENDPOINT_URL": "http://x"}, "MEDIA_S3_ENDPOINT_URL is set but MEDIA_S3_BUCKET"),
        (
            {"MEDIA_S3_REGION": "r", "MEDIA_S3_PREFIX": "p"},
            "MEDIA_S3_REGION, MEDIA_S3_PREFIX are set but MEDIA_S3_BUCKET is not",
        ),
        (
            {"MEDIA_S3_BUCKET": "b", "MEDIA_S3_ACCESS_KEY_ID": "k"},
            "MEDIA_S3_ACCESS_KEY_ID is set but MEDIA_S3_SECRET_ACCESS_KEY is not",
        ),
        (
            {"MEDIA_S3_BUCKET": "b", "MEDIA_S3_SECRET_ACCESS_KEY": "s"},
            "MEDIA_S3_SECRET_ACCESS_KEY is set but MEDIA_S3_ACCESS_KEY_ID is not",
        ),
        (
            {"MEDIA_S3_BUCKET": "b", "AWS_ACCESS_KEY_ID": "k"},
            "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not",
        ),
        ({"MEDIA_S3_BUCKET": "b", "MEDIA_S3_ENDPOINT_URL": "s3.example.org"}, "http://"),
        ({"MEDIA_S3_BUCKET": "b", "MEDIA_S3_PREFIX": "a/../b"}, "MEDIA_S3_PREFIX"),
    ],
    ids=["no-bucket", "no-bucket-two", "no-secret", "no-key-id", "aws-half", "scheme", "prefix"],
)
def test_a_half_set_s3_configuration_is_refused_with_a_clear_message(s3_env, env, message):
    s3_env(**env)
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        envs3storage()


def test_manage_py_reports_a_half_set_s3_configuration_in_one_line():
    result = manage("check", MEDIA_S3_BUCKET="", MEDIA_S3_ENDPOINT_URL="http://127.0.0.1:9")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "twicesite: configuration error: MEDIA_S3_ENDPOINT_URL is set but MEDIA_S3_BUCKET is not"
    )


# --- the storage helpers on S3 ----------------------------------------------------------------


def test_local_copy_downloads_into_the_work_dir_and_removes_the_copy(s3_media, settings):
    data = os.urandom(3 * 1024 * 1024 + 12345)  # several reads of the 1 MiB chunks
    name = default_storage.save("videos/abc/original.mp4", ContentFile(data))
    assert s3_media.keys() == ["media/videos/abc/original.mp4"]
    field = Video(original=name).original
    assert local_path(name, field.storage) is None  # no local path on S3
    with local_copy(field) as path:
        assert Path(settings.WORK_DIR) in path.parents
        assert path.name == "original.mp4"
        assert path.read_bytes() == data
    assert not path.exists()
    assert not any(Path(settings.WORK_DIR).iterdir())  # its work folder went with it
    assert not Path(settings.MEDIA_ROOT).exists()  # nothing of it on the local media disk


def test_a_stored_file_reads_by_ranges_and_a_replaced_one_fails_the_read(s3_media):
    data = bytes(range(256)) * 40
    name = default_storage.save("a/data.bin", ContentFile(data))
    with open_for_reading(name) as handle:
        assert handle.seek(0, os.SEEK_END) == len(data)
        handle.seek(1000)
        assert handle.read(10) == data[1000:1010]
        handle.seek(len(data) - 5)
        assert handle.read(100) == data[-5:]
        handle.seek(3)
        assert handle.read() == data[3:]
        default_storage.save(name, ContentFile(b"a new version"))  # replaced meanwhile
        handle.seek(0)
        with pytest.raises(OSError, match="replaced while it was read"):
            handle.read(1)
    with pytest.raises(FileNotFoundError):
        open_for_reading("a/nothing-here.bin")


def test_delete_tree_removes_every_object_under_the_folder_and_nothing_beside(s3_media):
    for name in ("a/1.txt", "a/b/2.txt", "a/b/c/3.txt", "ab/4.txt", "b/a/5.txt"):
        default_storage.save(name, ContentFile(name.encode()))
    assert delete_tree("a") == 3
    assert s3_media.keys() == ["media/ab/4.txt", "media/b/a/5.txt"]
    assert delete_tree("a/") == 0  # already gone
    with pytest.raises(ValueError):
        delete_tree("/")  # never the whole bucket


# --- the site on S3, end to end -------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_video_on_s3_is_processed_served_by_ranges_and_deleted_with_every_object(
    s3_media, celebs, stage_clip, fan, other_fan, client, rq_queue, settings
):
    client.force_login(fan)
    with stage_clip.open("rb") as handle:
        response = client.post(
            reverse("videos:upload"), {"group": celebs.pk, "title": "Stage", "file": handle}
        )
    assert response.status_code == 201, response.content
    video = Video.objects.get()
    folder = video.storage_folder()
    assert s3_media.read(video.original.name) == stage_clip.read_bytes()

    run_worker("video")  # a real worker process, configured for the bucket by the environment
    video.refresh_from_db()
    assert video.state == Video.State.DONE, video.error
    labelled = s3_media.read(video.labelled.name)
    assert f"media/{folder}/labelled.mp4" in s3_media.keys(folder)
    with local_copy(video.labelled) as path:
        assert probe(path).frames == 60
    assert not any(Path(settings.WORK_DIR).glob("*/*"))  # the workers' copies are gone
    assert not Path(settings.MEDIA_ROOT).exists()  # nothing went to the local disk

    # Played with seeking: ranges of the labelled MP4, through the view's access check.
    url = reverse("videos:file", args=[video.uuid, "labelled"])
    size = len(labelled)
    part = client.get(url, HTTP_RANGE="bytes=100-1099")
    assert part.status_code == 206
    assert part["Content-Range"] == f"bytes 100-1099/{size}"
    assert part["Content-Length"] == "1000"
    assert b"".join(part.streaming_content) == labelled[100:1100]
    tail = client.get(url, HTTP_RANGE=f"bytes={size - 4000}-")
    assert tail.status_code == 206 and b"".join(tail.streaming_content) == labelled[-4000:]
    suffix = client.get(url, HTTP_RANGE="bytes=-300")
    assert b"".join(suffix.streaming_content) == labelled[-300:]
    assert client.get(url, HTTP_RANGE=f"bytes={size}-").status_code == 416
    whole = client.get(url)
    assert whole.status_code == 200 and whole["Content-Length"] == str(size)
    assert b"".join(whole.streaming_content) == labelled
    assert part["Content-Disposition"] == whole["Content-Disposition"]
    assert 'inline; filename="Stage-labelled.mp4"' == whole["Content-Disposition"]
    assert part["Content-Type"] == "video/mp4"

    # The face strips, each its own object, served by the same rules.
    tracks = list(video.tracks.exclude(thumbnail=""))
    assert tracks and len(tracks) == video.tracks.count()
    for track in tracks:
        response = client.get(reverse("videos:thumbnail", args=[video.uuid, track.number]))
        assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
        assert b"".join(response.streaming_content) == s3_media.read(track.thumbnail.name)
        assert track.thumbnail.name.startswith(f"{folder}/tracks/")

    # Another fan sees none of it: the check runs before any byte is read from the bucket.
    client.force_login(other_fan)
    assert client.get(url, HTTP_RANGE="bytes=0-99").status_code == 404
    assert client.get(reverse("videos:thumbnail", args=[video.uuid, 1])).status_code == 404

    client.force_login(fan)
    gallery_keys = s3_media.keys("gallery/")
    assert gallery_keys  # the trained group's images are in the bucket too
    assert len(s3_media.keys(folder)) >= 3  # original, labelled, strips
    response = client.post(reverse("videos:delete", args=[video.uuid]))
    assert response.status_code == 302
    assert not Video.objects.exists()
    assert s3_media.keys(f"{folder}/") == []
    assert s3_media.keys("gallery/") == gallery_keys  # nothing else went


@pytest.mark.django_db(transaction=True)
def test_a_long_video_on_s3_goes_through_segment_and_render_part_jobs_and_leaves_no_work(
    s3_media, celebs, stage_clip, fan, rq_queue, settings, monkeypatch
):
    from videos import services

    # The worker process reads these from its environment: three segments, two render parts.
    for name, value in (
        ("VIDEO_SEGMENTS_AS_JOBS", "true"),
        ("VIDEO_SEGMENT_SECONDS", "1"),
        ("VIDEO_RENDER_PART_SECONDS", "1"),
    ):
        monkeypatch.setenv(name, value)
    settings.VIDEO_SEGMENTS_AS_JOBS = True
    video = services.video_submit(source=stage_clip, name="stage.mp4", group=celebs, owner=fan)
    run_worker("video")
    video.refresh_from_db()
    assert video.state == Video.State.DONE, video.error
    assert (video.segments, video.segments_done) == (2, 2)  # the render parts
    with local_copy(video.labelled) as path:
        got = probe(path)
    assert (got.frames, got.has_audio) == (60, True)
    folder = video.storage_folder()
    assert [key for key in s3_media.keys(folder) if "/work/" in key] == []
    assert not any(Path(settings.WORK_DIR).glob("*/*"))  # the workers' copies are gone
    assert not Path(settings.MEDIA_ROOT).exists()  # nothing went to the local disk


@pytest.mark.django_db(transaction=True)
def test_a_gallery_image_uploaded_on_s3_is_cleaned_and_served_to_staff_only(
    s3_media, members, fan, client, django_user_model, rq_queue
):
    from gallery.models import GalleryImage, ImageUpload

    nayeon = members[0]
    boss = django_user_model.objects.create_superuser("boss", "b@example.org", "pw-boss-123")
    client.force_login(boss)
    data = make.encode(make.face("tom-hanks", 1), "PNG")
    response = client.post(
        reverse("gallery:upload_create", args=[nayeon.pk]),
        {"file": ContentFile(data, name="face.png")},
    )
    assert response.status_code == 202, response.content
    assert len(s3_media.keys("gallery/incoming/")) == 1  # the file as sent, waiting for its job
    SimpleWorker([rq_queue], connection=rq_queue.connection).work(burst=True)
    body = client.get(response.json()["status_url"]).json()
    assert (body["state"], body["outcome"]) == ("done", "added"), body

    image = GalleryImage.objects.get(member=nayeon)
    stored = s3_media.read(image.file.name)
    assert s3_media.keys("gallery/incoming/") == []  # the file as sent is gone once ingested
    assert ImageUpload.objects.get().file == ""
    served = client.get(reverse("gallery:file", args=[image.uuid]))
    assert served.status_code == 200
    assert b"".join(served.streaming_content) == stored
    assert served["Content-Length"] == str(len(stored))
    assert served["Content-Disposition"] == 'inline; filename="face.png"'
    thumbnail = client.get(reverse("gallery:thumbnail", args=[image.uuid]))
    assert thumbnail.status_code == 200 and thumbnail["Content-Type"] == "image/jpeg"

    grants = s3_media.client.get_object_acl(Bucket=s3_media.name, Key=f"media/{image.file.name}")
    assert all("URI" not in grant["Grantee"] for grant in grants["Grants"])  # no public grant

    client.force_login(fan)
    assert client.get(reverse("gallery:file", args=[image.uuid])).status_code == 302  # to login

    GalleryImage.objects.filter(pk=image.pk).delete()
    assert s3_media.keys(image.file.name) == []
