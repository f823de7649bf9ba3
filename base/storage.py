"""Stored files, through Django's storage API only: local copies for code that needs a path,
finished outputs moved into place, and deleting what a row owned."""

import io
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from django.conf import settings
from django.core.files import File
from django.core.files.storage import Storage, default_storage
from django.db import transaction

from core.processes import pid_alive

log = logging.getLogger(__name__)


CHUNK = 1 << 20  # bytes per read of a stored file streamed somewhere


def delete_tree(prefix: str, storage: Storage = default_storage) -> int:
    """Delete every stored file under `prefix` (a folder name); returns how many."""
    prefix = prefix.strip("/")
    if not prefix:
        raise ValueError("delete_tree needs a folder: an empty prefix is all of the storage")
    if _is_s3(storage):
        return _delete_s3_prefix(prefix, storage)
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
    local = local_path(prefix, storage)
    if local is None:
        return
    try:
        os.rmdir(local)
    except OSError:
        pass  # not empty (a file arrived meanwhile) or already gone


def _delete_s3_prefix(prefix: str, storage) -> int:
    """Delete the objects under `prefix/` a page of the bucket's listing (1000 keys) at a time."""
    client = storage.connection.meta.client
    pages = client.get_paginator("list_objects_v2").paginate(
        Bucket=storage.bucket_name, Prefix=_s3_key(prefix, storage) + "/"
    )
    count = 0
    for page in pages:
        keys = [{"Key": item["Key"]} for item in page.get("Contents", ())]
        if not keys:
            continue
        answer = client.delete_objects(
            Bucket=storage.bucket_name, Delete={"Objects": keys, "Quiet": True}
        )
        if answer.get("Errors"):
            first = answer["Errors"][0]
            raise OSError(
                f"could not delete {len(answer['Errors'])} objects under {prefix}/, "
                f"{first.get('Key')}: {first.get('Code')} {first.get('Message')}"
            )
        count += len(keys)
    return count


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


def local_path(name: str, storage: Storage = default_storage) -> Path | None:
    """Where a stored name lies on this machine's disk, or None for a remote storage."""
    if getattr(storage.path, "__func__", None) is Storage.path:
        return None  # Storage's own path() only raises NotImplementedError: not a local disk
    try:
        return Path(storage.path(name))
    except NotImplementedError:
        return None


def local_copy(field) -> AbstractContextManager[Path]:
    """A local path to a stored file (a FileField's file), for code that needs one (PyAV,
    ffmpeg); see local_copy_of."""
    return local_copy_of(field.name, field.storage)


@contextmanager
def local_copy_of(name: str, storage: Storage = default_storage) -> Iterator[Path]:
    """A local path to a stored name. On a local disk it is the file itself; on remote
    storage, a copy downloaded in chunks into a work folder, removed afterwards."""
    path = local_path(name, storage)
    if path is not None:
        yield path
        return
    with work_dir() as folder:
        local = folder / PurePosixPath(name).name
        with open_for_reading(name, storage) as source, open(local, "wb") as target:
            shutil.copyfileobj(source, target, CHUNK)
        yield local


def open_for_reading(name: str, storage: Storage = default_storage) -> BinaryIO:
    """A stored file opened for reading, seekable, that never holds the whole file in memory.

    On S3 each read after a seek is answered by one streamed ranged GET from there on (the
    storage's own open() would first download the whole object); elsewhere storage.open()."""
    if not _is_s3(storage):
        return storage.open(name, "rb")
    return io.BufferedReader(_S3Reader(name, storage), CHUNK)


def _is_s3(storage: Storage) -> bool:
    try:
        from storages.backends.s3 import S3Storage
    except ImportError:  # django-storages is not installed: no storage can be S3
        return False
    return isinstance(storage, S3Storage)


def _s3_key(name: str, storage) -> str:
    """The object key of a stored name (under the storage's prefix), as django-storages makes it."""
    from storages.utils import clean_name

    return storage._normalize_name(clean_name(name))


class _S3Reader(io.RawIOBase):
    """An S3 object read as a file: a read starts one GET of the bytes from the position to the
    end, streamed as they are read; a seek elsewhere drops it. Every GET asks for the version
    first seen (If-Match on its ETag), so a replaced object fails the read instead of mixing
    the old file's bytes with the new one's."""

    def __init__(self, name: str, storage):
        from botocore.exceptions import ClientError

        self.name = name
        self._object = storage.bucket.Object(_s3_key(name, storage))
        try:
            self._object.load()  # HEAD: size and ETag
        except ClientError as exc:
            if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
                raise FileNotFoundError(f"no stored file {name}") from None
            raise
        self.size = self._object.content_length
        self._etag = self._object.e_tag
        self._position = 0
        self._body = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self.size}[whence]
        position = base + offset
        if position < 0:
            raise ValueError(f"negative seek position {position}")
        if position != self._position:
            self._drop()
            self._position = position
        return position

    def readinto(self, buffer) -> int:
        if self._position >= self.size or not len(buffer):
            return 0
        if self._body is None:
            from botocore.exceptions import ClientError

            try:
                answer = self._object.get(Range=f"bytes={self._position}-", IfMatch=self._etag)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == "PreconditionFailed":
                    raise OSError(f"{self.name} was replaced while it was read") from None
                raise
            self._body = answer["Body"]
        data = self._body.read(len(buffer))
        buffer[: len(data)] = data
        self._position += len(data)
        return len(data)

    def _drop(self) -> None:
        if self._body is not None:
            self._body.close()
            self._body = None

    def close(self) -> None:
        self._drop()
        super().close()


def save_local_file(name: str, path: Path, storage: Storage = default_storage) -> str:
    """Store a finished local file under `name`, replacing any file there; returns the name.

    The file is moved (renamed where the storage is on the same disk), so readers see the old
    file or the new one, never a part."""
    with open(path, "rb") as handle:
        return storage.save(name, _LocalFile(handle, str(path)))
