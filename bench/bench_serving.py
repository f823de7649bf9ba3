"""Big downloads behind nginx: do they hold the site's web processes?

    .venv/bin/python -m bench.bench_serving [--size-gb 2] [--downloads 5] [--rate 100M]

A fresh site (its own SQLite database, media and bundled Redis under a temporary folder) with
one processed video whose labelled MP4 is a `--size-gb` file, served by gunicorn (one process,
two threads: deliberately few) behind nginx with deploy/nginx.conf. `--downloads` parallel
downloads of the labelled MP4 (curl, each limited to `--rate` so they last a while) run twice:
with MEDIA_ACCEL_REDIRECT (nginx sends the file after the site's check) and without (the site
streams it). Every half second it samples the gunicorn processes, the connections nginx holds
open to gunicorn, and how long a page (the login page, through nginx) takes. Printed per mode:
bytes each download got, the most gunicorn processes and upstream connections seen, and the
page's median and slowest answer during the downloads.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _site(folder: Path, size: int) -> tuple[dict, str, str]:
    """Database, a fan and one processed video with a `size`-byte labelled file (sparse)."""
    env = {
        **os.environ,
        "VAR_DIR": str(folder / "var"),
        "MEDIA_ROOT": str(folder / "media"),
        "DATABASE_URL": f"sqlite:///{folder / 'db.sqlite3'}",
        "DJANGO_SETTINGS_MODULE": "twicesite.settings",
    }
    env.pop("REDIS_URL", None)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    os.environ.update({k: env[k] for k in ("VAR_DIR", "MEDIA_ROOT", "DATABASE_URL")})
    os.environ["DJANGO_SETTINGS_MODULE"] = "twicesite.settings"
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.test import Client

    from gallery.services import group_get_or_create
    from videos.models import Video

    fan = get_user_model().objects.create_user("fan", password="pw-fan-123")
    group = group_get_or_create(slug="demo", name="Demo")
    video = Video.objects.create(
        owner=fan, group=group, title="Big", original_name="big.mp4", size=size,
        state=Video.State.DONE, labelled="videos/big/labelled.mp4",
    )  # fmt: skip
    path = folder / "media" / "videos" / "big" / "labelled.mp4"
    path.parent.mkdir(parents=True)
    with open(path, "wb") as handle:
        handle.truncate(size)  # sparse: the disk is not what is measured
    client = Client()
    client.force_login(fan)
    return env, f"/videos/{video.uuid}/labelled.mp4", client.cookies["sessionid"].value


def _gunicorn_processes(master: int) -> int:
    out = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(master)], capture_output=True, text=True
    )
    return 1 + len(out.stdout.split())


def _upstream_connections(port: int) -> int:
    out = subprocess.run(
        ["ss", "-Htn", "state", "established", f"( dport = :{port} )"],
        capture_output=True, text=True,
    )  # fmt: skip
    return len(out.stdout.splitlines())


def _page_seconds(url: str) -> float:
    started = time.monotonic()
    with urllib.request.urlopen(url, timeout=60) as answer:
        answer.read()
    return time.monotonic() - started


def run(folder: Path, env: dict, path: str, session: str, *, accel: bool, downloads: int, rate):
    from tests.servers import Gunicorn, Nginx

    mode = folder / ("accel" if accel else "stream")
    mode.mkdir()
    log = mode / "gunicorn-access.log"
    env = {**env, "WEB_ACCESS_LOG": str(log)}
    if accel:
        env["MEDIA_ACCEL_REDIRECT"] = "/_media/"
    web = Gunicorn(mode, env, workers=1, threads=2).start()
    proxy = Nginx(mode, upstream_port=web.port, media_root=folder / "media").start()
    curls = []
    try:
        _page_seconds(proxy.url + "/accounts/login/")  # the worker has loaded the site
        curls = [
            subprocess.Popen(
                [
                    "curl",
                    "-s",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_code} %{size_download}",
                    "--limit-rate",
                    rate,
                    "-H",
                    f"Cookie: sessionid={session}",
                    proxy.url + path,
                ],
                stdout=subprocess.PIPE,
                text=True,
            )  # fmt: skip
            for _ in range(downloads)
        ]
        started, samples = time.monotonic(), []
        while any(c.poll() is None for c in curls):
            time.sleep(0.5)
            samples.append(
                (
                    _gunicorn_processes(web.process.pid),
                    _upstream_connections(web.port),
                    _page_seconds(proxy.url + "/accounts/login/"),
                )
            )
        results = [c.communicate()[0] for c in curls]
        seconds = time.monotonic() - started
    finally:
        for c in curls:
            if c.poll() is None:
                c.kill()
                c.wait()
        proxy.stop()
        web.stop()
    pages = [s[2] for s in samples]
    # How long gunicorn held a thread for each download (its access log's last field).
    held = [float(line.rsplit(" ", 1)[1].rstrip("s\n")) for line in log.open() if path in line]
    print(
        f"{'X-Accel-Redirect' if accel else 'site streams':18} downloads (status, bytes): "
        f"{', '.join(results)} in {seconds:.1f} s\n"
        f"{'':18} gunicorn processes (master + workers) at most {max(s[0] for s in samples)}, "
        f"nginx-to-gunicorn connections during the downloads: at most "
        f"{max(s[1] for s in samples)}, median {statistics.median(s[1] for s in samples):g}\n"
        f"{'':18} seconds a gunicorn thread spent on each download: "
        f"{', '.join(f'{h:.3f}' for h in sorted(held))}\n"
        f"{'':18} a page through nginx meanwhile: median {statistics.median(pages) * 1000:.0f} ms, "
        f"slowest {max(pages) * 1000:.0f} ms ({len(samples)} samples)",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-gb", type=float, default=2.0)
    parser.add_argument("--downloads", type=int, default=5)
    parser.add_argument("--rate", default="100M", help="curl's --limit-rate per download")
    parser.add_argument("--modes", default="accel,stream")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        folder = Path(tmp)
        try:
            _bench(folder, args)
        finally:
            # Before the folder goes: the bundled Redis's socket and pid file are in it.
            from twicesite import embedded_redis

            embedded_redis.stop(folder / "var")


def _bench(folder: Path, args) -> None:
    env, path, session = _site(folder, int(args.size_gb * 1e9))
    print(
        f"{args.downloads} parallel downloads of a {args.size_gb:g} GB labelled MP4 at "
        f"{args.rate}B/s each; gunicorn: 1 process, 2 threads",
        flush=True,
    )
    for mode in args.modes.split(","):
        run(folder, env, path, session, accel=mode == "accel", downloads=args.downloads,
            rate=args.rate)  # fmt: skip


if __name__ == "__main__":
    main()
