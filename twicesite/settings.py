"""twicesite settings: every value comes from the environment, with dev-safe defaults.

See .env.example for the variables. A .env file in the checkout is read if present.
"""

import os
import warnings
from pathlib import Path

from twicesite import embedded_redis
from twicesite.env import (
    ConfigError,
    envbool,
    envdatabase,
    envemail,
    envint,
    envlist,
    envpath,
    envredis,
    envs3storage,
    envstr,
    envurlprefix,
    load_dotenv,
)

BASE_DIR = Path(__file__).resolve().parent.parent
load_dotenv(BASE_DIR / ".env")

VAR_DIR = envpath("VAR_DIR", BASE_DIR / "var")
DEBUG = envbool("DEBUG", True)

SECRET_KEY = envstr("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ConfigError("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = "dev-only-insecure-key-not-for-production-use-0123456789abcdef"

ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_rq",
    "base",
    "gallery",
    "recognition",
    "videos",
    "twicesite.apps.TwicesiteConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files from the site itself, compressed and cached, with DEBUG off too (no web
    # server in front is needed for the demo or a single-box deploy).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "twicesite.middleware.SecurityHeadersMiddleware",
]

ROOT_URLCONF = "twicesite.urls"
WSGI_APPLICATION = "twicesite.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": envdatabase("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web process and the workers write at once: WAL lets readers go on during a write, and
    # IMMEDIATE transactions wait for the write lock up front instead of failing mid-transaction.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# The JSON endpoints under /api/ answer a failed CSRF check in JSON too.
CSRF_FAILURE_VIEW = "twicesite.csrf.csrf_failure"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "videos:list"
LOGOUT_REDIRECT_URL = "home"

# Mail (password resets): EMAIL_URL, smtp://user:password@host:587 or smtp+tls:// or smtps://;
# without it mail is printed by the process that sends it (the demo's web server).
_EMAIL = envemail("EMAIL_URL", "console:")
EMAIL_BACKEND = _EMAIL["EMAIL_BACKEND"]
EMAIL_HOST = _EMAIL["EMAIL_HOST"]
EMAIL_PORT = _EMAIL["EMAIL_PORT"]
EMAIL_HOST_USER = _EMAIL["EMAIL_HOST_USER"]
EMAIL_HOST_PASSWORD = _EMAIL["EMAIL_HOST_PASSWORD"]
EMAIL_USE_TLS = _EMAIL["EMAIL_USE_TLS"]
EMAIL_USE_SSL = _EMAIL["EMAIL_USE_SSL"]
EMAIL_TIMEOUT = 30
DEFAULT_FROM_EMAIL = envstr("EMAIL_FROM", "twicesite <noreply@localhost>")
# A reset link works for this long (Django's default is three days).
PASSWORD_RESET_TIMEOUT = envint("PASSWORD_RESET_SECONDS", 3 * 3600)

LANGUAGE_CODE = "en-us"
TIME_ZONE = envstr("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = envpath("STATIC_ROOT", VAR_DIR / "static")
if DEBUG:
    # runserver serves from the source folders; collectstatic's folder need not exist yet.
    warnings.filterwarnings("ignore", message="No directory at", module="whitenoise.base")
# Media files are never served by URL: every one goes through a view that checks access.
MEDIA_ROOT = envpath("MEDIA_ROOT", BASE_DIR / "media")
# Behind nginx: the access-checked file views hand files on the local disk to nginx with
# X-Accel-Redirect to this internal location (mapped to MEDIA_ROOT, docs/deploy.md), so no web
# process streams a video. Empty: the views stream the files themselves (and always on S3).
MEDIA_ACCEL_REDIRECT = envurlprefix("MEDIA_ACCEL_REDIRECT")
# Local scratch space for work in progress (decoding copies, renders before they are stored);
# folders of processes that died are removed by the workers.
WORK_DIR = envpath("WORK_DIR", VAR_DIR / "work")
STORAGES = {
    # Outputs replace the file of the same name (a re-render replaces the labelled MP4); every
    # upload has a UUID name, so nothing a person sent is overwritten. With MEDIA_S3_BUCKET set,
    # media go to that bucket instead (private objects; see twicesite/env.py).
    "default": envs3storage()
    or {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"allow_overwrite": True},
    },
    # With DEBUG off, file names carry a hash of their content (cached for a year by browsers);
    # that needs `manage.py collectstatic`, which scripts/demo.sh runs.
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if envbool("STATIC_MANIFEST", not DEBUG)
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# Gallery cleaning limits.
GALLERY_MAX_BYTES = envint("GALLERY_MAX_BYTES", 30_000_000)
GALLERY_MAX_PIXELS = envint("GALLERY_MAX_PIXELS", 40_000_000)  # refused before decoding
GALLERY_MIN_IMAGE_SIDE = envint("GALLERY_MIN_IMAGE_SIDE", 64)  # smaller images are flagged
GALLERY_MIN_FACE_SIDE = envint("GALLERY_MIN_FACE_SIDE", 40)  # smaller faces are flagged
# "Who is this?": pictures a fan may ask about per hour (staff are not limited).
IDENTIFY_PER_HOUR = envint("IDENTIFY_PER_HOUR", 60)

# Videos.
VIDEO_MAX_BYTES = envint("VIDEO_MAX_BYTES", 2_000_000_000)
VIDEO_UPLOADS_PER_HOUR = envint("VIDEO_UPLOADS_PER_HOUR", 10)
# Long videos are cut into segments of this many seconds, analysed as separate jobs.
VIDEO_SEGMENT_SECONDS = envint("VIDEO_SEGMENT_SECONDS", 60)
VIDEO_RENDER_PRESET = envstr("VIDEO_RENDER_PRESET", "veryfast")
# Faces that are no known member get a grey "unknown" tag, in the labelled MP4 and in the watch
# page's live overlay alike (one setting, so the two never disagree). Off: only members are shown.
VIDEO_SHOW_UNKNOWN = envbool("VIDEO_SHOW_UNKNOWN", True)
# A long video's segments as jobs for several workers: "auto" when more than one worker takes
# videos; off, one job analyses it on VIDEO_ANALYSIS_PROCESSES with the render behind it.
VIDEO_SEGMENTS_AS_JOBS = (
    "auto" if envstr("VIDEO_SEGMENTS_AS_JOBS", "auto") == "auto"
    else envbool("VIDEO_SEGMENTS_AS_JOBS", True)
)  # fmt: skip
# After segment jobs, the labelled video is drawn in parts by any worker (two per worker taking
# videos, each at least this long), then joined with the original audio.
VIDEO_RENDER_PART_SECONDS = envint("VIDEO_RENDER_PART_SECONDS", 30)
# A re-render waits until corrections have been quiet this long (and at most RERENDER_MAX_WAIT
# after the first), so a reviewer's burst of corrections is drawn once; the page's live boxes
# show them at once meanwhile.
VIDEO_RERENDER_QUIET_SECONDS = envint("VIDEO_RERENDER_QUIET_SECONDS", 5)
VIDEO_RERENDER_MAX_WAIT_SECONDS = envint("VIDEO_RERENDER_MAX_WAIT_SECONDS", 60)
# How long a render holds a video before another worker may take it over (renewed every 10 s
# as it draws, so only a dead worker's lease runs out; one of this machine is taken at once).
VIDEO_RENDER_LEASE_SECONDS = envint("VIDEO_RENDER_LEASE_SECONDS", 60)
# A video analysed inside one job (short, or VIDEO_SEGMENTS_AS_JOBS off, or process_video) is
# split over this many processes; 1 analyses it in the job's own process.
VIDEO_ANALYSIS_PROCESSES = envint("VIDEO_ANALYSIS_PROCESSES", os.cpu_count() or 1)
FILE_UPLOAD_TEMP_DIR = None  # the system's; large uploads stream to disk, never into memory

# Image search used by scraping; {keyword} and {offset} are filled in.
SCRAPE_SEARCH_URLS = {
    "bing": envstr(
        "SCRAPE_BING_URL", "https://www.bing.com/images/async?q={keyword}&first={offset}"
    ),
    "baidu": envstr(
        "SCRAPE_BAIDU_URL",
        "https://image.baidu.com/search/acjson?tn=resultjson_com&ipn=rj&word={keyword}"
        "&pn={offset}&rn=30",
    ),
}

# The queue. With no REDIS_URL every process of this checkout shares one bundled Redis server
# (twicesite/embedded_redis.py), started on first use.
REDIS_URL = envredis("REDIS_URL")
EMBEDDED_REDIS = REDIS_URL is None
if EMBEDDED_REDIS:
    REDIS_URL = embedded_redis.url(VAR_DIR)

QUEUE_NAMES = ("default", "video")


def rq_queues(url: str) -> dict:
    """The django-rq queue table for one Redis URL."""
    return {name: {"URL": url, "DEFAULT_TIMEOUT": 6 * 3600} for name in QUEUE_NAMES}


RQ_QUEUES = rq_queues(REDIS_URL)
# Enqueue jobs only once the transaction that created their rows has committed.
RQ = {"COMMIT_MODE": "on_db_commit", "WORKER_CLASS": "base.worker.Worker"}

# Production hardening, each overridable; `manage.py check --deploy` passes with DEBUG off.
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if envbool("TRUST_X_FORWARDED_PROTO", False) else None
)
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = envbool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = envbool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", not DEBUG)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": envstr("LOG_LEVEL", "INFO")},
    "loggers": {
        # Django's own console handler would print every error a second time (with DEBUG on):
        # its records go to the root handler only.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.db.backends": {"level": "INFO"},
    },
}
