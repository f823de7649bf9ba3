"""Who may change what: the owner and curators correct; anyone else who can see a video
suggests, and nothing changes until the owner or a curator accepts."""

import json

import pytest
from django.urls import reverse

from videos import exports, selectors
from videos.models import Correction, RenderRun, Suggestion, Track

pytestmark = pytest.mark.django_db


def correct(client, video, **body):
    return client.post(
        reverse("videos:correct", args=[video.uuid]), json.dumps(body), "application/json"
    )


def decide(client, video, suggestion, decision):
    return client.post(
        reverse("videos:suggestion", args=[video.uuid, suggestion.pk]),
        json.dumps({"decision": decision}),
        "application/json",
    )


def labels(video):
    return {(d["track"], d["member"]) for d in exports.predictions(video)["detections"]}


def test_a_non_owners_change_is_stored_as_a_suggestion_and_changes_nothing(
    client, other_fan, public_video
):
    client.force_login(other_fan)
    before = labels(public_video), selectors.screen_time(public_video)
    response = correct(client, public_video, track=1, action="not_face")
    assert response.status_code == 200
    body = response.json()
    assert body["suggested"] and body["suggestion"] and body["correction"] is None
    assert body["track"]["member"] == "nayeon" and body["track"]["is_face"]
    assert (labels(public_video), selectors.screen_time(public_video)) == before
    track = Track.objects.get(video=public_video, number=1)
    assert (track.member.slug, track.is_face, track.corrected) == ("nayeon", True, False)
    assert not Correction.objects.exists()
    assert not RenderRun.objects.exists()  # the labelled MP4 is not drawn again
    suggestion = Suggestion.objects.get()
    assert (suggestion.user, suggestion.kind, suggestion.state) == (
        other_fan,
        "not_face",
        "pending",
    )


def test_the_owner_accepts_a_suggestion_and_it_applies_as_her_correction(
    client, fan, other_fan, public_video, members
):
    client.force_login(other_fan)
    correct(client, public_video, track=2, action="member", member=members[1].pk)
    suggestion = Suggestion.objects.get()
    client.force_login(fan)
    response = decide(client, public_video, suggestion, "accept")
    assert response.status_code == 200, response.content
    assert labels(public_video) == {(1, "nayeon"), (2, "mina")}
    suggestion.refresh_from_db()
    correction = suggestion.correction
    assert (suggestion.state, suggestion.user, suggestion.decided_by) == (
        "accepted",
        other_fan,
        fan,
    )
    assert (correction.user, correction.after_member, correction.kind) == (
        fan,
        members[1],
        "member",
    )
    # The owner is no curator: the fix still waits for one before it becomes training data.
    assert correction.review == Correction.Review.PENDING
    assert RenderRun.objects.filter(video=public_video).exists()
    assert decide(client, public_video, suggestion, "accept").status_code == 400  # once only


def test_a_curator_accepting_a_suggestion_approves_the_correction(
    client, curator, other_fan, public_video
):
    client.force_login(other_fan)
    correct(client, public_video, track=1, action="unknown")
    client.force_login(curator)
    assert decide(client, public_video, Suggestion.objects.get(), "accept").status_code == 200
    correction = Correction.objects.get()
    assert (correction.user, correction.review) == (curator, Correction.Review.APPROVED)
    assert correction.suggestion.user == other_fan


def test_a_rejected_suggestion_changes_nothing(client, fan, other_fan, public_video):
    client.force_login(other_fan)
    correct(client, public_video, track=1, action="unknown")
    client.force_login(fan)
    assert decide(client, public_video, Suggestion.objects.get(), "reject").status_code == 200
    assert Suggestion.objects.get().state == "rejected"
    assert labels(public_video) == {(1, "nayeon"), (2, None)}
    assert not Correction.objects.exists()


def test_only_the_owner_or_a_curator_decides(client, other_fan, django_user_model, public_video):
    client.force_login(other_fan)
    correct(client, public_video, track=1, action="unknown")
    suggestion = Suggestion.objects.get()
    assert decide(client, public_video, suggestion, "accept").status_code == 404
    third = django_user_model.objects.create_user("third", password="pw-third-123")
    client.force_login(third)
    assert decide(client, public_video, suggestion, "accept").status_code == 404
    client.logout()
    assert decide(client, public_video, suggestion, "accept").status_code == 404
    assert Suggestion.objects.get().state == "pending"
    assert Track.objects.get(video=public_video, number=1).member.slug == "nayeon"


def test_the_suggester_takes_a_suggestion_back_with_undo(client, other_fan, public_video):
    client.force_login(other_fan)
    made = correct(client, public_video, track=1, action="unknown").json()
    response = correct(client, public_video, track=1, action="undo", suggestion=made["suggestion"])
    assert response.status_code == 200 and response.json()["undone"]
    assert Suggestion.objects.get().state == "withdrawn"


def test_a_non_owner_cannot_undo_the_owners_correction(client, fan, other_fan, public_video):
    client.force_login(fan)
    made = correct(client, public_video, track=1, action="unknown").json()
    client.force_login(other_fan)
    response = correct(client, public_video, track=1, action="undo", correction=made["correction"])
    assert response.status_code == 400
    assert Correction.objects.get().undone is None


def test_a_new_suggestion_replaces_the_same_persons_pending_one(client, other_fan, public_video):
    client.force_login(other_fan)
    correct(client, public_video, track=1, action="unknown")
    correct(client, public_video, track=1, action="not_face")
    assert list(Suggestion.objects.values_list("kind", "state")) == [
        ("unknown", "withdrawn"),
        ("not_face", "pending"),
    ]


def test_pages_show_suggestions_to_who_decides_and_to_who_made_them(
    client, fan, other_fan, django_user_model, public_video
):
    client.force_login(other_fan)
    correct(client, public_video, track=1, action="unknown")
    review = reverse("videos:review", args=[public_video.uuid])
    page = client.get(review).content.decode()
    assert "suggested, waiting for the owner" in page and 'data-decision="accept"' not in page
    client.force_login(fan)
    page = client.get(review).content.decode()
    assert "Nayeon → unknown" in page and 'data-decision="accept"' in page
    assert "suggested by other" in page
    listing = client.get(reverse("videos:list")).content.decode()
    assert "1 suggestion" in listing
    third = django_user_model.objects.create_user("third", password="pw-third-123")
    client.force_login(third)
    assert "Nayeon → unknown" not in client.get(review).content.decode()


def test_a_suggestion_that_changes_nothing_is_not_stored(client, other_fan, public_video):
    client.force_login(other_fan)
    response = correct(client, public_video, track=2, action="unknown")
    assert response.status_code == 200 and response.json()["unchanged"]
    assert not Suggestion.objects.exists()


def test_a_suggestion_is_refused_once_the_track_changed_under_it(
    client, fan, other_fan, public_video, members
):
    client.force_login(other_fan)
    correct(client, public_video, track=1, action="unknown")
    client.force_login(fan)
    correct(client, public_video, track=1, action="member", member=members[2].pk)
    response = decide(client, public_video, Suggestion.objects.get(), "accept")
    assert response.status_code == 400 and "reject it" in response.json()["error"]
    assert Track.objects.get(video=public_video, number=1).member == members[2]


def test_an_anonymous_viewer_of_a_public_review_page_is_asked_to_sign_in(client, public_video):
    page = client.get(reverse("videos:review", args=[public_video.uuid])).content.decode()
    assert "to suggest changes" in page and "/accounts/login/?next=" in page
