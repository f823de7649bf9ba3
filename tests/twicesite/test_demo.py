"""`make demo` stops the way the README says: one Ctrl-C (SIGINT to its process group, as a
terminal sends it) stops everything it started, whenever it is pressed, and says "Stopped."."""

import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.servers import ROOT, free_port

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def demo_folder(tmp_path_factory):
    """One demo's var and media folders for the module: set up once, reused by the next runs."""
    return tmp_path_factory.mktemp("demo")


def processes_marked(mark: str) -> list[str]:
    """Every process whose environment carries `mark`: all the demo started, however deep."""
    found = []
    needle = f"TWICESITE_DEMO_MARK={mark}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                found.append(f"{entry.name} {(entry / 'cmdline').read_bytes()!r}")
        except OSError:
            continue  # gone meanwhile, or a zombie
    return found


def run_demo(folder: Path, until: str, after: float = 0.0):
    """`make demo` in a session of its own, SIGINT to its group once `until` is printed (and
    `after` seconds more); returns (output, exit status, processes of it left after 15 s)."""
    mark = uuid.uuid4().hex
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")},
        "DJANGO_SETTINGS_MODULE": "twicesite.settings",
        "VAR_DIR": str(folder / "var"),
        "MEDIA_ROOT": str(folder / "media"),
        "PORT": str(free_port()),
        "WORKERS": "1",
        "TWICESITE_DEMO_MARK": mark,
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    log = folder / f"demo-{mark}.log"
    with open(log, "wb") as out:
        demo = subprocess.Popen(
            ["make", "demo"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 600
        while until not in log.read_text() and demo.poll() is None:
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.05)
        time.sleep(after)
        os.killpg(demo.pid, signal.SIGINT)
        status = demo.wait(timeout=60)
        left = processes_marked(mark)
        deadline = time.monotonic() + 15
        while left and time.monotonic() < deadline:
            time.sleep(0.25)
            left = processes_marked(mark)
        return log.read_text(), status, left
    finally:
        for line in processes_marked(mark):  # never leave a process behind, pass or fail
            try:
                os.kill(int(line.split()[0]), signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.mark.parametrize(
    ("until", "after"),
    [
        ("bash scripts/demo.sh", 1.0),  # while it starts Redis and collects static files
        ("Ctrl-C stops everything.", 0.0),  # the workers are loading their models
        ("Listening on", 2.0),  # serving; the worker may be busy with the sample video
    ],
    ids=["setting-up", "workers-loading", "serving"],
)
def test_one_sigint_to_the_demos_group_stops_everything_it_started(demo_folder, until, after):
    output, status, left = run_demo(demo_folder, until, after)
    assert left == [], output[-3000:]
    tail = output.rstrip().splitlines()
    assert tail[-1] == "Stopped.", output[-3000:]
    assert "make: ***" not in output
    assert "Traceback" not in output
    assert "StopRequested" not in output
    # make ends as a program ends on Ctrl-C: by the signal, with no error line.
    assert status == -signal.SIGINT
