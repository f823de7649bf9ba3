"""Sharing shares what the owner meant: a public link lets anyone watch, not download the
original (which may say where it was filmed) nor make fancams without limit on the owner's
machine; the owner sees who had fancams made."""

import pytest
from django.urls import reverse

from tests.conftest import painted_pixels
from tests.videos import test_fancams
from tests.videos.test_fancams import ask, work
from videos.models import Fancam, FancamRequest

pytestmark = pytest.mark.django_db(transaction=True)

stage = test_fancams.stage  # a processed 8 s video of the fan's, with Nayeon and Mina


def file_url(video, kind):
    return reverse("videos:file", args=[video.uuid, kind])


def test_a_stranger_with_a_public_link_gets_404_for_the_original_by_default(
    client, public_video, other_fan
):
    for who in (None, other_fan):
        client.logout()
        if who is not None:
            client.force_login(who)
        assert client.get(public_video.get_absolute_url()).status_code == 200
        assert client.get(file_url(public_video, "labelled")).status_code == 200
        for kind in ("original", "preview"):
            response = client.get(file_url(public_video, kind), HTTP_RANGE="bytes=0-99")
            assert response.status_code == 404, (who, kind)


def test_the_owner_and_curators_download_the_original(client, public_video, fan, curator):
    for who in (fan, curator):
        client.force_login(who)
        response = client.get(file_url(public_video, "original"))
        assert response.status_code == 200
        assert b"ftyp" in b"".join(response.streaming_content)[:16]


def test_when_the_owner_allows_it_anyone_who_can_watch_downloads_the_original(
    client, processed_video, fan, other_fan
):
    edit = reverse("videos:edit", args=[processed_video.uuid])
    client.force_login(fan)
    client.post(edit, {"title": "Stage", "allow_original_download": "on"})
    client.force_login(other_fan)
    assert client.get(file_url(processed_video, "original")).status_code == 404  # still private
    client.force_login(fan)
    response = client.post(
        edit, {"title": "Stage", "is_public": "on", "allow_original_download": "on"}, follow=True
    )
    page = response.content.decode()
    assert "anyone with the link can watch it and download the original." in page
    client.logout()
    assert client.get(file_url(processed_video, "original")).status_code == 200
    client.force_login(fan)
    response = client.post(edit, {"title": "Stage", "is_public": "on"}, follow=True)
    assert (
        "anyone with the link can watch it; only you and the curators can download the original."
        in response.content.decode()
    )
    client.logout()
    assert client.get(file_url(processed_video, "original")).status_code == 404


def test_a_stranger_draws_live_boxes_over_the_labelled_video_and_the_owner_over_the_original(
    client, public_video, fan, other_fan
):
    pages = {
        "watch": public_video.get_absolute_url(),
        "review": reverse("videos:review", args=[public_video.uuid]),
    }
    for who, kind in ((None, "labelled"), (other_fan, "labelled"), (fan, "original")):
        client.logout()
        if who is not None:
            client.force_login(who)
        watch = client.get(pages["watch"]).content.decode()
        assert f'data-original="{file_url(public_video, kind)}"' in watch, who
        assert f"live over the {kind} video" in watch
        assert (f'href="{file_url(public_video, "original")}"' in watch) == (kind == "original")
        review = client.get(pages["review"]).content.decode()
        assert f'src="{file_url(public_video, kind)}"' in review, who


def test_fancams_of_others_videos_count_against_the_fans_hourly_limit(
    client, settings, stage, members, fan, other_fan, rq_queue
):
    settings.VIDEO_UPLOADS_PER_HOUR = 2
    stage.is_public = True
    stage.save()
    client.force_login(other_fan)
    assert ask(client, stage, members[0]).status_code == 202
    assert ask(client, stage, members[0], aspect="1:1").status_code == 202
    refused = ask(client, stage, members[0], aspect="16:9")
    assert refused.status_code == 422
    assert "limit of 2 uploads and fancams" in refused.json()["error"]
    assert not Fancam.objects.filter(aspect="16:9").exists()
    # The same limit holds their uploads back.
    from videos.services import VideoRejected, video_check_upload

    with pytest.raises(VideoRejected, match="limit of 2"):
        video_check_upload(name="a.mp4", size=10, owner=other_fan)
    # The owner's own fancams cost only their own machine: not counted.
    client.force_login(fan)
    assert ask(client, stage, members[0], aspect="16:9").status_code == 202
    assert ask(client, stage, members[1], aspect="16:9").status_code == 202
    assert ask(client, stage, members[1]).status_code == 202


def test_a_stranger_not_signed_in_gets_made_fancams_but_cannot_have_one_made(
    client, stage, members, fan, rq_queue
):
    stage.is_public = True
    stage.save()
    refused = ask(client, stage, members[0])
    assert refused.status_code == 422 and "sign in" in refused.json()["error"]
    assert not Fancam.objects.exists()
    client.force_login(fan)
    made = ask(client, stage, members[0]).json()
    work()
    client.logout()
    again = ask(client, stage, members[0])
    assert again.status_code == 200 and again.json()["id"] == made["id"]


def test_the_owner_sees_who_had_fancams_made_of_their_video(
    client, stage, members, fan, other_fan, rq_queue
):
    stage.is_public = True
    stage.save()
    client.force_login(other_fan)
    assert ask(client, stage, members[0]).status_code == 202
    work()
    assert list(FancamRequest.objects.values_list("user__username", flat=True)) == ["other"]
    client.force_login(fan)
    assert "made for other" in client.get(stage.get_absolute_url()).content.decode()
    client.force_login(other_fan)  # the list is the owner's to see
    page = client.get(stage.get_absolute_url()).content.decode()
    assert "made for" not in page and "fancam-play" in page


@pytest.mark.browser
def test_a_stranger_sees_live_boxes_painted_over_the_labelled_video_in_chromium(page, public_video):
    page.goto(public_video.get_absolute_url())
    page.check("#live-boxes")
    page.wait_for_function("() => document.getElementById('overlay').width > 0")
    assert page.locator("#player").evaluate("v => v.src").endswith("/labelled.mp4")
    assert painted_pixels(page, 100) > 100
    assert page.evaluate("() => document.getElementById('player').error") is None
