"""Typed readers for settings taken from the environment."""

import os
from pathlib import Path

import dj_database_url


class ConfigError(Exception):
    """A setting from the environment is missing or unusable; the message says which and why."""


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def load_dotenv(path: Path) -> None:
    """Read KEY=VALUE lines from `path` into os.environ; variables already set win."""
    if not path.is_file():
        return
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{path}:{number}: expected KEY=VALUE, got {raw!r}")
        os.environ.setdefault(key.strip(), value.strip().strip("'\""))


def envstr(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def envbool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    value = value.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name} must be true or false, got {value!r}")


def envint(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or not value.strip():
        return default
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {value!r}") from None


def envlist(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def envpath(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser().resolve() if value else default


def envurlprefix(name: str) -> str:
    """A URL path that starts and ends with a slash ("/_media/"), or "" when unset."""
    value = os.environ.get(name, "").strip()
    if value and not (value.startswith("/") and value.endswith("/") and len(value) > 1):
        raise ConfigError(f"{name} must be a path that starts and ends with /, got {value!r}")
    return value


def envdatabase(name: str, default: str) -> dict:
    """Parse a database URL into Django's DATABASES entry."""
    url = os.environ.get(name) or default
    try:
        config = dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True)
    except Exception as exc:  # dj-database-url raises ValueError, KeyError or others by scheme
        raise ConfigError(f"{name} is not a usable database URL ({exc}): {redact(url)}") from None
    if not config.get("ENGINE") or (not config.get("NAME") and "sqlite" not in config["ENGINE"]):
        raise ConfigError(f"{name} names no database: {redact(url)}")
    return config


def envredis(name: str) -> str | None:
    """Return the Redis URL from the environment, checked for a known scheme, or None."""
    url = os.environ.get(name, "").strip()
    if not url:
        return None
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"{name} must start with redis://, rediss:// or unix://: {redact(url)}")
    return url


def envemail(name: str, default: str) -> dict:
    """Django's EMAIL_* settings from one URL: `smtp://user:password@host:587` (STARTTLS with
    `smtp+tls://`, TLS from the start with `smtps://`), or `console:` to print mail instead."""
    from urllib.parse import unquote, urlsplit

    url = os.environ.get(name, "").strip() or default
    scheme = url.split(":", 1)[0]
    if scheme == "console":
        return {
            "EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend",
            "EMAIL_HOST": "localhost", "EMAIL_PORT": 25, "EMAIL_HOST_USER": "",
            "EMAIL_HOST_PASSWORD": "", "EMAIL_USE_TLS": False, "EMAIL_USE_SSL": False,
        }  # fmt: skip
    if scheme not in ("smtp", "smtp+tls", "smtps"):
        raise ConfigError(
            f"{name} must start with smtp://, smtp+tls://, smtps:// or be console:, "
            f"got {redact(url)}"
        )
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(f"{name} has a port that is not a number: {redact(url)}") from None
    if not parts.hostname:
        raise ConfigError(f"{name} names no mail server: {redact(url)}")
    return {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": parts.hostname,
        "EMAIL_PORT": port or {"smtp": 25, "smtp+tls": 587, "smtps": 465}[scheme],
        "EMAIL_HOST_USER": unquote(parts.username or ""),
        "EMAIL_HOST_PASSWORD": unquote(parts.password or ""),
        "EMAIL_USE_TLS": scheme == "smtp+tls",
        "EMAIL_USE_SSL": scheme == "smtps",
    }


def redact(url: str) -> str:
    """Hide the password in a service URL so it can be shown in messages."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in credentials else url


S3_VARIABLES = (
    "MEDIA_S3_BUCKET",
    "MEDIA_S3_ENDPOINT_URL",
    "MEDIA_S3_REGION",
    "MEDIA_S3_ACCESS_KEY_ID",
    "MEDIA_S3_SECRET_ACCESS_KEY",
    "MEDIA_S3_PREFIX",
)


def envs3storage() -> dict | None:
    """The STORAGES entry for media on an S3-compatible server, or None when MEDIA_S3_BUCKET is
    unset (media then stay on the local disk).

    Objects are private: no ACL is sent (the bucket's own, private by default, applies) and any
    URL made for one is signed and short-lived. Without MEDIA_S3_ACCESS_KEY_ID and
    MEDIA_S3_SECRET_ACCESS_KEY, boto3 finds credentials itself (AWS_ACCESS_KEY_ID and
    AWS_SECRET_ACCESS_KEY, a profile, an instance role)."""
    values = {name: os.environ.get(name, "").strip() for name in S3_VARIABLES}
    bucket = values["MEDIA_S3_BUCKET"]
    if not bucket:
        stray = [name for name, value in values.items() if value]
        if stray:
            verb = "is" if len(stray) == 1 else "are"
            raise ConfigError(f"{', '.join(stray)} {verb} set but MEDIA_S3_BUCKET is not")
        return None
    endpoint = values["MEDIA_S3_ENDPOINT_URL"]
    if endpoint and not endpoint.startswith(("http://", "https://")):
        raise ConfigError(
            f"MEDIA_S3_ENDPOINT_URL must start with http:// or https://, got {endpoint!r}"
        )
    _both_or_neither("MEDIA_S3_ACCESS_KEY_ID", "MEDIA_S3_SECRET_ACCESS_KEY")
    if not values["MEDIA_S3_ACCESS_KEY_ID"]:
        _both_or_neither("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    prefix = values["MEDIA_S3_PREFIX"].strip("/")
    if prefix and any(part in ("", ".", "..") for part in prefix.split("/")):
        raise ConfigError(f"MEDIA_S3_PREFIX must be a plain folder name, got {prefix!r}")
    return {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": bucket,
            "endpoint_url": endpoint or None,
            "region_name": values["MEDIA_S3_REGION"] or None,
            "access_key": values["MEDIA_S3_ACCESS_KEY_ID"] or None,
            "secret_key": values["MEDIA_S3_SECRET_ACCESS_KEY"] or None,
            "location": prefix,
            "default_acl": None,
            "querystring_auth": True,
            "querystring_expire": 300,
            # Outputs replace the object of the same name, as allow_overwrite does on disk.
            "file_overwrite": True,
            # A stored file opened through the storage API is downloaded to a temporary file
            # past this size, not held in memory.
            "max_memory_size": 8 * 1024 * 1024,
        },
    }


def _both_or_neither(first: str, second: str) -> None:
    given = [name for name in (first, second) if os.environ.get(name, "").strip()]
    if len(given) == 1:
        missing = second if given[0] == first else first
        raise ConfigError(f"{given[0]} is set but {missing} is not: set both or neither")
