"""Curators work in admin; nobody else sees the gallery."""

from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.urls import reverse
from rq import SimpleWorker

from gallery import services
from gallery.models import GalleryImage, ImageUpload
from tests import imagefactory as make


@pytest.fixture
def image(tom):
    return services.image_ingest(
        member=tom, data=make.encode(make.face("tom-hanks", 1), "PNG"), name="a.png"
    ).image


def upload(client, member, data, name):
    url = reverse("gallery:upload_create", args=[member.pk])
    from django.core.files.uploadedfile import SimpleUploadedFile

    return client.post(url, {"file": SimpleUploadedFile(name, data)})


def outcome(client, response, queue):
    """Run the ingest job the upload queued, then read what the page would poll."""
    assert response.status_code == 202
    assert response.json()["state"] == "queued"
    SimpleWorker([queue], connection=queue.connection).work(burst=True)
    return client.get(response.json()["status_url"]).json()


@pytest.mark.django_db(transaction=True)
def test_a_curator_uploads_files_and_sees_each_outcome(client, curator, tom, rq_queue):
    client.force_login(curator)
    page = client.get(reverse("admin:gallery_member_upload", args=[tom.pk]))
    assert page.status_code == 200
    assert b"Drop images here" in page.content

    good = upload(client, tom, make.encode(make.face("tom-hanks", 1), "PNG"), "good.png")
    body = outcome(client, good, rq_queue)
    assert (body["state"], body["outcome"], body["flags"]) == ("done", "added", [])

    bad = upload(client, tom, make.truncated_jpeg(), "broken.jpg")
    body = outcome(client, bad, rq_queue)
    assert (body["name"], body["outcome"]) == ("broken.jpg", "rejected")
    assert "truncated" in body["reason"]
    assert GalleryImage.objects.filter(member=tom).count() == 1
    # The files as sent are gone once ingested; the gallery keeps its own clean copy.
    assert ImageUpload.objects.exclude(file="").count() == 0
    assert not list((Path(django_settings.MEDIA_ROOT) / "gallery/incoming").glob("*"))


def test_an_upload_over_the_size_limit_is_refused_without_storing_it(
    client, curator, tom, settings
):
    settings.GALLERY_MAX_BYTES = 1000
    client.force_login(curator)
    response = upload(client, tom, b"x" * 2000, "big.png")
    assert response.status_code == 202
    body = response.json()
    assert (body["state"], body["outcome"]) == ("done", "rejected")
    assert body["reason"] == "file too large (2 kB, limit 1 kB)"
    assert ImageUpload.objects.get().file == ""


def test_a_fan_cannot_upload_to_the_gallery(client, django_user_model, tom):
    fan = django_user_model.objects.create_user("fan", password="pw-fan-123")
    client.force_login(fan)
    response = upload(client, tom, make.encode(make.face(), "PNG"), "x.png")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
    assert GalleryImage.objects.count() == 0


def test_gallery_files_are_for_staff_only(client, django_user_model, curator, image):
    thumb = reverse("gallery:thumbnail", args=[image.uuid])
    assert client.get(thumb).status_code == 302
    fan = django_user_model.objects.create_user("fan", password="pw-fan-123")
    client.force_login(fan)
    assert client.get(thumb).status_code == 302
    client.force_login(curator)
    response = client.get(thumb)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    assert client.get(reverse("gallery:file", args=[image.uuid])).status_code == 200


def test_list_filters_and_health_line_render(client, curator, image, tom):
    client.force_login(curator)
    changelist = reverse("admin:gallery_galleryimage_changelist")
    for query in ["", "?flag=any", "?flag=none", "?faces=2%2B", "?status__exact=pending"]:
        assert client.get(changelist + query).status_code == 200
    members = client.get(reverse("admin:gallery_member_changelist"))
    assert b"0 approved" in members.content and b"1 pending" in members.content


def test_bulk_approve_skips_images_without_a_face(client, curator, image, tom):
    no_face = services.image_ingest(
        member=tom, data=make.encode(make.no_face(), "PNG"), name="n.png"
    ).image
    client.force_login(curator)
    response = client.post(
        reverse("admin:gallery_galleryimage_changelist"),
        {"action": "approve", "_selected_action": [image.pk, no_face.pk]},
        follow=True,
    )
    assert b"Approved 1 image(s)." in response.content
    assert b"Skipped 1 image(s) without a chosen face" in response.content
    image.refresh_from_db()
    no_face.refresh_from_db()
    assert image.status == GalleryImage.Status.APPROVED
    assert no_face.status == GalleryImage.Status.PENDING


def test_picking_a_face_needs_post_and_a_valid_choice(client, curator, tom):
    two = services.image_ingest(
        member=tom, data=make.encode(make.two_faces(), "PNG"), name="two.png"
    ).image
    client.force_login(curator)
    url = reverse("gallery:pick_face", args=[two.pk])
    assert client.get(url).status_code == 405
    assert client.post(url, {"face": "7"}).status_code == 400
    response = client.post(url, {"face": "0"})
    assert response.status_code == 200
    assert response.json()["face_box"] == two.detected_boxes[0]


def test_curators_cannot_manage_users(client, curator):
    client.force_login(curator)
    assert client.get(reverse("admin:auth_user_changelist")).status_code == 403
    assert client.get(reverse("admin:gallery_galleryimage_changelist")).status_code == 200


def test_member_photo_is_their_first_approved_face_for_review_pages(
    client, django_user_model, image, tom
):
    url = reverse("gallery:member_photo", args=[tom.pk])
    assert client.get(url).status_code == 302  # gallery faces are not for the whole world
    client.force_login(django_user_model.objects.create_user("fan", password="pw-fan-123"))
    assert client.get(url).status_code == 404  # nothing approved yet
    services.images_approve(images=[image])
    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"


def test_approving_a_flagged_image_asks_again_naming_its_flags(client, curator, image, tom, keanu):
    GalleryImage.objects.filter(pk=image.pk).update(looks_like=keanu, duplicate_of=None)
    url = reverse("admin:gallery_galleryimage_changelist")
    client.force_login(curator)
    asked = client.post(url, {"action": "approve", "_selected_action": [image.pk]})
    assert asked.status_code == 200
    page = asked.content.decode()
    assert "Approve flagged images?" in page and "looks like Keanu Reeves" in page
    image.refresh_from_db()
    assert image.status == GalleryImage.Status.PENDING  # nothing approved yet
    done = client.post(
        url, {"action": "approve", "_selected_action": [image.pk], "confirmed": "1"}, follow=True
    )
    assert b"Approved 1 image(s)." in done.content
    image.refresh_from_db()
    assert image.status == GalleryImage.Status.APPROVED


def test_an_image_without_flags_is_approved_at_once(client, curator, image):
    client.force_login(curator)
    response = client.post(
        reverse("admin:gallery_galleryimage_changelist"),
        {"action": "approve", "_selected_action": [image.pk]},
        follow=True,
    )
    assert b"Approved 1 image(s)." in response.content


def test_a_new_member_gets_the_next_free_palette_colour_and_a_picker(client, curator, tom):
    from gallery.models import PALETTE

    client.force_login(curator)
    page = client.get(reverse("admin:gallery_member_add") + f"?group={tom.group.pk}")
    html = page.content.decode()
    assert 'type="color"' in html
    assert f'value="{PALETTE[1]}"' in html  # Tom has the first colour
    group_page = client.get(reverse("admin:gallery_group_change", args=[tom.group.pk])).content
    assert b'type="color"' in group_page
