"""“Who is this?” in Chromium: a picture pasted with Ctrl-V comes back with a box and a name on
every face, at a phone's and a desktop's size."""

import base64

import pytest

from tests import imagefactory as make
from tests.conftest import sign_in
from tests.recognition.test_identify import group_photo

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SIZES = {"phone": (390, 844), "desktop": (1440, 900)}

# The picture put on the clipboard as a browser would hold a copied image (image/png).
COPY = """async (b64) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const blob = new Blob([bytes], { type: "image/png" });
  await navigator.clipboard.write([new ClipboardItem({ "image/png": blob })]);
}"""


@pytest.mark.parametrize("size", SIZES)
def test_a_pasted_picture_comes_back_with_every_face_named(page, size, fan, celebs, shots):
    width, height = SIZES[size]
    page.set_viewport_size({"width": width, "height": height})
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    people = [("tom-hanks", 1), ("will-smith", 0), ("halle-berry", 2), ("jessica-alba", 0)]
    picture, _ = group_photo(people)
    sign_in(page, "fan", "pw-fan-123")
    page.goto("/identify/")
    shots(page, f"identify-empty-{size}")

    page.evaluate(COPY, base64.b64encode(make.encode(picture, "PNG")).decode())
    page.click("#paste-target")
    page.keyboard.press("Control+V")

    page.wait_for_selector("#faces li.face")
    tags = page.locator("#boxes .tag").all_text_contents()
    assert tags == ["1 Tom Hanks", "2 not someone in Celebs", "3 Halle Berry", "4 Miley Cyrus?"]
    items = page.locator("#faces li.face")
    assert items.count() == 4
    assert items.nth(0).locator(".verdict").text_content() == "1 Tom Hanks"
    assert items.nth(1).locator(".verdict").text_content() == "2 Not someone in Celebs"
    # The member's gallery photo beside the named face, loaded.
    photo = items.nth(2).locator(".person img")
    photo.wait_for()
    assert page.evaluate("(img) => img.complete && img.naturalWidth > 0", photo.element_handle())
    assert photo.get_attribute("alt") == "Halle Berry in the gallery"
    # On a phone the boxes carry numbers only, so no name tag runs over another face.
    words = page.locator("#boxes .tag .words").first
    assert words.is_visible() == (size == "desktop")
    # Unsure: the two members it is closest to, side by side, each with a gallery photo.
    unsure = items.nth(3)
    assert unsure.locator(".verdict").text_content() == "4 Probably Miley Cyrus, not sure"
    assert unsure.locator(".person .name").all_text_contents()[0] == "Miley Cyrus"
    assert unsure.locator(".person img").count() == 2
    # The name leads to her page.
    assert items.nth(0).locator("a.name").get_attribute("href") == "/groups/celebs/tom-hanks/"
    # The boxes sit on the faces of the picture as the page shows it.
    figure = page.locator("#picture img").bounding_box()
    first = page.locator("#boxes .box").first.bounding_box()
    assert figure["x"] < first["x"] < figure["x"] + figure["width"] / 3
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    shots(page, f"identify-named-{size}")


def test_a_file_that_is_no_picture_gets_a_plain_error(page, fan, celebs, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a picture")
    sign_in(page, "fan", "pw-fan-123")
    page.goto("/identify/")
    page.set_input_files("#file", str(notes))
    status = page.locator("#status.error")
    status.wait_for()
    assert "not an image" in status.inner_text()
    assert page.locator("#result").is_hidden()
