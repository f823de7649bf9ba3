"""The bundled Redis server: one per checkout, started on first use, shared by processes."""

import subprocess
import sys
from pathlib import Path

import pytest
import redis

from twicesite import embedded_redis


@pytest.fixture
def var_dir(tmp_path):
    path = tmp_path / "var"
    yield path
    embedded_redis.stop(path)


def test_it_starts_on_first_use_and_is_reused(var_dir):
    assert not embedded_redis.is_running(var_dir)
    url = embedded_redis.ensure_running(var_dir)
    pid = embedded_redis.server_pid(var_dir)
    assert url == f"unix://{var_dir / 'redis.sock'}?db=0"
    client = redis.Redis.from_url(url)
    client.set("greeting", "hello")

    assert embedded_redis.ensure_running(var_dir) == url
    assert embedded_redis.server_pid(var_dir) == pid
    assert client.get("greeting") == b"hello"


def test_processes_starting_it_at_once_share_one_server(var_dir):
    code = (
        "import sys; from pathlib import Path; from twicesite import embedded_redis as e; "
        "e.ensure_running(Path(sys.argv[1])); print(e.server_pid(Path(sys.argv[1])))"
    )
    root = Path(__file__).resolve().parents[2]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(var_dir)], cwd=root, stdout=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    pids = {proc.communicate(timeout=60)[0].strip() for proc in procs}
    assert all(proc.returncode == 0 for proc in procs)
    assert len(pids) == 1
    out = subprocess.run(["ps", "-o", "comm=", "-p", pids.pop()], capture_output=True, text=True)
    assert "redis-server" in out.stdout


def test_stop_shuts_it_down_and_a_later_use_starts_it_again(var_dir):
    embedded_redis.ensure_running(var_dir)
    assert embedded_redis.stop(var_dir) is True
    assert not embedded_redis.is_running(var_dir)
    assert embedded_redis.stop(var_dir) is False
    embedded_redis.ensure_running(var_dir)
    assert embedded_redis.is_running(var_dir)


def test_a_stale_socket_from_a_killed_server_does_not_block_a_restart(var_dir):
    embedded_redis.ensure_running(var_dir)
    pid = embedded_redis.server_pid(var_dir)
    subprocess.run(["kill", "-9", str(pid)], check=True)
    for _ in range(100):
        if not embedded_redis.is_running(var_dir):
            break
    embedded_redis.ensure_running(var_dir)
    assert embedded_redis.server_pid(var_dir) != pid


def test_deep_checkouts_put_the_socket_in_the_temp_directory(tmp_path):
    deep = tmp_path / ("d" * 60) / ("e" * 60) / "var"
    path = embedded_redis.socket_path(deep)
    assert len(str(path)) <= 100
    assert path != embedded_redis.socket_path(tmp_path / "other" / "var")


def run_manage(*args, var_dir, **env):
    import os

    root = Path(__file__).resolve().parents[2]
    environment = {**os.environ, "VAR_DIR": str(var_dir), **env}
    environment.pop("REDIS_URL", None)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=root, env=environment, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_asking_for_its_status_does_not_start_it(var_dir):
    result = run_manage("embedded_redis", "status", var_dir=var_dir)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "not running"
    assert not embedded_redis.is_running(var_dir)

    run_manage("embedded_redis", "start", var_dir=var_dir)
    assert run_manage("embedded_redis", "status", var_dir=var_dir).stdout.startswith("running")
    run_manage("embedded_redis", "stop", var_dir=var_dir)
    assert run_manage("embedded_redis", "status", var_dir=var_dir).stdout.strip() == "not running"
    assert not embedded_redis.is_running(var_dir)


def redis_servers_of(var_dir) -> list[int]:
    """Every redis-server process serving this var folder's socket, by its command line."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if command and command[0].endswith(b"redis-server"):
            if str(embedded_redis.socket_path(var_dir)).encode() in b" ".join(command):
                found.append(int(entry.name))
    return found


def test_a_command_that_started_it_for_itself_stops_it_when_it_ends(var_dir):
    result = run_manage("check", var_dir=var_dir)
    assert result.returncode == 0, result.stderr
    log = (var_dir / "redis.log").read_text()
    assert "Redis is starting" in log and "ready to exit" in log  # started for it, then stopped
    assert not embedded_redis.is_running(var_dir)
    assert redis_servers_of(var_dir) == []


def holder(var_dir):
    """A process using the server until its standard input closes."""
    code = (
        "import sys; from pathlib import Path; from twicesite import embedded_redis as e; "
        "e.use(Path(sys.argv[1])); print('in', flush=True); sys.stdin.read()"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code, str(var_dir)], cwd=Path(__file__).resolve().parents[2],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout.readline().strip() == "in"
    return process


def test_it_runs_while_any_process_uses_it_and_stops_with_the_last(var_dir):
    first = holder(var_dir)
    result = run_manage("check", var_dir=var_dir)
    assert result.returncode == 0, result.stderr
    assert embedded_redis.is_running(var_dir)  # the check joined it and left
    assert embedded_redis.users(var_dir) == [first.pid]
    first.communicate(timeout=30)
    assert not embedded_redis.is_running(var_dir)
    assert redis_servers_of(var_dir) == []


def test_a_user_killed_outright_does_not_keep_it_running_for_ever(var_dir):
    killed = holder(var_dir)
    killed.kill()
    killed.wait()
    assert embedded_redis.is_running(var_dir)  # nobody was left to stop it...
    run_manage("check", var_dir=var_dir)
    assert not embedded_redis.is_running(var_dir)  # ...until the next user left


def test_started_by_the_command_it_runs_until_stopped_by_it(var_dir):
    run_manage("embedded_redis", "start", var_dir=var_dir)
    run_manage("check", var_dir=var_dir)
    assert embedded_redis.is_running(var_dir)
    status = run_manage("embedded_redis", "status", var_dir=var_dir).stdout
    assert "used by 0 processes, kept until `embedded_redis stop`" in status
    run_manage("embedded_redis", "stop", var_dir=var_dir)
    assert redis_servers_of(var_dir) == []


def test_released_it_stops_now_or_with_the_last_process_using_it(var_dir):
    run_manage("embedded_redis", "start", var_dir=var_dir)
    user = holder(var_dir)
    released = run_manage("embedded_redis", "release", var_dir=var_dir)
    assert released.stdout.strip() == "left to the processes using it"
    assert embedded_redis.is_running(var_dir)
    user.communicate(timeout=30)
    assert redis_servers_of(var_dir) == []
    run_manage("embedded_redis", "start", var_dir=var_dir)
    assert run_manage("embedded_redis", "release", var_dir=var_dir).stdout.strip() == "stopped"
    assert redis_servers_of(var_dir) == []
