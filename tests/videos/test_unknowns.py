"""The curators' inbox of unknown faces: clusters across videos, named, made a member, dismissed."""

import numpy as np
import pytest
from django.urls import reverse

from videos import unknowns
from videos.models import Correction, Track, Video

pytestmark = pytest.mark.django_db


def face(seed: int, dimensions=512) -> np.ndarray:
    vector = np.random.default_rng(seed).normal(size=dimensions).astype(np.float32)
    return vector / np.linalg.norm(vector)


def stranger_tracks(video, start: int, person: np.ndarray, count: int, model_id: str):
    """Unknown tracks of one person: her face with a little noise in each."""
    made = []
    for k in range(count):
        noise = np.random.default_rng(100 + start + k).normal(scale=0.01, size=person.size)
        vector = (person + noise).astype(np.float32)
        vector /= np.linalg.norm(vector)
        made.append(
            Track.objects.create(
                video=video,
                number=start + k,
                member=None,
                first_frame=0,
                last_frame=5,
                embedding=vector.tobytes(),
                samples=vector.tobytes(),
                embedding_model=model_id,
            )  # fmt: skip
        )
    return made


@pytest.fixture
def two_strangers(processed_video, group, fan, clip):
    """Strangers A (three tracks in two videos) and B (one track)."""
    from django.core.files import File

    from core.faces import embed

    model_id = embed.embedder(group.embedding_model).model_id
    second = Video(owner=fan, group=group, state=Video.State.DONE, fps=25, frames=25)
    with clip.open("rb") as handle:
        second.original.save("clip.mp4", File(handle), save=False)
    second.save()
    a, b = face(1), face(2)
    return {
        "a": stranger_tracks(processed_video, 10, a, 2, model_id)
        + stranger_tracks(second, 10, a, 1, model_id),
        "b": stranger_tracks(processed_video, 20, b, 1, model_id),
    }


def test_unknown_tracks_of_one_person_gather_in_one_cluster_across_videos(group, two_strangers):
    clusters = unknowns.unknown_clusters(group)
    assert [len(c.tracks) for c in clusters] == [3, 1]
    assert {t.pk for t in clusters[0].tracks} == {t.pk for t in two_strangers["a"]}
    assert clusters[0].videos == 2


def test_only_curators_see_the_inbox(client, fan, curator, group, two_strangers):
    url = reverse("videos:unknowns", args=[group.slug])
    client.force_login(fan)
    assert client.get(url).status_code == 404
    assert client.post(url, {"decision": "dismiss", "tracks": "1"}).status_code == 404
    client.force_login(curator)
    page = client.get(url).content.decode()
    assert "3 tracks</strong> in 2 videos" in page and "1 track</strong> in 1 video" in page


def test_a_cluster_named_as_a_member_becomes_her_approved_corrections(
    client, curator, group, members, two_strangers
):
    from recognition.models import TrainingRun

    client.force_login(curator)
    key = ",".join(str(t.pk) for t in two_strangers["a"])
    response = client.post(
        reverse("videos:unknowns", args=[group.slug]),
        {"decision": "name", "member": members[1].pk, "tracks": key},
        follow=True,
    )
    assert "Named 3 track(s) Mina" in response.content.decode()
    for track in two_strangers["a"]:
        track.refresh_from_db()
        assert (track.member, track.corrected) == (members[1], True)
    assert set(Correction.objects.values_list("review", "user")) == {("approved", curator.pk)}
    assert TrainingRun.objects.filter(group=group, state="queued").count() == 1
    assert [len(c.tracks) for c in unknowns.unknown_clusters(group)] == [1]


def test_a_cluster_makes_a_new_member_or_is_dismissed(client, curator, group, two_strangers):
    client.force_login(curator)
    url = reverse("videos:unknowns", args=[group.slug])
    a = ",".join(str(t.pk) for t in two_strangers["a"])
    client.post(url, {"decision": "new", "name": "  Jihyo <b>Park</b> ", "tracks": a})
    jihyo = group.members.get(slug="jihyo-bparkb")
    assert jihyo.name == "Jihyo <b>Park</b>" and jihyo.hotkey == 4
    assert Track.objects.filter(member=jihyo).count() == 3
    page = client.get(url).content.decode()
    assert "<b>Park</b>" not in page  # a name is text, never markup
    again = client.post(url, {"decision": "new", "name": "Jihyo <b>Park</b>", "tracks": str(two_strangers["b"][0].pk)}, follow=True)  # fmt: skip
    assert "has a member called" in again.content.decode()
    client.post(url, {"decision": "dismiss", "tracks": str(two_strangers["b"][0].pk)})
    assert unknowns.unknown_clusters(group) == []
    assert Track.objects.get(pk=two_strangers["b"][0].pk).member is None
