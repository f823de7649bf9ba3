"""A video's folder in storage: everything made from it lives there, and goes with it."""

from contextlib import contextmanager

from django.core.files.storage import default_storage

from base.jobs import JobGone
from base.storage import delete_tree
from videos.models import Track, Video


def work_name(video: Video, attempt: int, name: str) -> str:
    """Stored scratch files shared between the jobs of one attempt (segment results, render
    parts); removed when the attempt is done."""
    return f"{video.storage_folder()}/work/{attempt}/{name}"


def video_remove_unowned_files(*, video: Video) -> None:
    """Remove what killed attempts left in the video's folder: segment results, stray temp
    files, and strips whose track rows were rolled back with their process."""
    folder = video.storage_folder()
    delete_tree(f"{folder}/work")
    for name in _files_in(folder):
        if name.startswith("."):
            default_storage.delete(f"{folder}/{name}")
    owned = set(Track.objects.filter(video=video).values_list("thumbnail", flat=True))
    for name in _files_in(f"{folder}/tracks"):
        if f"{folder}/tracks/{name}" not in owned:
            default_storage.delete(f"{folder}/tracks/{name}")


def _files_in(folder: str) -> list[str]:
    try:
        return default_storage.listdir(folder)[1]
    except FileNotFoundError:
        return []


@contextmanager
def forgotten_if_deleted(video: Video):
    """Let JobGone through, first removing the video's folder if the video was deleted: the
    delete removed it when it committed, and this run may have written since."""
    try:
        yield
    except JobGone:
        if not Video.objects.filter(pk=video.pk).exists():
            delete_tree(video.storage_folder())
        raise
