"""Stored files, through Django's storage API only: local copies for code that needs a path,
finished outputs moved into place, and deleting what a row owned."""

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.core.files import File
from django.core.files.storage import Storage, default_storage
from django.db import transaction

log = logging.getLogger(__name__)


def delete_tree(prefix: str, storage: Storage = default_storage) -> int:
    """Delete every stored file under `prefix` (a folder name); returns how many."""
    prefix = prefix.rstrip("/")
    try:
        folders, files = storage.listdir(prefix)
    except (FileNotFoundError, NotADirectoryError):
        return 0
    count = 0
    for name in files:
        storage.delete(f"{prefix}/{name}")
        count += 1
    for folder in folders:
        count += delete_tree(f"{prefix}/{folder}", storage)
    _remove_empty_folder(prefix, storage)
    return count


def _remove_empty_folder(prefix: str, storage: Storage) -> None:
    # Object stores have no folders; a local disk keeps empty ones unless told.
    try:
        local = storage.path(prefix)
    except NotImplementedError:
        return
    try:
        os.rmdir(local)
    except OSError:
        pass  # not empty (a file arrived meanwhile) or already gone


def delete_files_on_commit(names, storage: Storage = default_storage) -> None:
    """Delete stored files once the transaction that deleted their rows commits."""
    names = [name for name in names if name]
    if not names:
        return

    def delete():
        for name in names:
            try:
                storage.delete(name)
            except OSError as exc:  # a file that cannot go now must not undo the delete
                log.warning("could not delete %s: %s", name, exc)

    transaction.on_commit(delete)


def delete_tree_on_commit(prefix: str, storage: Storage = default_storage) -> None:
    """Delete a stored folder once the transaction that deleted its row commits."""
    transaction.on_commit(lambda: delete_tree(prefix, storage))


# --- local files for libraries that need a path --------------------------------------------


class _LocalFile(File):
    """A finished local file: FileSystemStorage moves it into place (a rename on one disk)."""

    def temporary_file_path(self) -> str:
        return self.name


@contextmanager
def work_dir() -> Iterator[Path]:
    """A private local folder for one piece of work, removed afterwards.

    Named after this process, so `clean_work_dirs` can remove what a killed process left."""
    root = Path(settings.WORK_DIR)
    root.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=root))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def clean_work_dirs() -> int:
    """Remove the work folders of processes that are gone (killed mid-job); returns how many."""
    root = Path(settings.WORK_DIR)
    removed = 0
    for folder in root.glob("*-*") if root.is_dir() else ():
        pid = folder.name.split("-", 1)[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed


def pid_alive(pid: int) -> bool:
    """Whether a process of this machine is still there."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # there, but another user's
    return True


@contextmanager
def local_copy(field) -> Iterator[Path]:
    """A local path to a stored file, for code that needs one (PyAV, ffmpeg).

    On a local disk it is the file itself; on remote storage, a downloaded copy that is
    removed afterwards."""
    try:
        path = field.storage.path(field.name)
    except NotImplementedError:
        path = None
    if path is not None:
        yield Path(path)
        return
    with work_dir() as folder, field.storage.open(field.name, "rb") as source:
        local = folder / PurePosixPath(field.name).name
        with open(local, "wb") as target:
            shutil.copyfileobj(source, target, 1 << 20)
        yield local


def save_local_file(name: str, path: Path, storage: Storage = default_storage) -> str:
    """Store a finished local file under `name`, replacing any file there; returns the name.

    The file is moved (renamed where the storage is on the same disk), so readers see the old
    file or the new one, never a part."""
    with open(path, "rb") as handle:
        return storage.save(name, _LocalFile(handle, str(path)))
