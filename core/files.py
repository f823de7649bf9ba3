"""Files written whole or not at all: a temp file beside the target, renamed into place."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_output(path_out: str | os.PathLike[str]) -> Iterator[str]:
    """Yield a temp path beside path_out; it becomes path_out only if the block succeeds.

    The temp file is in the target's directory, so the final rename is atomic. A block that
    raises, or leaves the file empty, leaves nothing behind.
    """
    path_out = Path(path_out)
    if not path_out.parent.is_dir():
        raise FileNotFoundError(f"{path_out.parent}: output directory does not exist")
    fd, tmp = tempfile.mkstemp(dir=path_out.parent, prefix=f".{path_out.name}.", suffix=".part")
    os.close(fd)
    try:
        yield tmp
        if os.path.getsize(tmp) == 0:
            raise OSError(f"{path_out.name}: nothing was written")
        # mkstemp makes the file 0600; give the output the mode a plain open() would.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path_out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _umask() -> int:
    # os.umask() can only be read by setting it, which races with other threads creating files.
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    return 0o022
