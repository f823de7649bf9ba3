"""The one cleaning path for uploads, scraping and imports, on every awkward input."""

import numpy as np
import pytest

from core.images import encode_jpeg
from gallery import services
from gallery.models import GalleryImage
from tests import imagefactory as make


def ingest(member, data, name="x.jpg", **kwargs):
    return services.image_ingest(member=member, data=data, name=name, **kwargs)


def media_files(media_root):
    return [p for p in media_root.rglob("*") if p.is_file()] if media_root.exists() else []


def test_an_image_with_one_clear_face_is_ready_for_approval(tom):
    result = ingest(tom, make.encode(make.face("tom-hanks", 1), "PNG"), "001.png")
    image = result.image
    assert result.outcome == "added"
    assert image.status == GalleryImage.Status.PENDING
    assert image.face_count == 1
    assert image.ready_for_approval()
    assert image.vector().shape == (512,)  # a new group's model is ArcFace
    assert image.embedding_model
    assert image.file.name.endswith(".png")
    assert image.original_name == "001.png"
    assert image.flags() == []


def test_import_approves_an_image_with_one_clear_face(tom):
    result = ingest(tom, make.encode(make.photo(), "JPEG"), approve=True)
    assert result.image.status == GalleryImage.Status.APPROVED


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty file"),
        (make.html_as_jpg(), "not an image"),
        (make.truncated_jpeg(), "corrupt or truncated"),
        (make.decompression_bomb(), "image too large"),
    ],
    ids=["zero-byte", "html-as-jpg", "truncated-jpeg", "decompression-bomb"],
)
def test_a_bad_file_is_rejected_with_a_reason_and_leaves_nothing(tom, media_root, data, reason):
    result = ingest(tom, data, "bad.jpg")
    assert result.outcome == "rejected"
    assert reason in result.reason
    assert GalleryImage.objects.count() == 0
    assert media_files(media_root) == []


@pytest.mark.parametrize(
    "data",
    [make.animated_gif(), make.cmyk_jpeg(), make.png_16bit(), make.rgba_png()],
    ids=["gif", "cmyk-jpeg", "16-bit-png", "rgba-png"],
)
def test_odd_formats_become_rgb_images_with_their_face_found(tom, data):
    result = ingest(tom, data)
    assert result.outcome == "added"
    assert result.image.face_count == 1
    with result.image.file.open("rb") as handle:
        stored = make.Image.open(handle)
        assert stored.mode == "RGB"


def test_a_rotated_phone_photo_is_turned_upright_before_faces_are_looked_for(tom):
    result = ingest(tom, make.rotated_phone_photo(), "IMG_0001.JPG")
    assert result.image.face_count == 1
    left, top, right, bottom = result.image.face_box
    assert 60 < left < 150 and 60 < top < 150  # the face sits in the middle of the photo


def test_two_faces_wait_for_the_curator_to_pick_one(tom):
    image = ingest(tom, make.encode(make.two_faces(), "PNG")).image
    assert image.face_count == 2
    assert image.face_box is None
    assert "2 faces" in image.flags()
    assert services.images_approve(images=[image]) == (0, 1)

    right_face = max(range(2), key=lambda i: image.detected_boxes[i][0])
    services.image_choose_face(image=image, index=right_face)
    image.refresh_from_db()
    assert image.face_box == image.detected_boxes[right_face]
    assert image.vector() is not None
    assert services.images_approve(images=[image]) == (1, 0)


def test_no_face_is_flagged_and_the_whole_image_can_be_chosen(tom):
    image = ingest(tom, make.encode(make.no_face(), "PNG")).image
    assert image.face_count == 0
    assert "no face" in image.flags()
    services.image_choose_face(image=image, index=None)
    image.refresh_from_db()
    assert image.face_box == [0, 0, 200, 200]


def test_choosing_a_face_that_was_not_detected_is_refused(tom):
    image = ingest(tom, make.encode(make.no_face(), "PNG")).image
    with pytest.raises(ValueError, match="no detected face number 3"):
        services.image_choose_face(image=image, index=3)


def test_a_small_image_is_flagged(tom):
    image = ingest(tom, make.encode(make.face().resize((48, 48)), "PNG")).image
    assert image.is_small
    assert "small" in image.flags()


def test_the_same_file_twice_is_a_duplicate_and_not_stored_again(tom, keanu):
    data = make.encode(make.face("tom-hanks", 1), "PNG")
    first = ingest(tom, data)
    again = ingest(keanu, data)
    assert again.outcome == "duplicate"
    assert again.image == first.image
    assert GalleryImage.objects.count() == 1


def test_near_duplicates_are_skipped_when_scraping_and_flagged_otherwise(tom):
    original = ingest(tom, make.encode(make.face("tom-hanks", 2), "PNG")).image
    recompressed = encode_jpeg(np.asarray(make.face("tom-hanks", 2).resize((150, 150))), 70)

    skipped = ingest(tom, recompressed, skip_near_duplicates=True)
    assert skipped.outcome == "duplicate"

    kept = ingest(tom, recompressed).image  # the ingest refreshes the flags itself
    assert kept.duplicate_of == original
    assert "duplicate" in kept.flags()


def test_an_image_that_looks_like_another_member_is_flagged(tom, keanu):
    for i in range(3):
        ingest(tom, make.encode(make.face("tom-hanks", i), "PNG"))
        ingest(keanu, make.encode(make.face("keanu-reeves", i), "PNG"))
    mislabelled = ingest(keanu, make.encode(make.face("tom-hanks", 3), "PNG")).image

    stats = services.group_refresh_flags(group=tom.group)

    mislabelled.refresh_from_db()
    assert mislabelled.looks_like == tom
    assert f"looks like {tom}" in mislabelled.flags()
    assert stats["lookalikes"] == 1


def test_rejecting_an_image_clears_it_from_the_flags_of_others(tom):
    original = ingest(tom, make.encode(make.face("tom-hanks", 2), "PNG")).image
    copy = ingest(tom, make.encode(make.face("tom-hanks", 2).resize((130, 130)), "PNG")).image
    assert copy.duplicate_of == original

    services.images_reject(images=[original])  # refreshes the others' flags itself
    copy.refresh_from_db()
    assert copy.duplicate_of is None


def test_a_batch_refreshes_the_flags_once_at_its_end(tom):
    original = ingest(tom, make.encode(make.face("tom-hanks", 2), "PNG")).image
    with services.flags_refreshed_once() as refreshed:
        copy = ingest(tom, make.encode(make.face("tom-hanks", 2).resize((130, 130)), "PNG")).image
        assert copy.duplicate_of is None  # not yet: the block refreshes when it ends
    copy.refresh_from_db()
    assert copy.duplicate_of == original
    assert refreshed[tom.group.pk]["duplicates"] == 1


@pytest.mark.django_db(transaction=True)
def test_deleting_an_image_deletes_its_file(group, media_root):
    member = services.member_get_or_create(group=group, slug="tom-hanks")
    image = ingest(member, make.encode(make.face(), "PNG")).image
    path = media_root / image.file.name
    assert path.exists()
    member.delete()  # the cascade deletes the image row too
    assert not path.exists()
