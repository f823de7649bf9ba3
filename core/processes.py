"""Processes: children that do not outlive their parent, and telling whether a process
named in a row is still there."""

from __future__ import annotations

import ctypes
import os
import signal
import socket


def die_with_parent(parent: int | None = None) -> None:
    """Have Linux kill this process when its parent dies (PR_SET_PDEATHSIG; no-op elsewhere),
    and have it end when its parent terminates it.

    A fork inherits its parent's signal handlers: in an RQ work horse SIGTERM asks for a warm
    shutdown, so a child terminated by a stopped job would run on (and its parent wait for it
    forever). The child gets the default actions back. `parent` is the parent's pid as the
    parent saw it before forking: if it died before the signal was armed, this process exits
    at once instead of running on unwatched."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: nothing to set
        return
    if parent is not None and os.getppid() != parent:
        os._exit(1)


def stop_child(child, grace: float = 5.0) -> None:
    """Terminate a multiprocessing child and reap it; killed if it has not ended within
    `grace` seconds (a child that handles SIGTERM must never leave its parent waiting)."""
    child.terminate()
    child.join(grace)
    if child.is_alive():
        child.kill()
        child.join()


def pid_alive(pid: int) -> bool:
    """Whether a process of this machine is still there."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # there, but another user's
    return True


def process_token() -> str:
    """This process as a row can name it for others to check: "host:pid" (the host name cut
    to 30 characters)."""
    return f"{socket.gethostname()[:30]}:{os.getpid()}"


def token_process_gone(token: str) -> bool | None:
    """Whether the process a token starting with process_token() names is gone: True or False
    for a process of this machine, None for another machine's (nothing here can tell)."""
    host, _, rest = token.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname()[:30] or not pid.isdigit():
        return None
    return not pid_alive(int(pid))
