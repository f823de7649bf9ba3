"""The review page in a real browser: suggestions, undo, hotkeys, the player."""

import pytest

from gallery import services as gallery_services
from tests.conftest import sign_in
from videos.models import Correction, Suggestion, Track

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def status_says(page, text):
    page.wait_for_function(
        "(t) => document.getElementById('review-status').textContent.includes(t)", arg=text
    )


def test_a_non_owners_correction_becomes_a_suggestion_that_the_owner_accepts(
    page, processed_video, other_fan, fan
):
    processed_video.is_public = True
    processed_video.save()
    review = f"/videos/{processed_video.uuid}/review/"
    sign_in(page, "other", "pw-other-123")
    page.goto(review)
    assert "your changes are sent to them as suggestions" in page.content()
    first = page.locator(".track").first
    assert first.get_attribute("data-track") == "2"  # least confident first
    page.keyboard.press("x")  # not a face
    status_says(page, "Suggested for track 2")
    row = page.locator('.track[data-track="2"]')
    assert row.locator(".name").inner_text() == "unknown"  # nothing applied
    assert "suggested, waiting for the owner" in row.inner_text()
    assert Track.objects.get(video=processed_video, number=2).is_face
    assert not Correction.objects.exists()

    page.context.clear_cookies()
    sign_in(page, "fan", "pw-fan-123")
    assert "1 suggestion" in page.locator("table.list").inner_text()
    page.goto(review)
    item = page.locator("#suggestions li")
    assert "Track 2: unknown → not a face" in item.inner_text()
    assert "suggested by other" in item.inner_text()
    item.get_by_role("button", name="Accept").click()
    status_says(page, "Accepted other’s suggestion")
    assert page.locator('.track[data-track="2"] .name').inner_text() == "not a face"
    assert page.locator("#suggestions li").count() == 0
    correction = Correction.objects.get()
    assert (correction.user, correction.kind) == (fan, "not_face")
    assert Suggestion.objects.get().user == other_fan
    assert not Track.objects.get(video=processed_video, number=2).is_face


def test_undo_clears_the_tag_and_the_pending_row(page, processed_video, fan, admin_user):
    sign_in(page, "fan", "pw-fan-123")
    page.goto(f"/videos/{processed_video.uuid}/review/")
    page.locator('.track[data-track="1"]').click()
    page.keyboard.press("u")
    status_says(page, "Nayeon → unknown")
    row = page.locator('.track[data-track="1"]')
    assert row.locator(".tag").inner_text() == "corrected"
    assert Correction.objects.filter(review="pending").count() == 1
    page.keyboard.press("z")
    status_says(page, "Undone: track 1 is Nayeon again")
    assert row.locator(".tag").count() == 0
    assert not Correction.objects.filter(review="pending").exists()
    # The curators' queue of pending corrections is empty too.
    page.context.clear_cookies()
    admin_user.set_password("pw-admin-123")
    admin_user.save()
    page.goto("/admin/login/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "pw-admin-123")
    page.click("input[type=submit]")
    page.goto("/admin/videos/correction/?review__exact=pending")
    assert "0 corrections" in page.content() or page.locator("#result_list tbody tr").count() == 0


def test_hotkeys_stay_with_their_member_when_one_is_added(page, processed_video, fan, group):
    review = f"/videos/{processed_video.uuid}/review/"
    sign_in(page, "fan", "pw-fan-123")
    page.goto(review)
    keys = page.locator(".roster li").all_inner_texts()
    assert [k.split()[0] for k in keys] == ["1", "2", "3"]
    sana = next(k for k in keys if "Sana" in k).split()[0]
    # A member added first in the group's order takes the next free digit, not hers.
    gallery_services.member_get_or_create(group=group, slug="jihyo")
    group.members.filter(slug="jihyo").update(order=0)
    group.members.exclude(slug="jihyo").update(order=5)
    page.goto(review)
    keys = page.locator(".roster li").all_inner_texts()
    assert next(k for k in keys if "Sana" in k).split()[0] == sana
    assert next(k for k in keys if "Jihyo" in k).split()[0] == "4"
    page.locator('.track[data-track="2"]').click()
    page.keyboard.press(sana)
    status_says(page, "unknown → Sana")
    assert Track.objects.get(video=processed_video, number=2).member.slug == "sana"


def frame_on_screen(page):
    """The frame the paused player shows once any seek is over (the clip starts at 0, 25 fps)."""
    return page.evaluate(
        """async () => {
          const video = document.getElementById('player');
          if (video.seeking) await new Promise((done) => video.addEventListener('seeked', done, { once: true }));
          return Math.floor(video.currentTime * 25 + 1e-3);
        }"""
    )


def test_split_and_merge_at_the_playhead_beside_the_video(page, processed_video, fan):
    sign_in(page, "fan", "pw-fan-123")
    page.goto(f"/videos/{processed_video.uuid}/review/")
    page.wait_for_function("() => document.getElementById('player').readyState >= 2")
    # Selecting a track takes the player to its first frame, its boxes drawn live.
    page.locator('.track[data-track="2"] .meta').click()
    page.wait_for_function("() => document.getElementById('frame-now').textContent === 'frame 10'")
    assert frame_on_screen(page) == 10
    painted = page.evaluate(
        "(() => { const c = document.getElementById('overlay');"
        " const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        " let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n; })()"
    )
    assert painted > 100
    # A box clicked in the player picks its track, and the player stays at that frame.
    x, y = page.evaluate(
        "() => { const r = document.getElementById('player').getBoundingClientRect();"
        " const s = Math.min(r.width / 160, r.height / 120);"
        " return [r.left + (r.width - 160 * s) / 2 + 30 * s, r.top + (r.height - 120 * s) / 2 + 35 * s]; }"
    )
    page.mouse.click(x, y)  # inside track 1's box (10, 10, 50, 60)
    status_says(page, "Track 1 picked in the player")
    assert page.locator(".track.current").get_attribute("data-track") == "1"
    assert frame_on_screen(page) == 10

    # Track 1 from frame 0; twelve frames on, s splits it there.
    page.locator('.track[data-track="1"] .meta').click()
    page.wait_for_function("() => document.getElementById('frame-now').textContent === 'frame 0'")
    for _ in range(12):
        page.keyboard.press(".")
    assert frame_on_screen(page) == 12
    page.keyboard.press("s")
    status_says(page, "Split track 1: frames from 12 on are track 3")
    assert frame_on_screen(page) == 12  # the player stays at the cut
    assert page.locator('.track[data-track="3"]').count() == 1
    tail = Track.objects.get(video=processed_video, number=3)
    assert (tail.first_frame, tail.member.slug) == (12, "nayeon")
    assert page.locator('.track[data-track="3"] .name').inner_text() == "Nayeon"

    # m marks track 1, m on track 3 merges them again; z undoes the merge.
    page.keyboard.press("m")
    status_says(page, "Track 1 marked")
    page.keyboard.press("ArrowDown")
    assert page.locator(".track.current").get_attribute("data-track") == "3"
    page.keyboard.press("m")
    status_says(page, "track 3 merged into it")
    assert page.locator('.track[data-track="3"]').count() == 0
    head = Track.objects.get(video=processed_video, number=1)
    assert (head.first_frame, head.last_frame, head.detections.count()) == (0, 24, 25)
    page.keyboard.press("z")
    status_says(page, "Undone")
    assert page.locator('.track[data-track="3"]').count() == 1
    assert Track.objects.get(video=processed_video, number=3).detections.count() == 13


def test_an_unknown_cluster_becomes_a_new_member_named_in_the_video_after_the_retrain(
    page, celebs, stage_clip, fan, rq_queue, django_user_model
):
    from recognition.models import ModelVersion
    from tests.conftest import run_worker
    from videos import services
    from videos.models import RenderRun

    video = services.video_submit(source=stage_clip, name="stage.mp4", group=celebs, owner=fan)
    run_worker("video")
    stranger = video.tracks.get(member=None)
    django_user_model.objects.create_superuser("boss", "b@example.org", "pw-boss-123")
    sign_in(page, "boss", "pw-boss-123")
    page.get_by_role("link", name="Unknown faces").click()
    page.wait_for_url("**/curate/celebs/unknown-faces/")
    cluster = page.locator(".cluster").first
    assert "1 track in 1 video" in cluster.inner_text()
    assert cluster.locator("img").count() == 1  # the stranger's strip
    cluster.get_by_placeholder("New member’s name").fill("Will Smith")
    cluster.get_by_role("button", name="Create member").click()
    assert "New member Will Smith, from 1 track(s)" in page.locator("ul.messages").inner_text()
    assert page.locator(".cluster").count() == 0
    stranger.refresh_from_db()
    assert stranger.member.slug == "will-smith"

    run_worker("default")  # harvest her faces into the gallery, train
    version = ModelVersion.objects.get(group=celebs, number=2)
    assert "will-smith" in version.members and version.training_counts["will-smith"] >= 1
    # One distinct face of her cannot be cross-validated: the curator activates v2 herself.
    assert version.needs_review and "activate it by hand" in version.note
    page.goto("/admin/recognition/modelversion/")
    page.locator(f'#result_list input.action-select[value="{version.pk}"]').check()
    page.select_option("select[name=action]", "activate")
    page.click("button[name=index]")
    page.locator(".messagelist").wait_for()  # the activation is done (and its relabel queued)
    run_worker("default", "video")  # relabel, re-render
    video.refresh_from_db()
    version.refresh_from_db()
    assert version.is_active and video.model_version == version
    assert RenderRun.objects.filter(video=video, state="done").exists()
    page.goto(video.get_absolute_url())
    assert "Will Smith" in page.locator(".chart").inner_text()  # her screen time
    assert "model v2" in page.locator(".page-head").inner_text()


# Where a point of the 160x120 picture is: on the page, and on the overlay canvas.
PLACE = """() => { const r = document.getElementById('player').getBoundingClientRect();
  const s = Math.min(r.width / 160, r.height / 120);
  return { left: r.left, top: r.top, s, ox: (r.width - 160 * s) / 2, oy: (r.height - 120 * s) / 2 }; }"""


def on_page(page, x, y):
    p = page.evaluate(PLACE)
    return p["left"] + p["ox"] + x * p["s"], p["top"] + p["oy"] + y * p["s"]


PAINTED = """([x, y, p]) => document.getElementById('overlay').getContext('2d')
  .getImageData(Math.round(p.ox + x * p.s), Math.round(p.oy + y * p.s), 1, 1).data[3] > 0"""


def painted(page, x, y):
    """Whether the overlay has paint at picture point (x, y)."""
    return page.evaluate(PAINTED, [x, y, page.evaluate(PLACE)])


def drag(page, start, end):
    page.mouse.move(*on_page(page, *start))
    page.mouse.down()
    page.mouse.move(*on_page(page, *end), steps=6)
    page.mouse.up()


def exported(page, number, frame):
    """Track `number`'s box at `frame` in the predictions JSON the overlay reads."""
    rows = page.evaluate(
        "() => fetch(document.getElementById('review-player').dataset.predictions)"
        ".then((r) => r.json()).then((d) => d.detections)"
    )
    return next((d["box"] for d in rows if (d["track"], d["frame"]) == (number, frame)), None)


def frame_is(page, number):
    page.wait_for_function(
        "(n) => document.getElementById('frame-now').textContent === `frame ${n}`", arg=number
    )


def test_a_box_fixed_at_the_playhead_shows_at_once_and_undoes(page, processed_video, fan):
    from videos.models import Detection

    def stored(number, frame):
        row = Detection.objects.filter(track__video=processed_video, track__number=number)
        row = row.filter(frame=frame).first()
        return row.box() if row else None

    sign_in(page, "fan", "pw-fan-123")
    page.goto(f"/videos/{processed_video.uuid}/review/")
    page.wait_for_function("() => document.getElementById('player').readyState >= 2")
    page.locator('.track[data-track="1"] .meta').click()
    frame_is(page, 0)
    for _ in range(5):
        page.keyboard.press(".")
    frame_is(page, 5)
    assert painted(page, 10, 35) and not painted(page, 70, 35)  # track 1's box: 10, 10, 50, 60

    # b: handles on the box at the playhead. Drag it 20 px right, its bottom-right corner 10 down.
    page.keyboard.press("b")
    status_says(page, "Fixing track 1’s box at frame 5")
    drag(page, (30, 35), (50, 35))
    drag(page, (70, 60), (70, 70))
    page.keyboard.press("ArrowUp")  # and a pixel up
    page.keyboard.press("Enter")
    status_says(page, "Track 1: box at frame 5 moved. Press z to undo.")
    assert stored(1, 5) == [30, 9, 70, 69] and stored(1, 4) == [10, 10, 50, 60]
    assert exported(page, 1, 5) == [30, 9, 70, 69]
    assert frame_on_screen(page) == 5  # the player stays at the fixed frame
    assert painted(page, 70, 35) and not painted(page, 10, 35)  # the overlay shows it at once

    page.keyboard.press("z")
    status_says(page, "Undone: track 1’s box at frame 5 is as it was")
    assert stored(1, 5) == [10, 10, 50, 60]
    assert exported(page, 1, 5) == [10, 10, 50, 60]
    assert frame_on_screen(page) == 5
    page.wait_for_function(PAINTED, arg=[10, 35, page.evaluate(PLACE)])  # drawn as it was
    assert not painted(page, 70, 35)

    # The stranger (track 2, frames 10-19): Delete removes its first box, so it starts at 11.
    page.locator('.track[data-track="2"] .meta').click()
    frame_is(page, 10)
    page.keyboard.press("b")
    status_says(page, "Fixing track 2’s box at frame 10")
    page.keyboard.press("Delete")
    status_says(page, "Track 2: box at frame 10 removed")
    assert page.locator('.track[data-track="2"]').get_attribute("data-first") == "11"
    assert stored(2, 10) is None and not painted(page, 90, 45)

    # The tracker lost it a frame early: at frame 20 there is no box, so one is drawn.
    for _ in range(10):
        page.keyboard.press(".")
    frame_is(page, 20)
    page.get_by_role("button", name="Fix box").click()
    status_says(page, "Track 2 has no box at frame 20")
    drag(page, (92, 22), (128, 68))
    page.get_by_role("button", name="Save").click()
    status_says(page, "Track 2: box at frame 20 drawn")
    assert stored(2, 20) == [92, 22, 128, 68]
    assert page.locator('.track[data-track="2"]').get_attribute("data-last") == "20"
    assert painted(page, 92, 45)


def test_a_finger_moves_the_box_on_a_phone(browser, live_server, processed_video, fan):
    from videos.models import Detection

    context = browser.new_context(
        base_url=live_server.url, viewport={"width": 390, "height": 844}, has_touch=True
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    sign_in(page, "fan", "pw-fan-123")
    page.goto(f"/videos/{processed_video.uuid}/review/")
    page.wait_for_function("() => document.getElementById('player').readyState >= 2")
    page.locator('.track[data-track="1"] .meta').click()
    frame_is(page, 0)
    page.get_by_role("button", name="Fix box").tap()
    status_says(page, "Fixing track 1’s box at frame 0")
    # Real touch events (Chromium makes them pointer events): the box dragged 20 right, 10 down.
    touch = context.new_cdp_session(page)
    (x, y), (x2, y2) = on_page(page, 30, 35), on_page(page, 50, 45)
    touch.send(
        "Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x, "y": y}]}
    )
    for k in range(1, 7):
        point = {"x": x + (x2 - x) * k / 6, "y": y + (y2 - y) * k / 6}
        touch.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [point]})
    touch.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    page.get_by_role("button", name="Save").click()
    status_says(page, "Track 1: box at frame 0 moved")
    assert Detection.objects.get(track__number=1, frame=0).box() == [30, 20, 70, 70]
    context.close()
