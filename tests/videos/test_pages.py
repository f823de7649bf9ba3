"""The fan-facing video pages: who may see what, and what they show."""

import pytest
from django.urls import reverse

from videos import exports

pytestmark = pytest.mark.django_db


def urls(video):
    return {
        "watch": reverse("videos:watch", args=[video.uuid]),
        "progress": reverse("videos:progress", args=[video.uuid]),
        "labelled": reverse("videos:file", args=[video.uuid, "labelled"]),
        "original": reverse("videos:file", args=[video.uuid, "original"]),
        "json": reverse("videos:predictions", args=[video.uuid, "json"]),
        "csv": reverse("videos:predictions", args=[video.uuid, "csv"]),
        "vtt": reverse("videos:predictions", args=[video.uuid, "vtt"]),
    }


def test_the_owner_sees_everything_about_their_video(client, fan, processed_video):
    client.force_login(fan)
    for name, url in urls(processed_video).items():
        assert client.get(url).status_code == 200, name
    page = client.get(urls(processed_video)["watch"]).content.decode()
    assert "Nayeon" in page and "Screen time" in page and "1.0 s" in page


def test_a_fan_cannot_see_review_or_download_another_fans_private_video(
    client, other_fan, processed_video
):
    client.force_login(other_fan)
    for name, url in urls(processed_video).items():
        assert client.get(url).status_code == 404, name
    assert processed_video.title not in client.get(reverse("videos:list")).content.decode()


def test_anonymous_visitors_cannot_see_a_private_video(client, processed_video):
    for name, url in urls(processed_video).items():
        assert client.get(url).status_code == 404, name


def test_a_public_video_can_be_watched_by_anyone_with_the_link(client, processed_video):
    processed_video.is_public = True
    processed_video.save()
    assert client.get(urls(processed_video)["watch"]).status_code == 200
    assert client.get(urls(processed_video)["json"]).status_code == 200


def test_the_export_follows_the_documented_format(processed_video):
    data = exports.predictions(processed_video)
    assert data["video"] == {
        "fps": 25.0,
        "frames": 25,
        "width": 160,
        "height": 120,
        "duration": 1.0,
        "first_frame_time": 0.0,
        "frame_times": None,
        "named_until": 1.0,
        "names_ready": True,
    }
    assert data["model"] == {"version": None, "group": "twice"}
    assert len(data["detections"]) == 35
    first = data["detections"][0]
    assert first == {
        "frame": 0,
        "time": 0.0,
        "box": [10, 10, 50, 60],
        "member": "nayeon",
        "confidence": 0.93,
        "track": 1,
    }
    assert {d["member"] for d in data["detections"] if d["track"] == 2} == {None}


def test_csv_and_webvtt_say_the_same(client, fan, processed_video):
    client.force_login(fan)
    csv_text = b"".join(client.get(urls(processed_video)["csv"]).streaming_content).decode()
    lines = csv_text.strip().splitlines()
    assert lines[0] == "frame,time,left,top,right,bottom,member,confidence,track"
    assert len(lines) == 36
    vtt = client.get(urls(processed_video)["vtt"]).content.decode()
    assert vtt.startswith("WEBVTT")
    assert "00:00:00.000 --> 00:00:01.000\nNayeon" in vtt


def test_subrip_subtitles_say_what_the_webvtt_says_and_the_page_offers_them(
    client, fan, processed_video
):
    client.force_login(fan)
    url = reverse("videos:predictions", args=[processed_video.uuid, "srt"])
    assert f'href="{url}?download=1"' in client.get(urls(processed_video)["watch"]).content.decode()
    response = client.get(f"{url}?download=1")
    assert response["Content-Type"] == "application/x-subrip; charset=utf-8"
    assert 'filename="Stage-predictions.srt"' in response["Content-Disposition"]
    assert response.content.decode() == "1\n00:00:00,000 --> 00:00:01,000\nNayeon\n"


def test_video_files_answer_range_requests_so_players_can_seek(client, fan, processed_video):
    client.force_login(fan)
    size = processed_video.labelled.size
    response = client.get(urls(processed_video)["labelled"], HTTP_RANGE="bytes=100-199")
    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes 100-199/{size}"
    body = b"".join(response.streaming_content)
    with processed_video.labelled.open("rb") as handle:
        handle.seek(100)
        assert body == handle.read(100)
    assert (
        client.get(urls(processed_video)["labelled"], HTTP_RANGE=f"bytes={size + 5}-").status_code
        == 416
    )


def test_exports_of_an_unfinished_video_say_so(client, fan, processed_video):
    processed_video.state = processed_video.State.RUNNING
    processed_video.named_until, processed_video.names_ready = None, False
    processed_video.save()
    client.force_login(fan)
    response = client.get(urls(processed_video)["json"])
    assert response.status_code == 409
    assert "not named yet" in response.json()["error"]


def test_while_a_video_is_named_the_json_has_the_names_so_far_and_the_files_wait(
    client, fan, processed_video
):
    processed_video.state = processed_video.State.RUNNING
    processed_video.named_until, processed_video.names_ready = 0.4, False
    processed_video.save()
    client.force_login(fan)
    data = client.get(urls(processed_video)["json"]).json()
    assert (data["video"]["named_until"], data["video"]["names_ready"]) == (0.4, False)
    assert data["detections"]  # what is stored so far, for the live boxes
    for fmt in ("csv", "vtt"):
        assert client.get(urls(processed_video)[fmt]).status_code == 409
    progress = client.get(reverse("videos:progress", args=[processed_video.uuid])).json()
    assert (progress["named_until"], progress["names_ready"]) == (0.4, False)
    assert not progress["labelled_ready"]
    panels = client.get(reverse("videos:panels", args=[processed_video.uuid])).content.decode()
    assert "Nayeon" in panels and "still being named" in panels
    assert "Downloads" not in panels and "Fancams" not in panels
    review = client.get(reverse("videos:review", args=[processed_video.uuid])).content.decode()
    assert "still being named: review opens once every face in it is named" in review


def test_signup_logs_the_new_fan_in(client):
    response = client.post(
        reverse("videos:signup"),
        {
            "username": "newfan",
            "email": "newfan@example.org",
            "password1": "a-Long-pass-9876",
            "password2": "a-Long-pass-9876",
        },
    )
    assert response.status_code == 302
    assert client.get(reverse("videos:list")).status_code == 200


def test_pages_need_the_right_method(client, fan, processed_video):
    client.force_login(fan)
    assert client.post(urls(processed_video)["watch"]).status_code == 405
    assert client.post(urls(processed_video)["json"]).status_code == 405


@pytest.mark.parametrize("name", ['Mina "live".mp4', "미나 직캠.mp4", 'a/b\\c"d.mp4'])
def test_a_range_reply_names_the_file_in_a_well_formed_header(client, fan, processed_video, name):
    from email.message import Message

    processed_video.original_name = name
    processed_video.save()
    client.force_login(fan)
    url = reverse("videos:file", args=[processed_video.uuid, "original"])
    whole = client.get(url)
    part = client.get(url, HTTP_RANGE="bytes=0-99")
    assert part.status_code == 206
    assert part["Content-Disposition"] == whole["Content-Disposition"]
    header = Message()
    header["Content-Disposition"] = part["Content-Disposition"]
    assert header.get_content_disposition() == "inline"
    assert header.get_filename() == name.rsplit("/", 1)[-1]


@pytest.mark.parametrize(
    ("title", "stem"),
    [
        ("My 6s clip", "My 6s clip"),
        ("../../etc/passwd", "etc_passwd"),
        ('<b>"Nayeon"</b>\r\n', "b__Nayeon___b"),
        ("..", "video"),
        ("나연 직캠", "나연 직캠"),
    ],
)
def test_downloads_are_named_after_the_title_made_safe(client, fan, processed_video, title, stem):
    from email.message import Message

    processed_video.title = title
    processed_video.save()
    client.force_login(fan)
    made = {
        client.get(urls(processed_video)["labelled"]): f"{stem}-labelled.mp4",
        client.get(urls(processed_video)["json"] + "?download=1"): f"{stem}-predictions.json",
        client.get(urls(processed_video)["csv"] + "?download=1"): f"{stem}-predictions.csv",
        client.get(urls(processed_video)["vtt"] + "?download=1"): f"{stem}-predictions.vtt",
    }
    for response, expected in made.items():
        header = Message()
        header["Content-Disposition"] = response["Content-Disposition"]
        assert header.get_filename() == expected


def test_relative_times_read_as_people_say_them():
    from datetime import timedelta

    from django.utils import timezone

    from base.names import time_ago

    now = timezone.now()
    said = {s: time_ago(now - timedelta(seconds=s), now=now) for s in (5, 70, 180, 7300, 90000)}
    assert said == {
        5: "just now",
        70: "1 minute ago",
        180: "3 minutes ago",
        7300: "2 hours ago",
        90000: "yesterday",
    }


def test_the_list_says_just_now_and_offers_delete_to_the_owner(client, fan, processed_video):
    client.force_login(fan)
    page = client.get(reverse("videos:list")).content.decode()
    assert "just now" in page and "0 minutes" not in page
    assert reverse("videos:delete", args=[processed_video.uuid]) in page


def test_the_owner_renames_a_video_and_shares_it_by_link(client, fan, other_fan, processed_video):
    url = reverse("videos:edit", args=[processed_video.uuid])
    client.force_login(other_fan)
    assert client.post(url, {"title": "Mine now", "is_public": "on"}).status_code == 404
    client.force_login(fan)
    assert client.get(url).status_code == 405
    client.post(url, {"title": "  Encore  ", "is_public": "on"})
    processed_video.refresh_from_db()
    assert (processed_video.title, processed_video.is_public) == ("Encore", True)
    client.post(url, {"title": "Encore"})
    processed_video.refresh_from_db()
    assert processed_video.is_public is False
    page = client.get(reverse("videos:watch", args=[processed_video.uuid])).content.decode()
    assert "Only you and the curators can watch it." in page and 'id="copy-link"' not in page


def test_the_site_has_real_error_pages_and_a_favicon(client):
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    assert b"Nothing here" in response.content and b"twicesite/base.css" in response.content
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon["Content-Type"] == "image/x-icon"
    assert b"".join(icon.streaming_content)[:4] == b"\x00\x00\x01\x00"  # an ICO file


def test_the_500_page_renders_with_no_context_at_all():
    from django.template import loader

    html = loader.get_template("500.html").render()
    assert "Something went wrong" in html and "{%" not in html


@pytest.mark.parametrize("show", [True, False])
def test_one_setting_decides_whether_unknown_faces_are_drawn_in_the_mp4_and_the_overlay(
    client, fan, processed_video, settings, show
):
    from videos.rendering import video_labels

    settings.VIDEO_SHOW_UNKNOWN = show
    frame = video_labels(processed_video)[15]  # Nayeon and the stranger are both on screen
    names = sorted(label.text for label in frame)
    assert names == (["Nayeon", "unknown"] if show else ["Nayeon"])
    client.force_login(fan)
    page = client.get(reverse("videos:watch", args=[processed_video.uuid])).content.decode()
    assert f'data-show-unknown="{1 if show else 0}"' in page


def test_the_time_axis_has_round_marks_across_the_video():
    from videos.selectors import time_ticks

    assert [t["label"] for t in time_ticks(1.0)] == ["0:00", "0:01"]
    assert [t["label"] for t in time_ticks(200)] == ["0:00", "1:00", "2:00", "3:00"]
    assert [t["label"] for t in time_ticks(50)][:3] == ["0:00", "0:10", "0:20"]
    assert time_ticks(200)[-1]["left"] == pytest.approx(90.0)
    assert time_ticks(None) == []
