"""Child processes that do not outlive their parent."""

from __future__ import annotations

import ctypes
import os
import signal


def die_with_parent(parent: int | None = None) -> None:
    """Have Linux kill this process when its parent dies (PR_SET_PDEATHSIG; no-op elsewhere).

    `parent` is the parent's pid as the parent saw it before forking: if it died before the
    signal was armed, this process exits at once instead of running on unwatched."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: nothing to set
        return
    if parent is not None and os.getppid() != parent:
        os._exit(1)
