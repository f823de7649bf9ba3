"""A curator at work in a real browser: upload by file picker, pick a face on a group photo."""

import pytest

from gallery.models import GalleryImage, ImageUpload
from tests import imagefactory as make
from tests.conftest import run_worker, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_curator_uploads_images_and_picks_a_face(page, admin_login, curator, tom, tmp_path):
    files = {
        "one.png": make.encode(make.face("tom-hanks", 1), "PNG"),
        "two-people.png": make.encode(make.two_faces(), "PNG"),
        "broken.jpg": make.truncated_jpeg(),
    }
    paths = []
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        paths.append(str(tmp_path / name))

    admin_login("curie", "pw-curator-1")
    page.goto(f"/admin/gallery/member/{tom.pk}/upload/")
    page.set_input_files("#file-input", paths)
    # Each file is stored and queued at once; a worker cleans it and the page follows.
    wait_for(lambda: ImageUpload.objects.count() >= 3, 30, "three stored uploads")
    run_worker("default")
    page.wait_for_function(
        "() => document.querySelectorAll('#upload-list li progress').length === 0"
    )
    page.wait_for_function("() => document.querySelectorAll('#upload-list li').length === 3")
    summary = page.locator("#upload-summary").inner_text()
    assert summary == "2 added, 0 duplicates, 1 refused"
    assert "corrupt or truncated" in page.locator("#upload-list li.rejected").inner_text()
    two = page.locator("#upload-list li.added", has_text="two-people").inner_text()
    assert "2 faces" in two and "2 faces: 2 faces" not in two
    # The health line counts what was just added, without a reload.
    assert "2 pending" in page.locator("#health-line").inner_text()
    page.screenshot(path=str(tmp_path / "upload.png"))

    group_photo = GalleryImage.objects.get(original_name="two-people.png")
    page.goto(f"/admin/gallery/galleryimage/{group_photo.pk}/change/")
    boxes = page.locator(".face-picker .box")
    assert boxes.count() == 2
    assert page.locator(".field-face_box .readonly").inner_text() == "-"
    assert page.locator(".field-too_small .readonly").inner_text() == "no"  # words, no red cross
    boxes.nth(1).click()
    page.wait_for_selector(".face-picker .box.chosen")
    # The read-only fields follow the choice at once.
    page.wait_for_function(
        "() => document.querySelector('.field-face_box .readonly').textContent.startsWith('[')"
    )
    assert page.locator(".field-embedding_model .readonly").inner_text() != "-"
    assert "Face chosen" in page.locator(".face-picker + .help").inner_text()

    group_photo.refresh_from_db()
    assert group_photo.face_box == group_photo.detected_boxes[1]
    assert group_photo.vector() is not None


def test_approving_a_flagged_image_asks_again_and_new_members_get_a_colour(
    page, admin_login, curator, tom, keanu
):
    from gallery import services
    from gallery.models import PALETTE

    image = services.image_ingest(
        member=tom, data=make.encode(make.face("tom-hanks", 1), "PNG"), name="a.png"
    ).image
    GalleryImage.objects.filter(pk=image.pk).update(looks_like=keanu)
    admin_login("curie", "pw-curator-1")
    page.goto("/admin/gallery/galleryimage/")
    page.check("#result_list tbody input.action-select")
    page.select_option("select[name=action]", "approve")
    page.click("button[name=index]")
    assert page.locator(".flagged-list").inner_text().endswith("looks like Keanu Reeves")
    image.refresh_from_db()
    assert image.status == GalleryImage.Status.PENDING
    page.get_by_role("button", name="Approve all 1 anyway").click()
    assert "Approved 1 image(s)." in page.locator(".messagelist").inner_text()
    image.refresh_from_db()
    assert image.status == GalleryImage.Status.APPROVED

    page.goto(f"/admin/gallery/member/add/?group={tom.group.pk}")
    colour = page.locator("#id_color")
    assert colour.get_attribute("type") == "color"
    assert colour.input_value() == PALETTE[2]  # Tom and Keanu have the first two
