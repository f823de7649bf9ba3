"""Settings for the test suite: the site's own settings with a queue database of its own."""

from twicesite import embedded_redis
from twicesite.env import envint
from twicesite.settings import *  # noqa: F403
from twicesite.settings import EMBEDDED_REDIS, VAR_DIR, rq_queues

if EMBEDDED_REDIS:
    # Database 15 of the bundled server, so tests never touch a running demo's queues (db 0).
    REDIS_URL = embedded_redis.url(VAR_DIR, db=15)
    RQ_QUEUES = rq_queues(REDIS_URL)

# Hashing passwords slowly protects nothing in tests.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    # A file, not Django's in-memory default: its shared-cache mode locks whole tables and ignores
    # the busy timeout, so tests of concurrent writers would fail where the real site does not.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-db.sqlite3")}  # noqa: F405

# Pages render without `collectstatic`, whatever DEBUG the environment sets (the live server
# serves static files from their source folders).
STATIC_ROOT = None
STORAGES = {  # noqa: F405
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Re-renders start at once in tests unless a test (or its worker's environment) says otherwise.
VIDEO_RERENDER_QUIET_SECONDS = envint("VIDEO_RERENDER_QUIET_SECONDS", 0)
