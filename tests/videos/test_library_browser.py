"""Member pages and the together search in Chromium, at a phone's and a desktop's size: a
moment's link opens the watch page at that moment."""

import pytest
from django.urls import reverse

from tests.conftest import overflow, sign_in, work
from tests.videos.test_library import member_url
from videos import fancams
from videos.models import Video

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SIZES = {"phone": (390, 844), "desktop": (1440, 900)}


@pytest.mark.parametrize("size", SIZES)
def test_her_page_and_the_together_search_open_the_video_at_the_moment(
    page, size, fan, other_fan, footage_upload, celebs, rq_queue, shots
):
    width, height = SIZES[size]
    page.set_viewport_size({"width": width, "height": height})
    late = footage_upload("late_video.mp4", fan, title="Stage where the picture starts late")
    footage_upload("fps25.mp4", fan, title="Music show")
    footage_upload("edit_list.mp4", other_fan, title="Someone else's private stage")
    Video.objects.filter(pk=late.pk).update(
        title="A very long title a fan typed for her favourite stage performance, fancam edition"
    )
    fancams.fancam_request(video=late, member=celebs.members.get(slug="tom-hanks"), user=fan)
    work()
    sign_in(page, "fan", "pw-fan-123")

    page.goto(member_url("tom-hanks"))
    shots(page, f"member-{size}")
    assert overflow(page) == 0
    assert page.locator(".appearance").count() == 2
    assert "Someone else" not in page.content()
    assert page.locator(".member-photo").evaluate("img => img.naturalWidth > 0")
    assert page.locator(".seen-with .name").all_text_contents() == ["Halle Berry"]
    assert page.locator(".fancam-links li").count() == 1

    # A moment opens the watch page with the player at its first frame.
    link = page.locator(f'.moments a[href^="{reverse("videos:watch", args=[late.uuid])}"]')
    link.first.click()
    page.wait_for_url(f"**{reverse('videos:watch', args=[late.uuid])}#t=0.850")
    page.wait_for_function("document.getElementById('player').currentTime > 0.8")
    assert page.evaluate("document.getElementById('player').currentTime") == pytest.approx(
        0.851, abs=1e-3
    )
    shots(page, f"watch-at-moment-{size}")
    # And the watch page's names lead back to the member pages.
    page.locator(".lane-name a", has_text="Halle Berry").click()
    page.wait_for_url(f"**{member_url('halle-berry')}")

    page.goto(reverse("library:group", args=["celebs"]))
    page.check("input[value=tom-hanks]")
    page.check("input[value=halle-berry]")
    page.click(".together-form button[type=submit]")
    page.wait_for_url("**m=tom-hanks**")
    assert page.locator(".together-summary").inner_text().startswith("Halle Berry and Tom Hanks")
    assert page.locator(".appearance").count() == 2
    shots(page, f"together-{size}")
    assert overflow(page) == 0

    page.goto(reverse("library:groups"))
    shots(page, f"groups-{size}")
    assert overflow(page) == 0
