import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass

import pytest

# The videos' fixtures (a trained group, clips, a processed video, fans), for the tests here.
from tests.videos.conftest import (  # noqa: F401
    celebs,
    clip,
    fan,
    group,
    members,
    other_fan,
    processed_video,
    stage_clip,
)

S3_REGION = "us-east-1"
S3_KEYS = {"MEDIA_S3_ACCESS_KEY_ID": "testing", "MEDIA_S3_SECRET_ACCESS_KEY": "testing"}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory):
    """moto's standalone S3 server in a process of its own on 127.0.0.1; yields its URL.

    This process's boto3 talks to it over HTTP, as to any S3-compatible server."""
    log = tmp_path_factory.mktemp("moto") / "server.log"
    for _ in range(3):  # a port found free may be taken before the server binds it
        port = _free_port()
        with open(log, "wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and process.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        if process.poll() is None and time.monotonic() < deadline:
            break
        process.kill()
        process.wait()
    else:
        pytest.fail(f"moto's server did not start: {log.read_text()[-2000:]}")
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass
class Bucket:
    """The test's bucket, seen directly through boto3 (not through the site's storage)."""

    client: object
    name: str
    prefix: str

    def keys(self, under: str = "") -> list[str]:
        """Every object key under `under` (a name the site uses), with the media prefix."""
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.name, Prefix=f"{self.prefix}/{under}"
        )
        return sorted(item["Key"] for page in pages for item in page.get("Contents", ()))

    def read(self, name: str) -> bytes:
        """The bytes stored for a name the site uses."""
        return self.client.get_object(Bucket=self.name, Key=f"{self.prefix}/{name}")["Body"].read()


@pytest.fixture
def s3_media(moto_server, settings, monkeypatch):
    """Media for this test in a fresh bucket on moto's server, configured as an operator would:
    the MEDIA_S3_* variables read by the settings' own reader. Worker processes started by the
    test (tests.conftest.run_worker) inherit the variables, so they use the bucket too."""
    import boto3

    from twicesite.env import envs3storage

    name = f"twicesite-{uuid.uuid4().hex[:12]}"
    env = {
        "MEDIA_S3_BUCKET": name,
        "MEDIA_S3_ENDPOINT_URL": moto_server,
        "MEDIA_S3_REGION": S3_REGION,
        "MEDIA_S3_PREFIX": "media",
        **S3_KEYS,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    client = boto3.client(
        "s3",
        endpoint_url=moto_server,
        region_name=S3_REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket=name)
    # Django's setting_changed handler drops the cached storages (default_storage included), so
    # every FileField uses the bucket from here on, and the local disk again afterwards.
    settings.STORAGES = {**settings.STORAGES, "default": envs3storage()}
    return Bucket(client=client, name=name, prefix="media")
