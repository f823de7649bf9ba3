"""Curators work in admin; nobody else sees the gallery."""

import pytest
from django.urls import reverse

from gallery import services
from gallery.models import GalleryImage
from tests import imagefactory as make


@pytest.fixture
def image(tom):
    return services.image_ingest(
        member=tom, data=make.encode(make.face("tom-hanks", 1), "PNG"), name="a.png"
    ).image


def upload(client, member, data, name):
    url = reverse("admin:gallery_member_upload_file", args=[member.pk])
    from django.core.files.uploadedfile import SimpleUploadedFile

    return client.post(url, {"file": SimpleUploadedFile(name, data)})


def test_a_curator_uploads_files_and_sees_each_outcome(client, curator, tom):
    client.force_login(curator)
    page = client.get(reverse("admin:gallery_member_upload", args=[tom.pk]))
    assert page.status_code == 200
    assert b"Drop images here" in page.content

    good = upload(client, tom, make.encode(make.face("tom-hanks", 1), "PNG"), "good.png")
    assert good.status_code == 201
    assert good.json()["outcome"] == "added"
    assert good.json()["flags"] == []

    bad = upload(client, tom, make.truncated_jpeg(), "broken.jpg")
    assert bad.status_code == 200
    assert bad.json() == {
        "name": "broken.jpg",
        "outcome": "rejected",
        "reason": bad.json()["reason"],
    }
    assert "truncated" in bad.json()["reason"]
    assert GalleryImage.objects.filter(member=tom).count() == 1


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
    url = reverse("admin:gallery_galleryimage_pick_face", args=[two.pk])
    assert client.get(url).status_code == 405
    assert client.post(url, {"face": "7"}).status_code == 400
    response = client.post(url, {"face": "0"})
    assert response.status_code == 200
    assert response.json()["face_box"] == two.detected_boxes[0]


def test_curators_cannot_manage_users(client, curator):
    client.force_login(curator)
    assert client.get(reverse("admin:auth_user_changelist")).status_code == 403
    assert client.get(reverse("admin:gallery_galleryimage_changelist")).status_code == 200


def test_member_photo_is_their_first_approved_face_for_review_pages(client, image, tom):
    url = reverse("gallery:member_photo", args=[tom.pk])
    assert client.get(url).status_code == 404  # nothing approved yet
    services.images_approve(images=[image])
    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
