"""Real files in Chromium: the review page's frame counter names the frame actually on
screen, read off the picture itself, and its boxes sit on the faces, on both sides of a cut;
files a browser cannot play get a copy that it can, or a plain word why not."""

import numpy as np
import pytest

from tests import footage
from tests.conftest import sign_in
from videos import exports
from videos.models import Video

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


# Seek the review player to `at` seconds and wait until the seek has landed and a frame has
# been presented after it (or a moment has passed: a seek to the frame already on screen
# presents none); then the counter, the picture (a quarter size) and the overlay's paint.
LOOK = """async ([at, boxes]) => {
  const video = document.getElementById('player');
  const presented = new Promise((done) => {
    video.requestVideoFrameCallback(() => done());
    setTimeout(done, 1500);
  });
  const landed = new Promise((done) => video.addEventListener('seeked', done, { once: true }));
  video.currentTime = at;
  await landed;
  await presented;
  await new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)));
  const w = Math.round(video.videoWidth / 4), h = Math.round(video.videoHeight / 4);
  const picture = document.createElement('canvas');
  picture.width = w; picture.height = h;
  const ctx = picture.getContext('2d', { willReadFrequently: true });
  ctx.drawImage(video, 0, 0, w, h);
  const overlay = document.getElementById('overlay').getContext('2d');
  const r = video.getBoundingClientRect();
  const s = Math.min(r.width / video.videoWidth, r.height / video.videoHeight);
  const ox = (r.width - video.videoWidth * s) / 2, oy = (r.height - video.videoHeight * s) / 2;
  // Across each face, half way down: where the overlay has paint, in picture pixels.
  const across = boxes.map(([l, t, rr, b]) => {
    const x0 = Math.round(ox + l * s), x1 = Math.round(ox + rr * s), y = Math.round(oy + (t + b) / 2 * s);
    const row = overlay.getImageData(x0, y, x1 - x0, 1).data, found = [];
    for (let i = 0; i < x1 - x0; i++) if (row[4 * i + 3] > 0) found.push((x0 + i - ox) / s);
    return found;
  });
  return {
    counter: document.getElementById('frame-now').textContent, w, h,
    pixels: Array.from(ctx.getImageData(0, 0, w, h).data), across,
  };
}"""


@pytest.mark.parametrize(
    "name",
    [
        "late_video.mp4",
        "edit_list.mp4",
        "vfr.mp4",
        "rotated_90.mp4",
        "vp9_opus.webm",
        "hevc.mkv",
        "fps60.mp4",
    ],
)
def test_the_review_counter_names_the_frame_on_screen(
    page, footage_dir, footage_video, live_server, name
):
    recipe = footage.RECIPES[name]
    video = footage_video(name)
    source = footage.make(footage_dir, name)
    times = footage.frame_times(source)
    shows = footage.clip_frames(source, recipe.rotation)
    cut = next(n for n, shown in enumerate(shows) if shown >= footage.SHOT)
    detections = exports.predictions(video)["detections"]
    sign_in(page, "fan", "pw-fan-123")
    page.goto(f"/videos/{video.uuid}/review/")
    page.wait_for_function("() => document.getElementById('player').readyState >= 2")
    if not recipe.browsers_play:  # the copy made for browsers, on the same clock
        assert page.locator("#player").evaluate("v => v.src").endswith("/preview.mp4")
    assert page.locator("#player").evaluate("v => v.videoWidth") > 0
    page.locator(".track").first.click()  # loads the boxes; the player goes to the track
    page.wait_for_function("() => document.getElementById('frame-now').textContent !== 'frame 0'")

    for n in sorted({0, 5, cut - 1, cut, len(times) - 2}):
        end = times[n + 1] if n + 1 < len(times) else times[n] + 0.02
        faces = footage.truth(recipe, shows[n])
        boxes = [d["box"] for d in detections if d["frame"] == n and d["member"]]
        assert boxes and all(max(footage.iou(b, f) for f in faces.values()) > 0.5 for b in boxes)
        seen = page.evaluate(LOOK, [(times[n] + end) / 2, boxes])
        picture = np.array(seen["pixels"], dtype=np.uint8).reshape(seen["h"], seen["w"], 4)
        on_screen = footage.bar_number(picture[..., :3])
        assert on_screen == shows[n], f"seek to frame {n} showed the clip's {on_screen}"
        assert seen["counter"] == f"frame {n}", f"picture shows frame {n}"
        for (left, _, right, _), painted in zip(boxes, seen["across"], strict=True):
            # This frame's boxes, on the faces: the sides painted, nothing over the middle.
            assert any(abs(x - left) <= 2.5 for x in painted), (n, left, painted)
            assert any(abs(x - right) <= 2.5 for x in painted), (n, right, painted)
            middle = (left + right) / 2
            assert not any(abs(x - middle) < 0.1 * (right - left) for x in painted), (n, painted)


def test_live_boxes_play_the_copy_of_an_original_browsers_cannot_play(
    page, footage_video, live_server
):
    video = footage_video("hevc.mkv")
    sign_in(page, "fan", "pw-fan-123")
    page.goto(video.get_absolute_url())
    page.check("#live-boxes")
    page.wait_for_function("() => document.getElementById('player').src.endsWith('/preview.mp4')")
    page.wait_for_function("() => document.getElementById('player').videoWidth > 0")
    assert page.locator("#live-notice").is_hidden()

    # Without the copy (a video analysed before copies were made) the page says why.
    Video.objects.filter(pk=video.pk).update(preview="")
    page.reload()
    assert page.locator("#live-boxes").is_disabled()
    assert page.locator("#live-notice").inner_text() == (
        "Boxes cannot be drawn live here: browsers do not play HEVC (H.265) video. "
        "The labelled video above shows every name."
    )
    page.goto(f"/videos/{video.uuid}/review/")
    assert "The video cannot be shown here: browsers do not play HEVC (H.265) video" in (
        page.locator("#player-notice").inner_text()
    )
    assert page.locator("#player").count() == 0


def test_a_player_that_cannot_decode_the_original_says_so_instead_of_showing_nothing(
    page, footage_video, live_server
):
    """Chromium plays HEVC's sound over a picture of nothing (videoWidth 0); a browser that
    cannot decode what the server offers gets the labelled video back and a plain word."""
    video = footage_video("hevc.mkv")
    sign_in(page, "fan", "pw-fan-123")
    page.goto(video.get_absolute_url())
    original = f"/videos/{video.uuid}/original.mp4"
    page.evaluate("(url) => { document.getElementById('watch').dataset.original = url; }", original)
    page.check("#live-boxes")
    page.wait_for_function("() => !document.getElementById('live-notice').hidden")
    assert (
        "This browser cannot play the original video" in page.locator("#live-notice").inner_text()
    )
    assert not page.locator("#live-boxes").is_checked()
    page.wait_for_function("() => document.getElementById('player').src.endsWith('/labelled.mp4')")

    page.goto(f"/videos/{video.uuid}/review/")
    page.evaluate("(url) => { document.getElementById('player').src = url; }", original)
    page.wait_for_function("() => !document.getElementById('player-notice').hidden")
    assert page.locator("#review-player").is_hidden()


def test_the_headers_duration_is_the_players(page, footage_video, live_server):
    video = footage_video("long_audio.mp4")  # sound 1.6 s past the picture
    sign_in(page, "fan", "pw-fan-123")
    page.goto(video.get_absolute_url())
    page.wait_for_function("() => document.getElementById('player').readyState >= 1")
    duration = page.locator("#player").evaluate("v => v.duration")
    assert video.duration_label() == "0:04" and round(duration) == 4
    assert " · 0:04 · " in page.locator(".page-head .meta").inner_text()
