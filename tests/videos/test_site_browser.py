"""The site as fans and curators see it, in a real browser at a phone's and a laptop's size."""

import pytest
from django.urls import reverse

from recognition.models import ModelVersion, TrainingRun
from tests.conftest import overflow, sign_in
from videos.models import Video

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SIZES = {"phone": (390, 844), "laptop": (1366, 768)}


def check_fits(page, url, name, size, shots):
    page.goto(url)
    page.wait_for_load_state("load")
    shots(page, f"{name}-{size}")
    assert overflow(page) == 0, f"{url} is {overflow(page)} px too wide at {size}"


@pytest.fixture
def versions(group, members):
    """An active version and a newer one waiting for review, with a training run each."""
    common = {"group": group, "sha256": "0" * 64, "embedding_model": "m"}
    metrics = {
        "accuracy": 0.98,
        "per_member": {"nayeon": {"precision": 1.0, "recall": 0.98}},
    }
    v1 = ModelVersion.objects.create(
        number=1, members=["nayeon"], training_counts={"nayeon": 20}, metrics=metrics,
        is_active=True, **common,
    )  # fmt: skip
    v2 = ModelVersion.objects.create(
        number=2, members=["nayeon", "mina"], training_counts={"nayeon": 20, "mina": 12},
        metrics={"accuracy": 0.9, "per_member": {"nayeon": {"precision": 1.0, "recall": 0.7}}},
        needs_review=True, note="nayeon's recall fell from 98.0% to 70.0%", **common,
    )  # fmt: skip
    for version in (v1, v2):
        TrainingRun.objects.create(
            group=group, version=version, state="done", progress=100, reason="requested in admin"
        )
    return v1, v2


@pytest.mark.parametrize("size", SIZES)
def test_every_fan_page_fits_the_window(page, size, fan, processed_video, versions, shots):
    width, height = SIZES[size]
    page.set_viewport_size({"width": width, "height": height})
    for url, name in [
        ("/", "home"),
        ("/accounts/login/", "login"),
        ("/accounts/signup/", "signup"),
        ("/no/such/page/", "404-anonymous"),
    ]:
        check_fits(page, url, name, size, shots)
    sign_in(page, "fan", "pw-fan-123")
    Video.objects.filter(pk=processed_video.pk).update(
        title="A very long title that a fan typed for her favourite stage performance video"
    )
    uuid = processed_video.uuid
    for url, name in [
        ("/videos/", "list"),
        ("/videos/upload/", "upload"),
        (reverse("videos:watch", args=[uuid]), "watch"),
        ("/no/such/page/", "404"),
    ]:
        check_fits(page, url, name, size, shots)


@pytest.mark.parametrize("size", SIZES)
def test_the_review_page_fits_the_window(page, size, fan, processed_video, shots):
    width, height = SIZES[size]
    page.set_viewport_size({"width": width, "height": height})
    sign_in(page, "fan", "pw-fan-123")
    url = reverse("videos:review", args=[processed_video.uuid])
    check_fits(page, url, "review", size, shots)


@pytest.mark.parametrize("size", SIZES)
def test_every_main_admin_page_fits_the_window(
    page, size, django_user_model, processed_video, versions, shots
):
    django_user_model.objects.create_superuser("boss", "b@example.org", "pw-boss-123")
    width, height = SIZES[size]
    page.set_viewport_size({"width": width, "height": height})
    page.goto("/admin/login/")
    page.fill("#id_username", "boss")
    page.fill("#id_password", "pw-boss-123")
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")
    for url, name in [
        ("/admin/", "admin-index"),
        ("/admin/gallery/member/", "admin-members"),
        ("/admin/gallery/galleryimage/", "admin-images"),
        ("/admin/recognition/trainingrun/", "admin-training-runs"),
        ("/admin/recognition/modelversion/", "admin-versions"),
        ("/admin/jobs/", "admin-jobs"),
    ]:
        check_fits(page, url, name, size, shots)
        if size == "laptop":
            # A list is not clipped: its table fits its box, no sideways scrolling inside.
            clipped = page.evaluate(
                "() => [...document.querySelectorAll('#changelist .results, .jobs-wrap')]"
                ".map(e => e.scrollWidth - e.clientWidth).filter(d => d > 0)"
            )
            assert clipped == [], f"{url}: a list is clipped by {clipped} px"


def test_a_fan_renames_shares_copies_the_link_and_deletes_a_video(
    page, fan, processed_video, media_root
):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    sign_in(page, "fan", "pw-fan-123")
    page.goto(processed_video.get_absolute_url())
    page.fill("#id_title", "Encore <b>night</b>")
    page.check("#id_is_public")
    page.click("#manage button[type=submit]")
    page.wait_for_selector("#copy-link")
    assert page.locator("h1").inner_text() == "Encore <b>night</b>"  # text, not markup
    page.click("#copy-link")
    page.wait_for_function("() => document.getElementById('copy-status').textContent")
    assert page.locator("#copy-status").inner_text() == "Link copied."
    copied = page.evaluate("() => navigator.clipboard.readText()")
    assert copied.endswith(processed_video.get_absolute_url()) and copied.startswith("http")
    processed_video.refresh_from_db()
    assert processed_video.is_public and processed_video.title == "Encore <b>night</b>"

    # Delete from the list: it asks first; saying no keeps the video, yes removes its files.
    folder = media_root / processed_video.storage_folder()
    assert (folder / "labelled.mp4").exists()
    page.goto("/videos/")
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.click("button.danger-link")
    assert Video.objects.filter(pk=processed_video.pk).exists()
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("button.danger-link")
    page.wait_for_selector(".messages li")
    assert "Deleted “Encore <b>night</b>”" in page.locator(".messages").inner_text()
    assert not Video.objects.filter(pk=processed_video.pk).exists()
    assert not folder.exists() or not any(folder.rglob("*.mp4"))


def test_an_upload_that_stopped_early_is_refused_in_plain_words(page, fan, group, clip, tmp_path):
    ModelVersion.objects.create(
        group=group, number=1, sha256="0" * 64, embedding_model="m", members=["nayeon"],
        training_counts={"nayeon": 1}, metrics={}, is_active=True,
    )  # fmt: skip
    cut = tmp_path / "cut.mp4"
    data = clip.read_bytes()
    cut.write_bytes(data[: len(data) // 3])
    sign_in(page, "fan", "pw-fan-123")
    page.goto("/videos/upload/")
    assert page.locator("#id_group").input_value() == str(group.pk)  # the only group, chosen
    assert page.locator("#id_file").get_attribute("accept").startswith("video/*,")
    page.set_input_files("#id_file", str(cut))
    page.click("#upload-form button[type=submit]")
    page.wait_for_selector("#upload-error:not([hidden])")
    assert page.locator("#upload-error").inner_text() == (
        "This file is cut short: it looks like the upload stopped early. Try again."
    )


def test_a_version_waiting_for_review_says_why_everywhere_and_activates_after_asking(
    page, django_user_model, group, versions
):
    v1, v2 = versions
    django_user_model.objects.create_superuser("boss", "b@example.org", "pw-boss-123")
    page.goto("/admin/login/")
    page.fill("#id_username", "boss")
    page.fill("#id_password", "pw-boss-123")
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")
    said = "Twice v2 waits for review: nayeon's recall fell from 98.0% to 70.0%"
    for url in (
        "/admin/recognition/trainingrun/",
        "/admin/gallery/group/",
        "/admin/gallery/member/",
        "/admin/recognition/modelversion/",
    ):
        page.goto(url)
        assert said in page.locator("body").inner_text(), url
        assert page.get_by_role("link", name="Activate v2…").first.is_visible(), url  # fmt: skip
    page.get_by_role("link", name="Activate v2…").first.click()
    assert "nayeon's recall fell" in page.locator("#content-main").inner_text()
    page.get_by_role("button", name="Yes, activate v2").click()
    page.wait_for_selector(".messagelist")
    v1.refresh_from_db()
    v2.refresh_from_db()
    assert v2.is_active and not v2.needs_review and not v1.is_active
    page.goto("/admin/gallery/member/")
    assert "waits for review" not in page.locator("body").inner_text()


@pytest.mark.parametrize("show", [True, False])
def test_the_live_overlay_follows_the_setting_on_unknown_faces(
    page, fan, processed_video, settings, show
):
    settings.VIDEO_SHOW_UNKNOWN = show
    sign_in(page, "fan", "pw-fan-123")
    page.goto(processed_video.get_absolute_url())
    assert [t.inner_text() for t in page.locator(".tick").all()] == ["0:00", "0:01"]
    page.check("#live-boxes")
    page.wait_for_function("() => document.getElementById('overlay').width > 0")
    # Seek to frame 15 and wait until the overlay has painted it. The toggle swaps the video's
    # source and puts the old time back once the new one has loaded, which can undo a seek made
    # too early, so the seek is repeated until it holds.
    counts = page.wait_for_function(
        "(() => { const v = document.getElementById('player');"
        " if (Math.abs(v.currentTime - 0.6) > 0.01) { v.currentTime = 0.6; return false; }"
        " if (v.seeking) return false;"
        " const c = document.getElementById('overlay');"
        " const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        " let drawn = 0, grey = 0; for (let i = 0; i < d.length; i += 4) {"
        "   if (d[i + 3] === 255) drawn++;"
        "   if (d[i] === 187 && d[i + 1] === 187 && d[i + 2] === 187 && d[i + 3] === 255) grey++; }"
        " return drawn > 50 && (grey > 50) === SHOW ? {drawn, grey} : false; })".replace(
            "SHOW", "true" if show else "false"
        ),
        polling=100,
        timeout=10_000,
    ).json_value()
    grey = counts["grey"]
    assert (grey > 50) is show
