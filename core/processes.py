"""Child processes that do not outlive their parent."""

from __future__ import annotations

import ctypes
import os
import signal


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
