"""A curator at work in a real browser: upload by file picker, pick a face on a group photo."""

import time

import pytest

from gallery.models import GalleryImage, ImageUpload
from tests import imagefactory as make
from tests.conftest import run_worker

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
    deadline = time.monotonic() + 30
    while ImageUpload.objects.count() < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    run_worker("default")
    page.wait_for_function(
        "() => document.querySelectorAll('#upload-list li progress').length === 0"
    )
    page.wait_for_function("() => document.querySelectorAll('#upload-list li').length === 3")
    summary = page.locator("#upload-summary").inner_text()
    assert summary == "2 added, 0 duplicates, 1 refused"
    assert "corrupt or truncated" in page.locator("#upload-list li.rejected").inner_text()
    assert "2 faces" in page.locator("#upload-list li.added", has_text="two-people").inner_text()
    page.screenshot(path=str(tmp_path / "upload.png"))

    group_photo = GalleryImage.objects.get(original_name="two-people.png")
    page.goto(f"/admin/gallery/galleryimage/{group_photo.pk}/change/")
    boxes = page.locator(".face-picker .box")
    assert boxes.count() == 2
    boxes.nth(1).click()
    page.wait_for_selector(".face-picker .box.chosen")
    assert "Face chosen" in page.locator(".face-picker + .help").inner_text()

    group_photo.refresh_from_db()
    assert group_photo.face_box == group_photo.detected_boxes[1]
    assert group_photo.vector() is not None
