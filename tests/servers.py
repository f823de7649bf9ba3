"""Real servers for tests that go through HTTP as production does: gunicorn running the site
with the checkout's gunicorn.conf.py, and nginx in front of it with deploy/nginx.conf.

Each runs in a process group of its own and is stopped (the whole group) when the test ends."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NGINX_CONF = ROOT / "deploy" / "nginx.conf"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited: {log.read_text()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{process.args[0]} did not listen on {port}: {log.read_text()[-2000:]}")


def stop_group(process: subprocess.Popen, sig=signal.SIGTERM, timeout: float = 15) -> None:
    """Stop a server started with start_new_session, and every process of its group."""
    if process.poll() is None:
        os.killpg(process.pid, sig)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)  # anything of the group still there
    except ProcessLookupError:
        pass
    process.wait()


class Gunicorn:
    """`gunicorn twicesite.wsgi` in the checkout, as docs/deploy.md runs it, with `env`."""

    def __init__(self, folder: Path, env: dict, *, workers: int = 2, threads: int = 4):
        self.folder = folder
        self.port = free_port()
        self.log = folder / "gunicorn.log"
        self.env = {
            **env,
            "WEB_BIND": f"127.0.0.1:{self.port}",
            "WEB_WORKERS": str(workers),
            "WEB_THREADS": str(threads),
            "WEB_GRACEFUL_SECONDS": "2",
        }
        self.process = None

    def start(self) -> "Gunicorn":
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "twicesite.wsgi"],
                cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        wait_for_port(self.port, self.process, self.log)
        return self

    def stop(self) -> None:
        if self.process is not None:
            stop_group(self.process)


def nginx_executable() -> str:
    for candidate in (shutil.which("nginx"), "/usr/sbin/nginx"):
        if candidate and Path(candidate).exists():
            return candidate
    pytest.skip("no nginx: install Debian's package with `apt-get install nginx`")


class Nginx:
    """nginx with the site's deploy/nginx.conf, its three marked lines set for this test."""

    def __init__(self, folder: Path, *, upstream_port: int, media_root: Path):
        self.executable = nginx_executable()
        self.folder = folder
        self.port = free_port()
        self.log = folder / "error.log"
        site = NGINX_CONF.read_text()
        for old, new in (
            ("server 127.0.0.1:8000;", f"server 127.0.0.1:{upstream_port};"),
            ("listen 80;", f"listen 127.0.0.1:{self.port};"),
            ("alias /srv/twicesite/media/;", f"alias {media_root}/;"),
        ):
            assert site.count(old) == 1, f"deploy/nginx.conf no longer has {old!r}"
            site = site.replace(old, new)
        (folder / "site.conf").write_text(site)
        temps = "\n".join(
            f"{kind}_temp_path {folder}/{kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        # As root, nginx's workers would run as nobody, who cannot read the test's media.
        user = "user root;" if os.geteuid() == 0 else ""
        (folder / "nginx.conf").write_text(
            f"""{user}
daemon off;
worker_processes 1;
pid {folder}/nginx.pid;
error_log {self.log} warn;
events {{ worker_connections 256; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log {folder}/access.log;
    {temps}
    include {folder}/site.conf;
}}
"""
        )
        self.process = None

    def start(self) -> "Nginx":
        with open(self.folder / "stderr.log", "wb") as out:
            self.process = subprocess.Popen(
                [self.executable, "-p", str(self.folder), "-c", str(self.folder / "nginx.conf"),
                 "-e", str(self.log)],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        wait_for_port(self.port, self.process, self.log)
        return self

    def stop(self) -> None:
        if self.process is not None:
            stop_group(self.process, signal.SIGQUIT)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"
