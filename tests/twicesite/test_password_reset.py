"""A forgotten password, as a fan goes through it: the site (gunicorn, mail settings from
EMAIL_URL) sends the link to a real SMTP server (aiosmtpd), the link is read out of the
received mail, followed, and the new password logs in."""

import email
import email.policy
import http.cookiejar
import re
import urllib.error
import urllib.parse
import urllib.request

import pytest

from tests.conftest import worker_env
from tests.servers import Gunicorn, free_port

pytestmark = pytest.mark.django_db(transaction=True)


class Mailbox:
    """aiosmtpd's handler: every message it is given, parsed."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append((envelope.rcpt_tos, message))
        return "250 Message accepted for delivery"


@pytest.fixture
def fan(django_user_model):
    return django_user_model.objects.create_user(
        "fan", email="fan@example.org", password="pw-fan-123"
    )


@pytest.fixture
def smtp_server():
    from aiosmtpd.controller import Controller

    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller.port, mailbox
    controller.stop()


@pytest.fixture
def web(tmp_path, smtp_server, media_root):
    port, _ = smtp_server
    env = {**worker_env(), "EMAIL_URL": f"smtp://127.0.0.1:{port}", "EMAIL_FROM": "t@example.org"}
    server = Gunicorn(tmp_path, env, workers=1).start()
    yield f"http://127.0.0.1:{server.port}"
    server.stop()


class Browser:
    """urllib with cookies, sending forms the way a browser does (with the page's CSRF token)."""

    def __init__(self, base: str):
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def get(self, url: str):
        with self.opener.open(urllib.parse.urljoin(self.base, url), timeout=30) as answer:
            return answer.geturl(), answer.read().decode()

    def post(self, url: str, fields: dict):
        page_url, page = self.get(url)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        body = urllib.parse.urlencode({"csrfmiddlewaretoken": token, **fields}).encode()
        request = urllib.request.Request(page_url, data=body, headers={"Referer": page_url})
        with self.opener.open(request, timeout=30) as answer:
            return answer.geturl(), answer.read().decode()


def test_a_fan_resets_a_forgotten_password_with_the_link_mailed_to_them(web, smtp_server, fan):
    _, mailbox = smtp_server
    browser = Browser(web)
    _, login = browser.get("/accounts/login/")
    assert 'href="/accounts/password_reset/"' in login
    url, page = browser.post("/accounts/password_reset/", {"email": "FAN@example.org"})
    assert url.endswith("/accounts/password_reset/done/") and "Check your email" in page
    assert len(mailbox.messages) == 1
    recipients, message = mailbox.messages[0]
    assert recipients == ["fan@example.org"]
    assert message["Subject"] == "Choose a new twicesite password"
    assert message["From"] == "t@example.org"
    text = message.get_content()
    link = re.search(r"http://127\.0\.0\.1:\d+/accounts/reset/\S+/", text).group(0)
    assert "&amp;" not in text and "Hello fan" in text

    url, page = browser.post(
        link, {"new_password1": "a-New-pass-4711", "new_password2": "a-New-pass-4711"}
    )
    assert url.endswith("/accounts/reset/done/") and "Your password is changed" in page
    # The link works once.
    _, page = browser.get(link)
    assert "This link no longer works" in page
    # The new password logs in; the old one does not.
    fresh = Browser(web)
    url, page = fresh.post("/accounts/login/", {"username": "fan", "password": "pw-fan-123"})
    assert url.endswith("/accounts/login/")
    url, page = fresh.post("/accounts/login/", {"username": "fan", "password": "a-New-pass-4711"})
    assert url.endswith("/videos/") and "fan" in page


def test_an_unknown_address_gets_the_same_page_and_no_mail(web, smtp_server, fan):
    _, mailbox = smtp_server
    url, page = Browser(web).post("/accounts/password_reset/", {"email": "nobody@example.org"})
    assert url.endswith("/accounts/password_reset/done/") and "Check your email" in page
    assert mailbox.messages == []
