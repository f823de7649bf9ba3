"""Files through production's servers: nginx in front of gunicorn, the site checking who may
read a file and nginx sending its bytes (X-Accel-Redirect), or the site streaming them from S3."""

import http.client
import json
import secrets
import uuid as uuidlib
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.test import Client

from recognition.models import ModelVersion
from tests.conftest import worker_env
from tests.servers import Gunicorn, Nginx, nginx_executable
from tests.videos.conftest import make_clip
from videos.models import Video

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def site(tmp_path, media_root):
    """serve(accel=True): gunicorn on this test's database and media, and nginx in front."""
    nginx_executable()  # skips, saying why, where nginx is not installed
    started = []

    def serve(*, accel: bool = True, workers: int = 2):
        env = worker_env()
        if accel:
            env["MEDIA_ACCEL_REDIRECT"] = "/_media/"
        folder = tmp_path / f"servers-{len(started)}"
        folder.mkdir()
        web = Gunicorn(folder, env, workers=workers)
        started.append(web)
        web.start()
        proxy = Nginx(folder, upstream_port=web.port, media_root=Path(media_root).resolve())
        started.append(proxy)
        proxy.start()
        return web, proxy

    yield serve
    for server in reversed(started):
        server.stop()


def cookies_of(user) -> str:
    """A signed-in session for `user`, and a CSRF token, as a browser's Cookie header."""
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


def get(port: int, path: str, *, cookie: str = "", headers=None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.request("GET", path, headers={"Cookie": cookie, **(headers or {})})
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response, body


def original_bytes(video) -> bytes:
    return (Path(django_settings.MEDIA_ROOT) / video.original.name).read_bytes()


def test_nginx_sends_the_whole_file_once_the_site_has_checked_the_viewer(
    site, processed_video, fan
):
    web, proxy = site()
    path = f"/videos/{processed_video.uuid}/labelled.mp4"
    expected = (Path(django_settings.MEDIA_ROOT) / processed_video.labelled.name).read_bytes()
    response, body = get(proxy.port, path, cookie=cookies_of(fan))
    assert response.status == 200
    assert body == expected
    assert response.getheader("Content-Type") == "video/mp4"
    assert response.getheader("Content-Length") == str(len(expected))
    assert response.getheader("Content-Disposition") == 'inline; filename="Stage-labelled.mp4"'
    assert response.getheader("X-Accel-Redirect") is None  # nginx keeps it to itself
    # The site itself sent no byte of it: only the name of the file for nginx to send.
    response, body = get(web.port, path, cookie=cookies_of(fan))
    assert response.status == 200 and body == b""
    assert response.getheader("X-Accel-Redirect") == f"/_media/{processed_video.labelled.name}"


def test_nginx_answers_ranges_with_206_and_past_the_end_with_416(site, processed_video, fan):
    web, proxy = site()
    path, cookie = f"/videos/{processed_video.uuid}/original.mp4", cookies_of(fan)
    data = original_bytes(processed_video)
    response, body = get(proxy.port, path, cookie=cookie, headers={"Range": "bytes=100-1099"})
    assert response.status == 206
    assert body == data[100:1100]
    assert response.getheader("Content-Range") == f"bytes 100-1099/{len(data)}"
    response, body = get(proxy.port, path, cookie=cookie, headers={"Range": "bytes=-64"})
    assert response.status == 206 and body == data[-64:]
    response, body = get(proxy.port, path, cookie=cookie, headers={"Range": f"bytes={len(data)}-"})
    assert response.status == 416
    assert response.getheader("Content-Range") == f"bytes */{len(data)}"


def test_a_private_file_is_refused_before_any_byte_and_the_internal_location_is_unreachable(
    site, processed_video, other_fan
):
    web, proxy = site()
    data = original_bytes(processed_video)
    for cookie in ("", cookies_of(other_fan)):
        for kind in ("original", "labelled"):
            response, body = get(
                proxy.port, f"/videos/{processed_video.uuid}/{kind}.mp4", cookie=cookie,
                headers={"Range": "bytes=0-99"},
            )  # fmt: skip
            assert response.status == 404
            assert response.getheader("Content-Type").startswith("text/html")
            assert data[:100] not in body and b"ftyp" not in body
    # The files' own place behind nginx answers no request from outside.
    for prefix in ("/_media/", "/_media//", "/_MEDIA/"):
        response, body = get(proxy.port, prefix + processed_video.original.name)
        assert response.status == 404
        assert b"ftyp" not in body


def test_staff_get_a_gallery_image_through_nginx_and_fans_do_not(
    site, django_user_model, fan, members
):
    from gallery import services as gallery_services
    from tests import imagefactory as make

    data = make.encode(make.face("tom-hanks", 1), "PNG")
    image = gallery_services.image_ingest(member=members[0], data=data, name="tom.png").image
    boss = django_user_model.objects.create_superuser("boss", "b@example.org", "pw-boss-123")
    web, proxy = site()
    path = f"/gallery/images/{image.uuid}/file/"
    response, body = get(proxy.port, path, cookie=cookies_of(boss))
    assert response.status == 200
    assert body == (Path(django_settings.MEDIA_ROOT) / image.file.name).read_bytes()
    assert response.getheader("Content-Type") == "image/png"
    response, body = get(proxy.port, path, cookie=cookies_of(fan))
    assert response.status == 302 and body[:8] != data[:8]


def test_a_video_on_s3_is_streamed_by_the_site_through_nginx(site, s3_media, processed_video, fan):
    web, proxy = site()
    path, cookie = f"/videos/{processed_video.uuid}/labelled.mp4", cookies_of(fan)
    data = s3_media.read(processed_video.labelled.name)
    response, body = get(proxy.port, path, cookie=cookie)
    assert response.status == 200 and body == data
    response, body = get(web.port, path, cookie=cookie, headers={"Range": "bytes=10-49"})
    assert response.getheader("X-Accel-Redirect") is None
    assert response.status == 206 and body == data[10:50]
    response, body = get(proxy.port, path, cookie=cookie, headers={"Range": "bytes=10-49"})
    assert response.status == 206 and body == data[10:50]


def padded_mp4(path: Path, size: int) -> Path:
    """A real MP4 grown to `size` bytes by a trailing `free` box, which players skip."""
    make_clip(path, seconds=1.0)
    header = 16  # a box with a 64-bit size: 4 bytes 1, 'free', 8 bytes of size
    pad = size - path.stat().st_size
    with path.open("ab") as handle:
        handle.write((1).to_bytes(4, "big") + b"free" + pad.to_bytes(8, "big"))
        handle.truncate(size)  # zeros, without writing a gigabyte through Python
    assert path.stat().st_size == size and pad > header
    return path


@pytest.mark.slow
def test_a_1_gb_upload_goes_through_the_proxy_to_the_site(site, tmp_path, fan, group, members):
    ModelVersion.objects.create(
        group=group, number=1, sha256="0" * 64, embedding_model="m", members=["nayeon"],
        training_counts={"nayeon": 1}, metrics={}, is_active=True,
    )  # fmt: skip
    source = padded_mp4(tmp_path / "big.mp4", 1_000_000_000)
    web, proxy = site(workers=1)
    token = secrets.token_hex(16)
    boundary = uuidlib.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="group"\r\n\r\n{group.pk}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="title"\r\n\r\nBig\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.mp4"\r\n'
        "Content-Type: video/mp4\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    def body():
        yield head
        with source.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                yield chunk
        yield tail

    connection = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=600)
    try:
        connection.request(
            "POST", "/videos/upload/", body=body(),
            headers={
                "Content-Type": f"multipart/form-data; boundary={boundary}",
                "Content-Length": str(len(head) + source.stat().st_size + len(tail)),
                "Cookie": f"{cookies_of(fan)}; csrftoken={token}",
                "X-CSRFToken": token,
            },
        )  # fmt: skip
        response = connection.getresponse()
        answer = response.read()
        connection.close()
        assert response.status == 201, answer[:500]
        video = Video.objects.get(uuid=json.loads(answer)["url"].strip("/").split("/")[-1])
        assert video.size == 1_000_000_000
        stored = Path(django_settings.MEDIA_ROOT) / video.original.name
        assert stored.stat().st_size == video.size
    finally:
        source.unlink()  # two gigabytes the test's folder need not keep
        for video in Video.objects.all():
            (Path(django_settings.MEDIA_ROOT) / video.original.name).unlink(missing_ok=True)


def test_the_nginx_config_in_the_deploy_guide_is_the_tested_one():
    from tests.servers import NGINX_CONF, ROOT

    guide = (ROOT / "docs" / "deploy.md").read_text()
    block = guide.split("```nginx\n", 1)[1].split("```", 1)[0]
    directives = [line.split("#", 1)[0].rstrip() for line in NGINX_CONF.read_text().splitlines()]
    shown = [line.split("#", 1)[0].rstrip() for line in block.splitlines()]
    assert [d for d in directives if d.strip()] == [s for s in shown if s.strip()]
