"""What a fan waits for: upload to ready through running workers, against a plain transcode.

    .venv/bin/python -m bench.bench_ready [--video V] [--workers 1] [--runs 3]
        [--cores-per-worker K]

A fresh site (its own database, media and bundled Redis under a temporary folder) with the
demo group trained; `--workers` workers are started as `make demo` starts them and left to
warm up. Each run then submits the video as an upload does (probe, store, enqueue) and waits
for it to be ready (the labelled MP4 stored). Printed per run: upload-to-ready seconds, the
plain ffmpeg transcode of the same file timed in the same run, their ratio, frames per
second, seconds to the first progress update a fan sees, and the workers' peak memory (PSS of
each worker with its horse and children, the largest one).

And what a fan who presses play at once sees of the names: seconds from the upload to the
first names (`named_until` > 0) and to the first five seconds of them (`named_until` >= 5),
to `names_ready` (and its ratio to the transcode), and `names_lead_min_s`: from the first
names on, the least that `named_until` stood ahead of a player started then (its playhead at
first_names_at + seconds since; under 0 means the player caught up with the names).

`--cores-per-worker 1` stands in for workers on machines of their own on a machine too small
to have them: each worker is pinned to a core (its jobs' processes too) and analyses on one
process, so `--workers 2` against `--workers 1` shows what a second machine buys.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.bench_video import _tree_pss_mb

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", default=str(SHARED / "data" / "stage-dev.mp4"))
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--cores-per-worker", type=int, default=0,
        help="pin each worker to this many cores of its own (as if each were a machine of that "
        "size) and analyse on as many processes; 0: every worker may use every core",
    )  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the temporary site")
    args = parser.parse_args()
    site = Path(tempfile.mkdtemp(prefix="bench-ready-"))
    env = {**os.environ, "VAR_DIR": str(site / "var"), "MEDIA_ROOT": str(site / "media")}
    env.pop("REDIS_URL", None)
    env.pop("DATABASE_URL", None)
    manage = [sys.executable, "manage.py"]
    quiet = {"cwd": ROOT, "env": env, "stdout": subprocess.DEVNULL, "check": True}
    subprocess.run([*manage, "migrate", "-v0"], **quiet)
    subprocess.run([*manage, "demo_setup", "--no-sample"], **quiet)
    os.environ.update(VAR_DIR=env["VAR_DIR"], MEDIA_ROOT=env["MEDIA_ROOT"])
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "twicesite.settings")
    import django

    django.setup()
    workers = [_start_worker(manage, env, i, args.cores_per_worker) for i in range(args.workers)]
    try:
        _wait_for_workers(len(workers))
        for run in range(1, args.runs + 1):
            row = _one_run(args.video, workers, site)
            print(
                json.dumps(
                    {
                        "run": run,
                        "workers": args.workers,
                        "cores_per_worker": args.cores_per_worker,
                        **row,
                    }
                ),
                flush=True,
            )
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:  # warm shutdown waits for a job still running
                os.killpg(worker.pid, signal.SIGKILL)  # its work horse and children too
                worker.wait()
        subprocess.run([*manage, "embedded_redis", "stop"], cwd=ROOT, env=env, capture_output=True)
        if not args.keep:
            shutil.rmtree(site, ignore_errors=True)


def _start_worker(manage: list[str], env: dict, number: int, cores: int) -> subprocess.Popen:
    """A worker as `make demo` starts one; with `cores`, held to cores of its own."""
    pinned = None
    if cores:
        pinned = set(range(number * cores, (number + 1) * cores))
        if not pinned <= os.sched_getaffinity(0):
            raise SystemExit(f"not enough cores to give worker {number} cores {sorted(pinned)}")
        env = {**env, "VIDEO_ANALYSIS_PROCESSES": str(cores)}
    return subprocess.Popen(
        [*manage, "rqworker", "default", "video", "--name", f"bench-{number}-{os.getpid()}"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        preexec_fn=(lambda: os.sched_setaffinity(0, pinned)) if pinned else None,
        start_new_session=True,  # a process group of its own, to be killed whole
    )  # fmt: skip


def _wait_for_workers(count: int) -> None:
    """Until every worker has registered with Redis and had time to warm up."""
    import django_rq
    from rq import Worker

    connection = django_rq.get_connection("default")
    deadline = time.monotonic() + 120
    while len(Worker.all(connection=connection)) < count:
        if time.monotonic() > deadline:
            raise SystemExit("the workers did not start")
        time.sleep(0.2)
    time.sleep(3)  # the warm-up runs before the first dequeue


def _one_run(video_path: str, workers, site: Path) -> dict:
    from core.media.probe import probe
    from core.media.render import transcode
    from gallery.models import Group
    from videos import services
    from videos.models import Video

    source = site / "upload" / Path(video_path).name
    source.parent.mkdir(exist_ok=True)
    shutil.copyfile(video_path, source)
    info = probe(source)
    t = time.perf_counter()
    transcode(source, site / "transcode.mp4", info=info)
    transcode_s = time.perf_counter() - t

    peak = _Peak([w.pid for w in workers])
    t0, submitted = time.perf_counter(), time.time()
    video = services.video_submit(
        source=source, name=source.name, group=Group.objects.get(slug="demo")
    )
    first_progress = first_names = five_s = names_ready = None
    lead = None  # the least named_until - playhead of a player started at the first names
    fields = ("state", "progress", "error", "named_until", "names_ready")
    while True:
        row = Video.objects.filter(pk=video.pk).values(*fields).get()
        now = time.perf_counter() - t0
        if first_progress is None and row["progress"] > 0:
            first_progress = now
        named = row["named_until"]
        if named is not None and names_ready is None:
            if first_names is None:
                first_names = now
            if five_s is None and named >= 5:
                five_s = now
            playhead = info.clock().first + (now - first_names)
            lead = min(lead, named - playhead) if lead is not None else named - playhead
        if names_ready is None and row["names_ready"]:
            names_ready = now
        if row["state"] in (Video.State.DONE, Video.State.FAILED):
            break
        time.sleep(0.05)
    ready_s = time.perf_counter() - t0
    peak_mb = peak.stop()
    if row["state"] != Video.State.DONE:
        raise SystemExit(f"the video failed: {row['error']}")
    return {
        "video": Path(video_path).name,
        "size": f"{info.width}x{info.height}",
        "seconds": round(info.duration, 1),
        "ready_s": round(ready_s, 2),
        "transcode_s": round(transcode_s, 2),
        "ratio": round(ready_s / transcode_s, 2),
        "fps": round(info.frames / ready_s, 1),
        "first_progress_s": round(first_progress or ready_s, 2),
        "first_names_s": _rounded(first_names),
        "first_5s_of_names_s": _rounded(five_s),
        "names_ready_s": _rounded(names_ready),
        "names_ratio": _rounded(names_ready and names_ready / transcode_s),
        "names_lead_min_s": _rounded(lead),
        "peak_mb_worker": peak_mb,
        "jobs": _timeline(video, submitted),
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _timeline(video, submitted: float) -> list[str]:
    """Each of the video's RQ jobs as "name worker start-end" in seconds after the upload:
    where a fanned-out video's time went (queue waits, segments, the join, render parts)."""
    import django_rq
    from rq.job import Job
    from rq.registry import FinishedJobRegistry

    connection = django_rq.get_connection("video")
    prefix = f"videos-video-{video.pk}-"
    ids = FinishedJobRegistry("video", connection=connection).get_job_ids()
    rows = []
    for job in Job.fetch_many([i for i in ids if i.startswith(prefix)], connection=connection):
        if job is None or job.started_at is None or job.ended_at is None:
            continue
        start = job.started_at.timestamp() - submitted
        end = job.ended_at.timestamp() - submitted
        name = job.id[len(prefix) :].partition("-")[2] or "job"
        rows.append((start, f"{name} {job.worker_name} {start:.1f}-{end:.1f}"))
    return [text for _, text in sorted(rows)]


class _Peak:
    """The largest PSS of any one worker's process tree, sampled every 0.2 s."""

    def __init__(self, pids: list[int]) -> None:
        self.pids, self.peak = pids, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            for pid in self.pids:
                self.peak = max(self.peak, _tree_pss_mb(pid))

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return round(self.peak, 1)


if __name__ == "__main__":
    main()
