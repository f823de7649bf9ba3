"""Words people read on the pages: said plainly, once, and as typed."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from base.roles import ensure_curators_group
from recognition.models import ModelVersion
from videos.models import Video

pytestmark = pytest.mark.django_db

HOSTILE = "<script>alert(1)</script>"


@pytest.fixture
def trained(group, members):
    return ModelVersion.objects.create(
        group=group, number=1, sha256="0" * 64, embedding_model="m", members=["nayeon"],
        training_counts={"nayeon": 1}, metrics={"negatives": 0}, is_active=True,
    )  # fmt: skip


def upload(client, group, clip, **fields):
    return client.post(
        reverse("videos:upload"),
        {"group": group.pk, "file": SimpleUploadedFile("clip.mp4", clip.read_bytes()), **fields},
    )


def test_a_file_name_with_markup_becomes_the_title_as_typed_and_is_shown_escaped(
    client, fan, group, trained, clip
):
    client.force_login(fan)
    # What the page sends: the name the browser has, beside the file (whose name the server
    # receives cut at the last slash).
    response = upload(client, group, clip, file_name=f"{HOSTILE}.mp4")
    assert response.status_code == 201, response.content
    video = Video.objects.get()
    assert video.title == HOSTILE
    page = client.get(video.get_absolute_url()).content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and HOSTILE not in page


def test_a_title_over_200_characters_is_refused_with_the_reason_not_cut_unsaid(
    client, fan, group, trained, clip, processed_video
):
    client.force_login(fan)
    page = client.get(reverse("videos:upload")).content.decode()
    assert 'name="title"' in page and "maxlength" not in page.split('name="title"')[1][:80]
    assert "Up to 200 characters" in page
    response = upload(client, group, clip, title="x" * 250)
    assert response.status_code == 400
    assert "at most 200 characters (it has 250)" in response.json()["error"]
    edit = reverse("videos:edit", args=[processed_video.uuid])
    response = client.post(edit, {"title": "y" * 201}, follow=True)
    assert "at most 200 characters (it has 201)" in response.content.decode()
    processed_video.refresh_from_db()
    assert processed_video.title == "Stage"


def test_review_cards_say_how_sure_the_name_is_in_words(client, fan, processed_video, members):
    nayeon, stranger = processed_video.tracks.order_by("number")
    stranger.candidate = members[1]
    stranger.save()
    client.force_login(fan)
    page = client.get(reverse("videos:review", args=[processed_video.uuid])).content.decode()
    assert "the model is sure" in page  # Nayeon's 0.93
    assert f"no member matched closely; the nearest is {members[1].name}" in page
    assert "confidence" not in page and "looks most like" not in page


def test_the_admin_says_twicesite_and_reads_plainly(client, django_user_model, trained):
    boss = django_user_model.objects.create_superuser("boss", "b@example.org", "pw-boss-123")
    client.force_login(boss)
    index = client.get("/admin/").content.decode()
    assert "twicesite admin" in index and "Django administration" not in index
    versions = client.get("/admin/recognition/modelversion/").content.decode()
    assert "By use" in versions and "By review" in versions
    assert "By is active" not in versions and "By needs review" not in versions
    assert "0 of 0" not in versions


def test_my_videos_are_a_curators_own_and_every_fans_only_when_asked(
    client, django_user_model, processed_video
):
    curator = django_user_model.objects.create_user("cura", password="pw-cura-123", is_staff=True)
    curator.groups.add(ensure_curators_group())
    client.force_login(curator)
    mine = client.get(reverse("videos:list")).content.decode()
    assert "My videos" in mine and processed_video.title not in mine
    everyone = client.get(reverse("videos:list") + "?all=1").content.decode()
    assert "All videos" in everyone and processed_video.title in everyone and ">fan<" in everyone


def test_the_jobs_page_says_done_once(client, django_user_model, processed_video):
    processed_video.stage = "done"
    processed_video.save()
    boss = django_user_model.objects.create_superuser("boss", "b@example.org", "pw-boss-123")
    client.force_login(boss)
    rows = client.get(reverse("admin-jobs-data")).json()["jobs"]
    row = next(r for r in rows if r["title"] == "Stage")
    assert (row["state"], row["stage"]) == ("done", "")
