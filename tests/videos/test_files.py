"""Stored files: served only through the site's access checks, and deleted with their rows."""

import importlib
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.files.base import ContentFile
from django.test import override_settings
from django.urls import clear_url_caches, reverse

from gallery import services as gallery_services
from gallery.models import GalleryImage
from recognition.models import ModelVersion
from tests import imagefactory as make
from videos.models import Video

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def strips(processed_video):
    for track in processed_video.tracks.all():
        track.thumbnail.save("x.jpg", ContentFile(make.encode(make.face(), "JPEG")), save=True)
    return processed_video


@pytest.fixture
def version(group, members):
    version = ModelVersion(
        group=group,
        number=1,
        sha256="0" * 64,
        embedding_model="m",
        members=["nayeon"],
        training_counts={"nayeon": 1},
        metrics={},
    )
    version.file.save("classifier.npz", ContentFile(b"not really a classifier"), save=True)
    return version


@pytest.fixture
def gallery_image(members):
    data = make.encode(make.face("tom-hanks", 1), "PNG")
    return gallery_services.image_ingest(member=members[0], data=data, name="a.png").image


def stored(video: Video) -> list[Path]:
    folder = Path(django_settings.MEDIA_ROOT) / video.storage_folder()
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def media_names(video, version, image) -> list[str]:
    names = [video.original.name, video.labelled.name, version.file.name, image.file.name]
    names += [t.thumbnail.name for t in video.tracks.all()]
    assert all(names)
    return names


@pytest.mark.parametrize("debug", [True, False], ids=["debug-on", "debug-off"])
def test_no_stored_file_is_served_by_its_media_path_to_anyone(
    client, django_user_model, fan, strips, version, gallery_image, debug
):
    boss = django_user_model.objects.create_superuser("boss", "b@example.org", "pw-boss-123")
    with override_settings(DEBUG=debug):
        clear_url_caches()
        importlib.reload(importlib.import_module("twicesite.urls"))
        try:
            for who in (None, fan, boss):
                client.logout()
                if who is not None:
                    client.force_login(who)
                for name in media_names(strips, version, gallery_image):
                    assert (Path(django_settings.MEDIA_ROOT) / name).is_file()
                    for prefix in ("/media/", "/"):
                        response = client.get(prefix + name)
                        assert response.status_code == 404, (who, prefix + name)
        finally:
            clear_url_caches()
            importlib.reload(importlib.import_module("twicesite.urls"))


def test_a_private_videos_strips_follow_the_videos_rules(client, other_fan, fan, strips):
    url = reverse("videos:thumbnail", args=[strips.uuid, 1])
    assert client.get(url).status_code == 404
    client.force_login(other_fan)
    assert client.get(url).status_code == 404
    client.force_login(fan)
    response = client.get(url)
    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"


def test_an_owner_deletes_their_video_and_every_file_of_it(client, fan, strips):
    files = stored(strips)
    assert len(files) == 4  # original, labelled and two strips
    client.force_login(fan)
    page = client.get(strips.get_absolute_url())
    assert b"Delete this video" in page.content
    response = client.post(reverse("videos:delete", args=[strips.uuid]))
    assert response.status_code == 302 and response["Location"] == reverse("videos:list")
    assert not Video.objects.exists()
    assert not any(f.exists() for f in files)
    assert not (Path(django_settings.MEDIA_ROOT) / strips.storage_folder()).exists()


def test_nobody_else_may_delete_a_video(client, other_fan, fan, strips):
    url = reverse("videos:delete", args=[strips.uuid])
    assert client.post(url).status_code == 404
    client.force_login(other_fan)
    assert client.post(url).status_code == 404
    strips.is_public = True
    strips.save()
    assert client.post(url).status_code == 404  # seeing it is not owning it
    assert b"Delete this video" not in client.get(strips.get_absolute_url()).content
    assert client.get(url).status_code == 405
    assert Video.objects.exists() and len(stored(strips)) == 4


def test_an_admin_delete_removes_the_files_too(client, django_user_model, strips):
    boss = django_user_model.objects.create_superuser("boss", "b@example.org", "pw-boss-123")
    client.force_login(boss)
    files = stored(strips)
    response = client.post(
        reverse("admin:videos_video_changelist"),
        {"action": "delete_selected", "_selected_action": [strips.pk], "post": "yes"},
    )
    assert response.status_code == 302
    assert not Video.objects.exists()
    assert files and not any(f.exists() for f in files)


def test_deleting_a_fan_deletes_their_videos_files(fan, strips):
    files = stored(strips)
    fan.delete()
    assert not Video.objects.exists()
    assert files and not any(f.exists() for f in files)


def test_a_model_version_file_goes_with_its_row(version):
    path = Path(django_settings.MEDIA_ROOT) / version.file.name
    assert path.is_file()
    version.delete()
    assert not path.exists()


def test_a_gallery_image_file_goes_with_its_row(gallery_image):
    path = Path(django_settings.MEDIA_ROOT) / gallery_image.file.name
    assert path.is_file()
    GalleryImage.objects.filter(pk=gallery_image.pk).delete()
    assert not path.exists()


def test_a_split_tracks_strip_is_its_own_and_undo_keeps_the_original(fan, strips):
    from videos import corrections, track_edits

    track = strips.tracks.get(number=1)
    correction = track_edits.track_split(track=track, user=fan, frame=10)
    tail = correction.new_track
    assert tail.thumbnail.name and tail.thumbnail.name != track.thumbnail.name
    corrections.correction_undo(correction=correction, user=fan)
    track.refresh_from_db()
    assert (Path(django_settings.MEDIA_ROOT) / track.thumbnail.name).is_file()
    assert not (Path(django_settings.MEDIA_ROOT) / tail.thumbnail.name).exists()


def test_strips_a_killed_attempt_left_are_removed_and_the_tracks_own_kept(strips):
    from videos.folders import video_remove_unowned_files

    folder = Path(django_settings.MEDIA_ROOT) / strips.storage_folder()
    # A horse killed inside the transaction that stored its tracks: the rows rolled back,
    # its strips and a half-written render stayed.
    (folder / "tracks" / "1-deadbeef.jpg").write_bytes(b"x")
    (folder / ".labelled.mp4.part").write_bytes(b"x")
    (folder / "work" / "3").mkdir(parents=True)
    (folder / "work" / "3" / "segment-0.npz").write_bytes(b"x")
    owned = sorted(p.name for p in (folder / "tracks").iterdir() if p.name != "1-deadbeef.jpg")
    video_remove_unowned_files(video=strips)
    assert sorted(p.name for p in (folder / "tracks").iterdir()) == owned
    assert sorted(p.name for p in folder.iterdir()) == ["labelled.mp4", "original.mp4", "tracks"]


def test_a_track_stored_while_its_video_is_deleted_is_deleted_with_it(strips):
    """A job still storing tracks while its video is deleted: a track added after the delete
    collected the video's rows made that delete fail at its commit, and the owner saw an
    error. It is deleted again, with the new track and every file."""
    from django.db.models.signals import pre_delete

    from videos import services
    from videos.models import Track

    files = stored(strips)
    template = strips.tracks.first()
    added = []

    def job_stores_a_track(sender, instance, **kwargs):
        if not added:  # once, between the collection of the rows and their deletion
            added.append(
                Track.objects.create(
                    video=instance,
                    number=999,
                    first_frame=0,
                    last_frame=1,
                    embedding=template.embedding,
                    samples=template.samples,
                    embedding_model=template.embedding_model,
                )
            )

    pre_delete.connect(job_stores_a_track, sender=Video)
    try:
        services.video_delete(video=strips)
    finally:
        pre_delete.disconnect(job_stores_a_track, sender=Video)
    assert added and not Video.objects.exists() and not Track.objects.exists()
    assert not any(f.exists() for f in files)
