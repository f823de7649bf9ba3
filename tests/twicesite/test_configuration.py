"""Configuration from the environment, seen as an operator sees it: through manage.py."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from twicesite.env import ConfigError, envbool, envdatabase, redact

ROOT = Path(__file__).resolve().parents[2]


def manage(*args, **env):
    unset = {"DATABASE_URL", "REDIS_URL", "DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    base = {k: v for k, v in os.environ.items() if k not in unset}
    base["DJANGO_SETTINGS_MODULE"] = "twicesite.settings"
    base.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=base,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_an_unparseable_database_url_stops_with_one_clear_line():
    result = manage("check", DATABASE_URL="nosuchdb://what")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "DATABASE_URL" in lines[0]
    assert "Traceback" not in result.stderr


def test_an_unreachable_redis_url_is_reported_by_the_system_check_without_a_traceback():
    result = manage("check", REDIS_URL="redis://127.0.0.1:1/0")
    assert result.returncode != 0
    assert "twicesite.E003" in result.stderr
    assert "redis://127.0.0.1:1/0 is unreachable" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_redis_url_with_an_unknown_scheme_stops_with_one_clear_line():
    result = manage("check", REDIS_URL="http://127.0.0.1:6379")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "REDIS_URL" in result.stderr


def test_production_without_a_secret_key_stops_with_one_clear_line():
    result = manage("check", DEBUG="false")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "twicesite: configuration error: SECRET_KEY must be set when DEBUG is off"
    )


def test_deploy_check_passes_with_production_settings():
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="false",
        SECRET_KEY="x" * 20 + "production-like-secret-key-with-entropy-9f8e7d6c5b",
        ALLOWED_HOSTS="twice.example.org",
    )
    assert result.returncode == 0, result.stderr + result.stdout
    assert "no issues" in result.stdout


def test_defaults_pass_the_system_checks():
    result = manage("check")
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_envbool_rejects_words_it_does_not_know(monkeypatch):
    monkeypatch.setenv("SOME_FLAG", "maybe")
    with pytest.raises(ConfigError, match="SOME_FLAG must be true or false"):
        envbool("SOME_FLAG", False)


def test_envdatabase_reads_postgres_urls(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://u:pw@db.example.org:5433/twice")
    config = envdatabase("DATABASE_URL", "sqlite:///x")
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert (config["HOST"], config["PORT"], config["NAME"]) == ("db.example.org", 5433, "twice")


def test_passwords_are_hidden_in_messages():
    assert redact("redis://:hunter2@host:6379/0") == "redis://:***@host:6379/0"
    assert redact("postgres://me:hunter2@db/x") == "postgres://me:***@db/x"
    assert redact("redis://host:6379/0") == "redis://host:6379/0"
