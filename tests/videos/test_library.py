"""Member pages and the together search across a library of really processed videos (the
footage corpus: Tom and Halle in the first shot, Keanu and a stranger in the second)."""

import re

import pytest
from django.urls import reverse

from tests.conftest import reread, work
from videos import fancams, library, selectors
from videos.models import Track, Video
from videos.track_edits import track_box, track_split

pytestmark = pytest.mark.django_db(transaction=True)


def member_url(slug):
    return reverse("library:member", args=["celebs", slug])


def together_url(*slugs):
    return reverse("library:group", args=["celebs"]) + "?" + "&".join(f"m={s}" for s in slugs)


def moment_links(page: str, video) -> list[float]:
    """The times the page links into `video`'s watch page, in order."""
    watch = reverse("videos:watch", args=[video.uuid])
    return [float(t) for t in re.findall(re.escape(watch) + r"#t=([0-9.]+)", page)]


def test_her_moments_are_on_the_players_clock_and_add_up_to_the_watch_pages_screen_time(
    client, fan, footage_upload, celebs
):
    video = footage_upload("late_video.mp4", fan)  # the picture starts 0.85 s after the sound
    tom = celebs.members.get(slug="tom-hanks")
    client.force_login(fan)

    page = client.get(member_url("tom-hanks")).content.decode()

    found = library.member_library(fan, tom)
    (appearance,) = found.appearances
    watch_page = {p["slug"]: p["seconds"] for p in selectors.screen_time(video)}
    assert round(appearance.seconds, 1) == watch_page["tom-hanks"]
    assert moment_links(page, video) == [pytest.approx(0.85, abs=0.001)]
    assert appearance.moments == [pytest.approx((0.85, 0.85 + 30 / 25), abs=1e-3)]
    assert video.title in page
    # She shares the screen with Halle for the whole first shot, never with Keanu.
    assert [(m.slug, round(s, 2)) for m, s in found.seen_with] == [("halle-berry", 1.2)]
    assert "Halle Berry" in page and together_url("tom-hanks", "halle-berry") in page.replace(
        "&amp;", "&"
    ).replace("#together", "")


def test_a_variable_rate_video_is_timed_by_every_frames_own_time(
    client, fan, footage_upload, celebs
):
    video = footage_upload("vfr.mp4", fan)
    clock = video.clock()
    assert clock.times is not None  # frames are dropped here and there
    watch_page = {p["slug"]: p["seconds"] for p in selectors.screen_time(video)}
    timeline = selectors.timeline(video)
    for slug in ("tom-hanks", "halle-berry", "keanu-reeves"):
        member = celebs.members.get(slug=slug)
        for _ in range(2):  # read, then kept by the process
            (appearance,) = library.member_library(fan, member).appearances
            assert round(appearance.seconds, 1) == watch_page[slug]
            assert appearance.moments[0][0] == pytest.approx(timeline[slug][0]["start"])


def test_a_box_removed_from_a_track_takes_its_frame_off_her_screen_time(
    fan, footage_upload, celebs
):
    video = footage_upload("fps25.mp4", fan)
    tom = celebs.members.get(slug="tom-hanks")
    track = Track.objects.get(video=video, member=tom)
    before = library.member_library(fan, tom).seconds
    track_box(track=track, user=fan, frame=track.first_frame + 10, box=None)

    after = library.member_library(fan, tom)
    assert after.seconds == pytest.approx(before - 1 / 25)
    watch_page = {p["slug"]: p["seconds"] for p in selectors.screen_time(video)}
    assert round(after.seconds, 1) == watch_page["tom-hanks"]
    # One frame missing is still one moment.
    assert len(after.appearances[0].moments) == 1
    halle = celebs.members.get(slug="halle-berry")
    assert library.together(fan, [tom, halle])[0].seconds == pytest.approx(after.seconds)
    assert dict((m.slug, s) for m, s in after.seen_with)["halle-berry"] == pytest.approx(
        after.seconds
    )

    # Split before the gap: the tail holds it, though no box of the tail was changed.
    track_split(track=track, user=fan, frame=track.first_frame + 5)
    split = library.member_library(fan, tom)
    assert split.seconds == pytest.approx(after.seconds)
    assert dict((m.slug, s) for m, s in split.seen_with)["halle-berry"] == pytest.approx(
        after.seconds
    )


def test_the_together_search_finds_every_stretch_they_share(client, fan, footage_upload, celebs):
    video = footage_upload("late_video.mp4", fan)
    client.force_login(fan)

    page = client.get(together_url("tom-hanks", "halle-berry")).content.decode()
    assert moment_links(page, video) == [pytest.approx(0.85, abs=0.001)]
    assert "Halle Berry and Tom Hanks: 1.2 s on screen together" in page

    page = client.get(together_url("tom-hanks", "keanu-reeves")).content.decode()
    assert moment_links(page, video) == []
    assert "are never on screen together" in page

    page = client.get(together_url("tom-hanks")).content.decode()
    assert "Choose at least two members" in page
    page = client.get(together_url("tom-hanks", "<b>nobody</b>")).content.decode()
    assert "“&lt;b&gt;nobody&lt;/b&gt;”" in page and "<b>nobody" not in page


def test_a_private_video_stays_hidden_from_another_fan(
    client, fan, other_fan, admin_user, footage_upload, celebs
):
    mine = footage_upload("fps25.mp4", fan, title="Fan's own stage")
    theirs = footage_upload("late_video.mp4", other_fan, title="Other fan's private stage")
    shared = footage_upload(
        "edit_list.mp4", other_fan, title="Other fan's shared stage", public=True
    )
    tom, halle = celebs.members.get(slug="tom-hanks"), celebs.members.get(slug="halle-berry")

    client.force_login(fan)
    for url in (member_url("tom-hanks"), together_url("tom-hanks", "halle-berry")):
        page = client.get(url).content.decode()
        assert "Fan&#x27;s own stage" in page
        assert "Other fan" not in page
        assert str(theirs.uuid) not in page and str(shared.uuid) not in page
    assert [a.video_id for a in library.member_library(fan, tom).appearances] == [mine.pk]
    assert [a.video_id for a in library.together(fan, [tom, halle])] == [mine.pk]

    client.force_login(other_fan)
    page = client.get(member_url("tom-hanks")).content.decode()
    assert str(theirs.uuid) in page and str(mine.uuid) not in page

    # A curator's pages hold their own videos, and every fan's on asking (as the video list).
    client.force_login(admin_user)
    page = client.get(together_url("tom-hanks", "halle-berry")).content.decode()
    assert not any(str(v.uuid) in page for v in (mine, theirs, shared))
    page = client.get(together_url("tom-hanks", "halle-berry") + "&all=1").content.decode()
    assert all(str(v.uuid) in page for v in (mine, theirs, shared))
    page = client.get(member_url("tom-hanks") + "?all=1").content.decode()
    assert all(str(v.uuid) in page for v in (mine, theirs, shared))
    client.force_login(fan)  # asking is for curators
    page = client.get(member_url("tom-hanks") + "?all=1").content.decode()
    assert str(mine.uuid) in page and str(theirs.uuid) not in page


def test_the_library_is_a_fans_own_videos_and_every_fans_for_a_curator_who_asks(
    fan, other_fan, admin_user, footage_upload
):
    from django.contrib.auth.models import AnonymousUser

    mine = footage_upload("fps25.mp4", fan)
    theirs = footage_upload("late_video.mp4", other_fan)
    admins = footage_upload("edit_list.mp4", admin_user)
    Video.objects.create(owner=fan, group=mine.group, state=Video.State.RUNNING)  # not yet

    def listed(user, **asked):
        return set(library.library_of(user, **asked).values_list("pk", flat=True))

    assert listed(fan) == listed(fan, everyone=True) == {mine.pk}
    assert listed(other_fan) == {theirs.pk}
    assert listed(admin_user) == {admins.pk}
    assert listed(admin_user, everyone=True) == {mine.pk, theirs.pk, admins.pk}
    assert listed(AnonymousUser(), everyone=True) == set()


def test_names_on_the_watch_page_lead_to_their_member_pages(client, fan, footage_upload):
    video = footage_upload("fps25.mp4", fan)
    client.force_login(fan)
    page = client.get(reverse("videos:watch", args=[video.uuid])).content.decode()
    for slug in ("tom-hanks", "halle-berry", "keanu-reeves"):
        # Once in the timeline, once in the screen-time list.
        assert page.count(f'href="{member_url(slug)}"') == 2
    assert "videos/start_at.js" in page


def test_her_fancams_are_listed_only_from_videos_on_the_viewers_list(
    client, fan, other_fan, footage_upload, celebs, rq_queue
):
    tom = celebs.members.get(slug="tom-hanks")
    mine = fancams.fancam_request(video=footage_upload("fps25.mp4", fan), member=tom, user=fan)
    theirs = fancams.fancam_request(
        video=footage_upload("late_video.mp4", other_fan), member=tom, user=other_fan
    )
    work()
    assert reread(mine).state == reread(theirs).state == "done"

    client.force_login(fan)
    page = client.get(member_url("tom-hanks")).content.decode()
    assert reverse("videos:fancam_file", args=[mine.video.uuid, mine.pk]) in page
    assert str(theirs.video.uuid) not in page


def test_member_pages_are_for_signed_in_fans_and_name_only_real_members(
    client, fan, celebs, group, members
):
    assert client.get(member_url("tom-hanks"))["Location"].startswith("/accounts/login/")
    client.force_login(fan)
    assert client.get(member_url("tom-hanks")).status_code == 200
    assert client.get(member_url("nobody")).status_code == 404
    # Nayeon is a member of another group, not of this one.
    assert client.get(member_url("nayeon")).status_code == 404
    assert client.get(reverse("library:member", args=["twice", "nayeon"])).status_code == 200
    assert client.post(member_url("tom-hanks")).status_code == 405


def test_names_are_shown_as_text_never_as_markup(client, fan, group):
    from gallery.services import member_get_or_create

    member_get_or_create(group=group, slug="x", name='<img src=x onerror="alert(1)">')
    member_get_or_create(group=group, slug="y", name="Y")
    client.force_login(fan)
    for url in (
        reverse("library:member", args=["twice", "x"]),
        reverse("library:group", args=["twice"]) + "?m=x&m=y",
        reverse("library:groups"),
    ):
        page = client.get(url).content.decode()
        assert "<img src=x" not in page
        assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page
