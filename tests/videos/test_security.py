"""Data never runs as code in a page; errors are logged once."""

import subprocess
import sys
from pathlib import Path

import pytest
from django.urls import reverse

from gallery.models import Member

HOSTILE = "</script><script>alert(document.cookie)</script>"


def test_every_page_forbids_inline_script(client):
    policy = client.get("/")["Content-Security-Policy"]
    assert "script-src 'self';" in policy and "unsafe-inline" not in policy.split("style-src")[0]
    assert "object-src 'none'" in policy and "frame-ancestors 'none'" in policy


@pytest.mark.django_db
def test_a_hostile_member_name_is_data_on_the_watch_page(client, fan, processed_video):
    Member.objects.filter(slug="nayeon").update(name=HOSTILE)
    client.force_login(fan)
    page = client.get(reverse("videos:watch", args=[processed_video.uuid])).content.decode()
    assert HOSTILE not in page
    assert "<script>alert" not in page


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_hostile_member_name_runs_no_script_in_chromium(page, django_user_model, processed_video):
    Member.objects.filter(slug="nayeon").update(name=HOSTILE)
    boss = django_user_model.objects.create_superuser("boss", "b@example.org", "pw-boss-123")
    processed_video.owner = boss
    processed_video.save()
    dialogs, violations = [], []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.on("console", lambda m: "Content Security Policy" in m.text and violations.append(m))
    page.goto("/admin/login/")
    page.fill("#id_username", "boss")
    page.fill("#id_password", "pw-boss-123")
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")
    for url in (
        reverse("videos:watch", args=[processed_video.uuid]),
        reverse("videos:review", args=[processed_video.uuid]),
        reverse("admin:gallery_member_changelist"),
        reverse("admin:videos_video_change", args=[processed_video.pk]),
    ):
        page.goto(url)
        page.wait_for_load_state("load")
    page.goto(reverse("videos:watch", args=[processed_video.uuid]))
    # The name arrives intact, as text: in the roster the page's script reads, and on screen.
    members = page.evaluate("() => JSON.parse(document.getElementById('members').textContent)")
    assert members["nayeon"]["name"] == HOSTILE
    assert HOSTILE in page.locator(".chart").inner_text()
    assert dialogs == []
    assert violations == []  # nothing needed blocking: the page itself has no inline script


def test_an_error_is_logged_once_with_debug_on(tmp_path):
    root = Path(__file__).resolve().parents[2]
    code = "import logging; logging.getLogger('django.request').error('the-one-error')"
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=root, capture_output=True, text=True, timeout=60,
        # A REDIS_URL, so this process starts no bundled Redis of its own.
        env={**__import__("os").environ, "DEBUG": "true", "VAR_DIR": str(tmp_path),
             "REDIS_URL": "redis://127.0.0.1:6379/15"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("the-one-error") == 1, result.stderr
