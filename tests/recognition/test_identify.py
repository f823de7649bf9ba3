"""“Who is this?” through its JSON endpoint: real pictures made from the fixture faces, a real
classifier trained on them, and every kind of bad input."""

import io
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse
from PIL import Image

from gallery.models import GalleryImage, Group
from gallery.services import group_get_or_create, member_get_or_create
from recognition.models import ModelVersion
from tests import imagefactory as make

pytestmark = pytest.mark.django_db


def api(group="celebs"):
    return reverse("recognition:identify_api", args=[group])


def group_photo(people, *, side=180, gap=60):
    """The fixture faces side by side; returns the picture and where each face was put."""
    canvas = Image.new("RGB", (gap + len(people) * (side + gap), side + 2 * gap), (96, 104, 120))
    places = []
    for k, (person, index) in enumerate(people):
        x = gap + k * (side + gap)
        canvas.paste(make.face(person, index).resize((side, side)), (x, gap))
        places.append((x, gap, x + side, gap + side))
    return canvas, places


def named(data: bytes, name: str):
    handle = io.BytesIO(data)
    handle.name = name
    return handle


def upload(client, data: bytes, name="picture.jpg", group="celebs"):
    return client.post(api(group), {"image": named(data, name)})


def centre_in(box, place) -> bool:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return place[0] <= cx <= place[2] and place[1] <= cy <= place[3]


def files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()} if folder.exists() else set()


def test_a_group_photo_gets_a_box_and_name_on_every_face(client, fan, celebs, media_root):
    people = [("tom-hanks", 1), ("halle-berry", 2), ("drew-barrymore", 1), ("keanu-reeves", 3)]
    picture, places = group_photo(people)
    kept_before = files_under(media_root), GalleryImage.objects.count()
    client.force_login(fan)

    response = upload(client, make.encode(picture, "JPEG", quality=92))

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["width"], body["height"]) == picture.size
    assert body["group"] == {"slug": "celebs", "name": "Celebs"}
    faces = body["faces"]
    assert [f["member"] for f in faces] == ["tom-hanks", "halle-berry", None, "keanu-reeves"]
    assert [f["name"] for f in faces] == ["Tom Hanks", "Halle Berry", None, "Keanu Reeves"]
    assert [f["verdict"] for f in faces] == ["named", "named", "stranger", "named"]
    for face, place in zip(faces, places, strict=True):
        assert centre_in(face["box"], place)
        assert 0 < face["confidence"] <= 1
    # Beside each named face, her gallery photo; a stranger has none.
    tom = celebs.members.get(slug="tom-hanks")
    assert faces[0]["photo"] == reverse("gallery:member_photo", args=[tom.pk])
    assert client.get(faces[0]["photo"])["Content-Type"] == "image/jpeg"
    assert faces[2]["photo"] is None
    # Nothing is kept: no file, no gallery image.
    assert (files_under(media_root), GalleryImage.objects.count()) == kept_before


def test_boxes_are_in_the_upright_picture_of_an_exif_rotated_photo(client, fan, celebs):
    people = [("miley-cyrus", 1), ("will-smith", 2), ("halle-berry", 4)]
    upright, places = group_photo(people, side=700, gap=200)  # 2900x1100: shrunk to decode
    assert max(upright.size) > 2048
    # A phone keeps the picture as the sensor saw it, sideways, and says in EXIF how to turn it.
    sideways = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    client.force_login(fan)

    response = upload(client, make.encode(sideways, "JPEG", quality=90, exif=exif.tobytes()))

    body = response.json()
    assert (body["width"], body["height"]) == upright.size == (2900, 1100)
    faces = body["faces"]
    assert [f["member"] for f in faces] == ["miley-cyrus", None, "halle-berry"]
    for face, place in zip(faces, places, strict=True):
        left, top, right, bottom = face["box"]
        assert centre_in(face["box"], place)
        # In the upright picture's own pixels: a 700 px face has a box of about that size.
        assert 450 < right - left < 800 and 450 < bottom - top < 850


def test_a_face_the_model_is_unsure_of_says_so_with_the_two_closest_members(client, fan, celebs):
    # Jessica Alba is not in the gallery; this model lets her through as Miley Cyrus, only just.
    client.force_login(fan)
    response = upload(client, make.encode(make.photo("jessica-alba", 0, side=360), "PNG"), "a.png")

    (face,) = response.json()["faces"]
    assert face["verdict"] == "unsure"
    first, second = face["candidates"]
    assert first["member"] == face["member"] == "miley-cyrus"
    assert second["member"] in {"tom-hanks", "halle-berry", "keanu-reeves"}
    for candidate in (first, second):
        member = celebs.members.get(slug=candidate["member"])
        assert candidate["name"] == member.name
        assert candidate["photo"] == reverse("gallery:member_photo", args=[member.pk])


def test_bad_pictures_get_a_clear_json_error_and_never_a_500(client, fan, celebs, settings):
    client.force_login(fan)
    bad = {
        "a text file": (b"these are not the pixels you are looking for\n", "notes.txt", 400),
        "a truncated JPEG": (make.truncated_jpeg(), "cut.jpg", 400),
        "a decompression bomb": (make.decompression_bomb(), "bomb.png", 413),
        "an empty file": (b"", "empty.jpg", 400),
    }
    for what, (data, name, status) in bad.items():
        response = upload(client, data, name)
        assert response.status_code == status, what
        assert response["Content-Type"] == "application/json", what
        assert response.json()["error"], what
    assert "not an image" in upload(client, bad["a text file"][0], "notes.txt").json()["error"]
    assert "too large" in upload(client, make.decompression_bomb(), "bomb.png").json()["error"]

    settings.GALLERY_MAX_BYTES = 10_000
    big = make.encode(make.photo(side=600), "PNG")
    assert len(big) > 10_000
    response = upload(client, big, "big.png")
    assert response.status_code == 413 and "too large" in response.json()["error"]

    assert client.post(api()).json() == {"error": "send the picture in the multipart field “image”"}
    assert client.get(api()).status_code == 405
    assert upload(client, b"x", group="nobody").status_code == 404
    client.logout()
    assert upload(client, make.encode(make.photo(), "PNG")).status_code == 401


def test_a_request_without_its_csrf_token_is_refused_in_json(fan, celebs):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(fan)
    response = strict.post(api(), {"image": named(make.encode(make.photo(), "PNG"), "a.png")})
    assert response.status_code == 403
    assert "CSRF" in response.json()["error"]


def test_a_group_with_no_members_or_no_model_says_why(client, fan):
    client.force_login(fan)
    picture = make.encode(make.photo(), "PNG")
    group_get_or_create(slug="empty", name="Empty")
    response = upload(client, picture, group="empty")
    assert response.status_code == 409
    assert response.json()["error"] == "Empty has no members yet, so nobody can be named"

    untrained = group_get_or_create(slug="new", name="New")
    member_get_or_create(group=untrained, slug="mina")
    response = upload(client, picture, group="new")
    assert response.status_code == 409
    assert "New has no trained model yet" in response.json()["error"]


def test_fans_may_ask_about_so_many_pictures_an_hour(client, fan, celebs, settings, rq_queue):
    settings.IDENTIFY_PER_HOUR = 2
    client.force_login(fan)
    picture = make.encode(make.photo(), "PNG")
    assert [upload(client, picture).status_code for _ in range(2)] == [200, 200]
    refused = upload(client, picture)
    assert refused.status_code == 429
    assert "2 pictures in the last hour; try again in 60 minutes" in refused.json()["error"]

    curator = type(fan).objects.create_user("curator", password="pw", is_staff=True)
    client.force_login(curator)
    assert [upload(client, picture).status_code for _ in range(3)] == [200, 200, 200]


def test_the_page_opens_on_the_group_used_last(client, fan, celebs):
    aespa = Group.objects.create(name="Aespa", slug="aespa")  # first by name
    ModelVersion.objects.create(
        group=aespa, number=1, sha256="0" * 64, embedding_model="m", members=["karina"],
        training_counts={"karina": 1}, metrics={}, is_active=True,
    )  # fmt: skip
    Group.objects.create(name="Untrained", slug="untrained")
    client.force_login(fan)
    page = client.get(reverse("recognition:identify")).content.decode()
    assert '<option value="aespa" selected>Aespa</option>' in page
    assert "Untrained" not in page  # no model: nothing to ask it
    assert upload(client, make.encode(make.photo(), "PNG")).status_code == 200
    page = client.get(reverse("recognition:identify")).content.decode()
    assert '<option value="celebs" selected>Celebs</option>' in page


def test_the_page_is_for_signed_in_fans(client):
    response = client.get(reverse("recognition:identify"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_a_fan_is_answered_when_redis_is_away(client, fan, celebs, own_redis):
    own_redis.crash()  # the hourly limit cannot be counted; the picture is answered anyway
    client.force_login(fan)
    response = upload(client, make.encode(make.photo("keanu-reeves", 1), "PNG"))
    assert response.status_code == 200
    assert [f["member"] for f in response.json()["faces"]] == ["keanu-reeves"]
