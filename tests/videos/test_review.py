"""Corrections: recorded, undoable, applied to the whole track at once."""

import json

import pytest
from django.urls import reverse

from videos import exports, selectors
from videos.models import Correction, RenderRun, Track

pytestmark = pytest.mark.django_db


def correct(client, video, **body):
    return client.post(
        reverse("videos:correct", args=[video.uuid]),
        json.dumps(body),
        content_type="application/json",
    )


def members_in_export(video):
    return {(d["track"], d["member"]) for d in exports.predictions(video)["detections"]}


def test_a_correction_relabels_the_whole_track_everywhere(client, fan, processed_video, members):
    client.force_login(fan)
    mina = members[1]
    response = correct(client, processed_video, track=2, action="member", member=mina.pk)
    assert response.status_code == 200
    assert response.json()["track"]["member"] == "mina"
    assert members_in_export(processed_video) == {(1, "nayeon"), (2, "mina")}
    assert {p["slug"] for p in selectors.screen_time(processed_video)} == {"nayeon", "mina"}
    correction = Correction.objects.get()
    assert (correction.user, correction.before_member, correction.after_member) == (fan, None, mina)
    assert correction.review == Correction.Review.PENDING  # a fan's fix waits for a curator


def test_undo_puts_the_track_back(client, fan, processed_video):
    client.force_login(fan)
    done = correct(client, processed_video, track=1, action="unknown").json()
    assert members_in_export(processed_video) == {(1, None), (2, None)}
    response = correct(
        client, processed_video, track=1, action="undo", correction=done["correction"]
    )
    assert response.json()["track"]["member"] == "nayeon"
    assert Track.objects.get(number=1).corrected is False
    assert Correction.objects.get().undone is not None


def test_not_a_face_removes_the_track_from_exports_and_screen_time(client, fan, processed_video):
    client.force_login(fan)
    correct(client, processed_video, track=1, action="not_face")
    assert {d["track"] for d in exports.predictions(processed_video)["detections"]} == {2}
    assert selectors.screen_time(processed_video) == []


def test_split_makes_a_second_track_that_can_be_labelled_on_its_own(
    client, fan, processed_video, members
):
    client.force_login(fan)
    response = correct(client, processed_video, track=1, action="split", frame=12)
    assert response.json()["new_track"] == 3
    tail = Track.objects.get(number=3)
    assert (tail.first_frame, tail.last_frame, tail.detections.count()) == (12, 24, 13)
    correct(client, processed_video, track=3, action="member", member=members[2].pk)
    assert members_in_export(processed_video) == {(1, "nayeon"), (2, None), (3, "sana")}


def test_splitting_outside_the_track_is_refused(client, fan, processed_video):
    client.force_login(fan)
    response = correct(client, processed_video, track=2, action="split", frame=3)
    assert response.status_code == 400
    assert "split inside the track" in response.json()["error"]


def test_a_member_of_another_group_is_refused(client, fan, processed_video):
    from gallery import services as gallery_services

    other = gallery_services.group_get_or_create(slug="itzy")
    stranger = gallery_services.member_get_or_create(group=other, slug="yeji")
    client.force_login(fan)
    response = correct(client, processed_video, track=1, action="member", member=stranger.pk)
    assert response.status_code == 400


def test_a_fan_cannot_review_someone_elses_private_video(client, other_fan, processed_video):
    client.force_login(other_fan)
    assert client.get(reverse("videos:review", args=[processed_video.uuid])).status_code == 404
    assert correct(client, processed_video, track=1, action="unknown").status_code == 404
    assert Track.objects.get(number=1).member.slug == "nayeon"


def test_anonymous_viewers_of_a_public_video_cannot_correct_it(client, processed_video):
    processed_video.is_public = True
    processed_video.save()
    assert correct(client, processed_video, track=1, action="unknown").status_code == 404


def test_review_lists_least_confident_tracks_first(client, fan, processed_video):
    client.force_login(fan)
    page = client.get(reverse("videos:review", args=[processed_video.uuid])).content.decode()
    assert page.index('data-track="2"') < page.index('data-track="1"')
    assert client.get(reverse("videos:correct", args=[processed_video.uuid])).status_code == 405


@pytest.mark.django_db(transaction=True)
def test_corrections_queue_one_rerender_of_the_labelled_video(
    client, fan, processed_video, rq_queue
):
    import django_rq

    video_queue = django_rq.get_queue("video")
    video_queue.empty()
    client.force_login(fan)
    correct(client, processed_video, track=1, action="unknown")
    correct(client, processed_video, track=2, action="not_face")
    run = RenderRun.objects.get(video=processed_video)
    assert run.requests == 2
    assert video_queue.job_ids == [run.rq_job_id]
    video_queue.empty()
