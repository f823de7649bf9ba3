"""Corrections: recorded, undoable, applied to the whole track at once."""

import json

import pytest
from django.urls import reverse

from videos import exports, harvest, rendering, selectors
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


def post_raw(client, video, body: bytes):
    return client.post(
        reverse("videos:correct", args=[video.uuid]), body, content_type="application/json"
    )


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b'{"track": 1e999, "action": "unknown"}', 400, "track must be a whole number"),
        (b'{"track": 1.5, "action": "unknown"}', 400, "track must be a whole number"),
        (b'{"track": true, "action": "unknown"}', 400, "track must be a whole number"),
        (b'{"track": 99999999999, "action": "unknown"}', 400, "track must be between"),
        (b"[" * 100_000, 413, "the request is too large"),
        (b"[" * 5_000 + b"]" * 5_000, 400, "the request is not valid JSON"),
        (b'{"track": 1, "action": "unknown"}' + b" " * 3_000_000, 413, "too large"),
        (b"not json", 400, "the request is not valid JSON"),
        (b"[1, 2]", 400, "the request must be a JSON object"),
        (b'{"action": "unknown"}', 400, "track is missing"),
        (b'{"track": 7, "action": "unknown"}', 400, "this video has no track 7"),
        (b'{"track": 1, "action": "explode"}', 400, "action must be one of"),
        (b'{"track": 1, "action": "member", "member": "abc"}', 400, "member must be a whole"),
        (b'{"track": 1, "action": "member", "member": 424242}', 400, "has no member 424242"),
        (b'{"track": 1, "action": "undo", "correction": 999999}', 400, "no correction 999999"),
        (b'{"track": 1, "action": "split", "frame": -3}', 400, "frame must be between"),
    ],
    ids=[
        "huge-float", "fraction", "boolean", "out-of-range", "deep-nesting-big",
        "deep-nesting-small", "3-mb-body", "not-json", "not-an-object", "no-track",
        "unknown-track", "unknown-action", "member-not-a-number", "member-of-no-group",
        "undo-unknown", "negative-frame",
    ],
)  # fmt: skip
def test_a_malformed_correction_gets_a_plain_json_error_and_changes_nothing(
    client, fan, processed_video, body, status, message
):
    client.force_login(fan)
    response = post_raw(client, processed_video, body)
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert message in error
    assert "Traceback" not in error and "Error" not in error
    assert not Correction.objects.exists()


def test_the_corrections_endpoint_answers_json_to_the_wrong_method_and_a_missing_video(
    client, fan, processed_video
):
    import uuid

    client.force_login(fan)
    response = client.get(reverse("videos:correct", args=[processed_video.uuid]))
    assert response.status_code == 405 and "POST" in response.json()["error"]
    response = client.post(
        reverse("videos:correct", args=[uuid.uuid4()]), b"{}", content_type="application/json"
    )
    assert response.status_code == 404 and response.json()["error"]


def test_changes_that_change_nothing_are_not_recorded(client, fan, processed_video, members):
    client.force_login(fan)
    response = correct(client, processed_video, track=2, action="unknown")  # unknown already
    assert response.json()["unchanged"] and "already unknown" in response.json()["summary"]
    correct(client, processed_video, track=1, action="member", member=members[0].pk)
    assert Correction.objects.get().kind == Correction.Kind.CONFIRM  # the model's name, said
    again = correct(client, processed_video, track=1, action="member", member=members[0].pk)
    assert again.json()["unchanged"]
    assert Correction.objects.count() == 1
    assert RenderRun.objects.get().requests == 1


def test_an_undone_correction_leaves_the_curators_queue(client, fan, processed_video, admin_user):

    client.force_login(fan)
    done = correct(client, processed_video, track=1, action="unknown").json()
    correct(client, processed_video, track=2, action="not_face")
    correct(client, processed_video, track=1, action="undo", correction=done["correction"])
    undone = Correction.objects.get(pk=done["correction"])
    assert undone.review == Correction.Review.UNDONE
    pending = Correction.objects.filter(review=Correction.Review.PENDING)
    assert list(pending.values_list("kind", flat=True)) == ["not_face"]
    result = harvest.corrections_approve(corrections=list(pending), by=admin_user)
    assert result["approved"] == 1
    assert not Correction.objects.filter(review=Correction.Review.PENDING).exists(), list(
        Correction.objects.values_list("kind", "review")
    )


def test_undo_refuses_to_skip_a_later_change_of_the_same_track(
    client, fan, processed_video, members
):
    client.force_login(fan)
    first = correct(client, processed_video, track=1, action="member", member=members[1].pk)
    correct(client, processed_video, track=1, action="member", member=members[2].pk)
    response = correct(
        client, processed_video, track=1, action="undo", correction=first.json()["correction"]
    )
    assert response.status_code == 400 and "undo that first" in response.json()["error"]
    assert Track.objects.get(number=1).member == members[2]


def test_the_split_off_half_keeps_the_label_and_its_own_samples(client, fan, processed_video):
    import numpy as np

    track = Track.objects.get(number=1)
    vectors = np.arange(4 * 128, dtype=np.float32).reshape(4, 128)
    track.samples, track.embedding = vectors.tobytes(), vectors.mean(axis=0).tobytes()
    track.sample_boxes = [[2, 10, 10, 50, 60], [8, 10, 10, 50, 60], [15, 10, 10, 50, 60],
                          [20, 10, 10, 50, 60]]  # fmt: skip
    track.save()
    client.force_login(fan)
    response = correct(client, processed_video, track=1, action="split", frame=12).json()
    assert "track 3" in response["rows"]["3"] and "Nayeon" in response["rows"]["3"]
    head, tail = Track.objects.get(number=1), Track.objects.get(number=3)
    assert (tail.member, tail.confidence) == (head.member, 0.93)
    assert [s[0] for s in head.sample_boxes] == [2, 8]
    assert [s[0] for s in tail.sample_boxes] == [15, 20]
    assert np.array_equal(tail.sample_vectors(), vectors[2:])
    assert np.array_equal(head.sample_vectors(), vectors[:2])
    undo = correct(
        client, processed_video, track=1, action="undo", correction=response["correction"]
    )
    assert undo.json()["removed"] == [3]
    head.refresh_from_db()
    assert np.array_equal(head.sample_vectors(), vectors)
    assert [s[0] for s in head.sample_boxes] == [2, 8, 15, 20]


def test_two_tracks_of_one_member_merge_and_the_merge_undoes(client, fan, processed_video):
    client.force_login(fan)
    correct(client, processed_video, track=1, action="split", frame=12)
    response = correct(client, processed_video, track=1, action="merge", other=3)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["removed"] == [3] and body["summary"] == "track 3 merged into it"
    head = Track.objects.get(number=1)
    assert (head.first_frame, head.last_frame, head.detections.count()) == (0, 24, 25)
    assert members_in_export(processed_video) == {(1, "nayeon"), (2, None)}
    page = client.get(reverse("videos:review", args=[processed_video.uuid])).content.decode()
    assert 'data-track="3"' not in page  # merged away
    undo = correct(client, processed_video, track=1, action="undo", correction=body["correction"])
    assert undo.json()["rows"].keys() == {"1", "3"}
    assert members_in_export(processed_video) == {(1, "nayeon"), (2, None), (3, "nayeon")}
    head.refresh_from_db()
    assert (head.first_frame, head.last_frame) == (0, 11)


def test_tracks_on_screen_together_or_of_two_people_do_not_merge(
    client, fan, processed_video, members
):
    client.force_login(fan)
    response = correct(client, processed_video, track=1, action="merge", other=2)
    assert response.status_code == 400 and "different people" in response.json()["error"]
    correct(client, processed_video, track=2, action="member", member=members[0].pk)
    response = correct(client, processed_video, track=1, action="merge", other=2)
    assert response.status_code == 400 and "at the same time" in response.json()["error"]
    assert Track.objects.get(number=2).detections.count() == 10


# --- a per-frame fix of one box --------------------------------------------------------


def box_at(video, number, frame):
    from videos.models import Detection

    found = Detection.objects.filter(track__video=video, track__number=number, frame=frame)
    return found.get().box() if found.exists() else None


def exported_box(video, number, frame):
    rows = exports.predictions(video)["detections"]
    return next((d["box"] for d in rows if (d["track"], d["frame"]) == (number, frame)), None)


def test_a_box_fix_moves_one_frames_box_and_undo_puts_it_back(client, fan, processed_video):
    client.force_login(fan)
    response = correct(
        client, processed_video, track=1, action="box", frame=5, box=[20, 15, 62, 70]
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["summary"] == "box at frame 5 moved"
    assert body["box"] == {"frame": 5, "box": [20, 15, 62, 70]}
    assert exported_box(processed_video, 1, 5) == [20, 15, 62, 70]
    assert box_at(processed_video, 1, 4) == box_at(processed_video, 1, 6) == [10, 10, 50, 60]
    correction = Correction.objects.get()
    assert (correction.kind, correction.user, correction.box_frame) == ("box", fan, 5)
    assert (correction.before_box, correction.after_box) == ([10, 10, 50, 60], [20, 15, 62, 70])
    assert RenderRun.objects.get(video=processed_video).reason == "a box was fixed"
    drawn = rendering.video_labels(processed_video)[5]  # what the re-render draws
    assert [tuple(label.box) for label in drawn] == [(20, 15, 62, 70)]
    track = Track.objects.get(number=1)
    assert (track.member.slug, track.corrected) == ("nayeon", False)  # the label is untouched

    undo = correct(client, processed_video, track=1, action="undo", correction=body["correction"])
    assert undo.status_code == 200 and undo.json()["box"] is None
    assert exported_box(processed_video, 1, 5) == [10, 10, 50, 60]
    assert Track.objects.get(number=1).detections.count() == 25
    assert Correction.objects.get().undone is not None


def test_a_box_drawn_or_removed_at_an_end_moves_the_tracks_first_or_last_frame(
    client, fan, processed_video
):
    from videos.models import Detection

    client.force_login(fan)
    # The tracker lost the stranger (track 2, frames 10-19) a frame early: draw frame 20.
    drawn = correct(client, processed_video, track=2, action="box", frame=20, box=[92, 21, 132, 71])
    assert drawn.json()["summary"] == "box at frame 20 drawn"
    assert 'data-last="20"' in drawn.json()["rows"]["2"]
    stranger = Track.objects.get(number=2)
    assert (stranger.first_frame, stranger.last_frame) == (10, 20)
    added = Detection.objects.get(track=stranger, frame=20)
    assert (added.video, added.time) == (processed_video, 20 / 25)
    # It followed something else in its first frame: remove that box.
    removed = correct(client, processed_video, track=2, action="box", frame=10, box=None)
    assert removed.json()["summary"] == "box at frame 10 removed"
    stranger.refresh_from_db()
    assert (stranger.first_frame, stranger.last_frame) == (11, 20)
    assert exported_box(processed_video, 2, 10) is None
    # Undone in turn, it is exactly as the tracker left it.
    for done in (removed, drawn):
        undo = correct(
            client, processed_video, track=2, action="undo", correction=done.json()["correction"]
        )
        assert undo.status_code == 200, undo.content
    stranger.refresh_from_db()
    assert (stranger.first_frame, stranger.last_frame) == (10, 19)
    frames = list(stranger.detections.order_by("frame").values_list("frame", "time", "left"))
    assert frames == [(f, f / 25, 90) for f in range(10, 20)]


def test_a_box_fix_that_changes_nothing_is_not_recorded(client, fan, processed_video):
    client.force_login(fan)
    same = correct(client, processed_video, track=1, action="box", frame=3, box=[10, 10, 50, 60])
    assert same.status_code == 200 and same.json()["unchanged"]
    assert same.json()["summary"] == "that box is already at frame 3: nothing to change"
    none = correct(client, processed_video, track=2, action="box", frame=3, box=None)
    assert none.json()["summary"] == "there is no box at frame 3: nothing to change"
    assert not Correction.objects.exists()
    assert not RenderRun.objects.exists()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"frame": 25, "box": [10, 10, 50, 60]}, "frame must be inside the video: 0 to 24"),
        ({"frame": -1, "box": [10, 10, 50, 60]}, "frame must be between 0"),
        ({"frame": 2.5, "box": [10, 10, 50, 60]}, "frame must be a whole number"),
        ({"box": [10, 10, 50, 60]}, "frame is missing"),
        ({"frame": 5}, "box is missing"),
        ({"frame": 5, "box": [10, 10, 50]}, "box must be [left, top, right, bottom]"),
        ({"frame": 5, "box": "10,10,50,60"}, "box must be [left, top, right, bottom]"),
        ({"frame": 5, "box": [10, 10, 50.5, 60]}, "box values must be a whole number"),
        ({"frame": 5, "box": [-4, 10, 50, 60]}, "box values must be between 0"),
        ({"frame": 5, "box": [10, 10, 161, 60]}, "inside the 160×120 picture"),
        ({"frame": 5, "box": [10, 10, 50, 121]}, "inside the 160×120 picture"),
        ({"frame": 5, "box": [30, 10, 30, 60]}, "the box is empty"),
        ({"frame": 5, "box": [10, 60, 50, 10]}, "the box is empty"),
    ],
    ids=[
        "frame-past-the-end", "negative-frame", "fractional-frame", "no-frame", "no-box",
        "three-numbers", "a-string", "fractional-edge", "negative-edge", "past-the-right",
        "past-the-bottom", "no-width", "upside-down",
    ],
)  # fmt: skip
def test_a_bad_box_fix_gets_a_clear_error_and_changes_nothing(
    client, fan, processed_video, body, message
):
    client.force_login(fan)
    response = correct(client, processed_video, track=1, action="box", **body)
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert not Correction.objects.exists()
    assert box_at(processed_video, 1, 5) == [10, 10, 50, 60]
    assert Track.objects.get(number=1).detections.count() == 25


def test_a_tracks_only_box_is_not_removed_and_a_not_face_track_has_none_to_fix(
    client, fan, processed_video
):
    client.force_login(fan)
    correct(client, processed_video, track=2, action="split", frame=19)  # track 3: frame 19 only
    response = correct(client, processed_video, track=3, action="box", frame=19, box=None)
    assert response.status_code == 400 and "only box" in response.json()["error"]
    correct(client, processed_video, track=3, action="not_face")
    response = correct(client, processed_video, track=3, action="box", frame=19, box=[1, 1, 9, 9])
    assert response.status_code == 400 and "not a face" in response.json()["error"]
    assert box_at(processed_video, 3, 19) == [90, 20, 130, 70]


def test_only_the_owner_or_a_curator_fixes_a_box(client, other_fan, processed_video):
    from base.roles import ensure_curators_group
    from videos.models import Suggestion

    processed_video.is_public = True
    processed_video.save()
    client.force_login(other_fan)
    response = correct(client, processed_video, track=1, action="box", frame=5, box=[1, 1, 9, 9])
    assert response.status_code == 400
    assert "for the owner or a curator" in response.json()["error"]
    assert not Suggestion.objects.exists() and not Correction.objects.exists()
    assert box_at(processed_video, 1, 5) == [10, 10, 50, 60]
    # A curator's fix applies at once, and is approved (it changes no label to vet).
    other_fan.is_staff = True
    other_fan.save()
    other_fan.groups.add(ensure_curators_group())
    response = correct(client, processed_video, track=1, action="box", frame=5, box=[1, 1, 9, 9])
    assert response.status_code == 200
    assert box_at(processed_video, 1, 5) == [1, 1, 9, 9]
    assert Correction.objects.get().review == Correction.Review.APPROVED


def test_gallery_crops_of_a_track_follow_its_box_fixes(client, fan, processed_video):
    from videos.harvest import crop_boxes

    track = Track.objects.get(number=1)
    track.sample_boxes = [[5, 10, 10, 50, 60], [8, 10, 10, 50, 60], [15, 10, 10, 50, 60]]
    track.save()
    client.force_login(fan)
    moved = correct(client, processed_video, track=1, action="box", frame=5, box=[20, 15, 62, 70])
    removed = correct(client, processed_video, track=1, action="box", frame=8, box=None)
    correct(client, processed_video, track=2, action="box", frame=15, box=[95, 20, 130, 70])
    # Frame 5 is cropped as fixed, frame 8 (it followed something else) not at all; another
    # track's fix in frame 15 leaves this track's face there as it was.
    assert crop_boxes(track) == [[5, 20, 15, 62, 70], [15, 10, 10, 50, 60]]
    for done in (removed, moved):
        correct(
            client, processed_video, track=1, action="undo", correction=done.json()["correction"]
        )
    assert crop_boxes(track) == track.sample_boxes


def test_a_box_fix_of_a_track_merged_away_since_is_not_undone(client, fan, processed_video):
    client.force_login(fan)
    correct(client, processed_video, track=1, action="split", frame=12)  # track 3: frames 12-24
    fixed = correct(client, processed_video, track=3, action="box", frame=20, box=[5, 5, 45, 55])
    correct(client, processed_video, track=1, action="merge", other=3)
    assert box_at(processed_video, 1, 20) == [5, 5, 45, 55]  # the merged track's box, fixed
    undo = correct(
        client, processed_video, track=3, action="undo", correction=fixed.json()["correction"]
    )
    assert undo.status_code == 400 and "merged into track 1" in undo.json()["error"]
    assert box_at(processed_video, 1, 20) == [5, 5, 45, 55]
    refused = correct(client, processed_video, track=3, action="box", frame=21, box=[1, 1, 9, 9])
    assert refused.status_code == 400 and "was merged" in refused.json()["error"]
