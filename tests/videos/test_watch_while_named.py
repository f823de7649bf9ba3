"""Watching while a video is named: the original plays with the names found so far, the
timeline grows as stretches arrive, and the labelled video follows without a lost place."""

import pytest

from base.jobs import Progress
from core.media.probe import probe
from core.tracking.naming import name_tracks
from core.tracking.segments import Source, analyze_parallel
from recognition.selectors import active_version
from recognition.services import model_version_load
from tests import footage
from tests.conftest import painted_pixels, sign_in
from videos import services
from videos.models import Video
from videos.names import NamesPublisher

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


LANES = "() => [...document.querySelectorAll('#timeline .lane')].map((l) => l.dataset.member)"


def test_the_original_plays_with_the_names_so_far_and_the_timeline_grows(
    page, footage_dir, celebs, fan, live_server, shots
):
    path = footage.make(footage_dir, "late_video.mp4")
    video = services.video_submit(source=path, name="late.mp4", group=celebs, owner=fan)
    # The analysis as the job makes it, handed out in two stretches: the first shot's faces,
    # then the second's (the shots are 30 frames each).
    info = probe(path)
    version = active_version(celebs)
    analysis = analyze_parallel(Source(path, info), [(0, 30), (30, 60)], 1)
    name_tracks(analysis.tracks, model_version_load(version))
    first = [t for t in analysis.tracks if t.last_frame < 30]
    Progress(video, attempt=video.attempt).update(state=Video.State.RUNNING, progress=20.0)
    publisher = NamesPublisher(video, video.attempt, version, info)
    publisher.start()

    sign_in(page, "fan", "pw-fan-123")
    page.goto(video.get_absolute_url())
    assert page.locator("#player-box").is_hidden()  # nothing named yet: no player
    assert "Nobody named yet" in page.locator("#panels").inner_text()
    assert page.locator("#review-link").is_hidden()

    publisher.add(first, 30)  # the first shot's names are final
    page.wait_for_function("() => !document.getElementById('player-box').hidden", timeout=10_000)
    assert page.locator("#player").evaluate("v => v.src").endswith("/original.mp4")
    page.wait_for_function(f"() => ({LANES})().length === 2", timeout=10_000)
    assert sorted(page.evaluate(LANES)) == ["halle-berry", "tom-hanks"]
    assert page.locator(".pending").count() == 1  # the rest is still being named
    page.locator("#player").evaluate("v => { v.currentTime = 0.9; }")  # frame 1: 0.85 s + 1/25
    painted_pixels(page, 200)  # boxes over the faces
    title = page.locator("#processing-title").inner_text()
    assert title == "Names are in up to 0:02"  # 0.85 s + 30 frames
    shots(page, "watch-while-named-laptop")

    publisher.add([t for t in analysis.tracks if t.last_frame >= 30], 60)
    publisher.finish(analysis)
    page.wait_for_function(f"() => ({LANES})().length === 3", timeout=10_000)
    page.wait_for_function("() => !document.getElementById('review-link').hidden")
    assert page.locator(".pending").count() == 0
    assert page.locator("#player-box").is_visible()  # still playing the original

    # The labelled video is ready: a paused player gives way to it at once.
    with path.open("rb") as handle:
        from django.core.files import File

        video.labelled.save("labelled.mp4", File(handle), save=False)
    Video.objects.filter(pk=video.pk).update(labelled=video.labelled.name)
    Progress(video, attempt=video.attempt).update(state=Video.State.DONE, progress=100.0)
    page.wait_for_function(
        "() => (document.getElementById('player').src || '').endsWith('/labelled.mp4')",
        timeout=15_000,
    )
    assert page.locator("#live-boxes").is_visible()
    assert "Downloads" in page.locator("#panels").inner_text()
