"""Writes for videos: submission, processing, storing what was found."""

import logging
import tempfile
from datetime import timedelta
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files import File
from django.db import IntegrityError, transaction
from django.utils import timezone

from base.db import row_lock
from base.jobs import job_enqueue, job_retry
from base.storage import delete_tree
from base.units import size_label
from core.media.probe import MediaError, probe
from gallery.models import Group
from recognition import selectors as recognition_selectors
from videos.facts import video_facts_set
from videos.models import Video

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".3gp", ".mpg", ".mpeg", ".ts"}


class VideoRejected(Exception):
    """The file cannot be taken as a video; the message says why."""


def video_check_upload(*, name: str, size: int, owner=None) -> None:
    """Refuse what is certainly not acceptable before a byte is stored."""
    suffix = PurePosixPath(name).suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        kinds = ", ".join(sorted(VIDEO_SUFFIXES))
        raise VideoRejected(f"“{name}” is not a video file. Choose one of these kinds: {kinds}.")
    if size > settings.VIDEO_MAX_BYTES:
        raise VideoRejected(
            f"This file is {size_label(size)}; the limit is {size_label(settings.VIDEO_MAX_BYTES)}."
        )
    if size == 0:
        raise VideoRejected("This file is empty.")
    _check_upload_rate(owner)


def _check_upload_rate(owner) -> None:
    if owner is None or owner.is_staff:
        return
    if asked_last_hour(owner) >= settings.VIDEO_UPLOADS_PER_HOUR:
        raise VideoRejected(hourly_limit_message())


def asked_last_hour(user) -> int:
    """The work a fan had the site do in the last hour: uploads, and fancams made on videos
    of others (on their own videos the cost is theirs already). VIDEO_UPLOADS_PER_HOUR
    limits the sum."""
    from videos.models import FancamRequest

    hour_ago = timezone.now() - timedelta(hours=1)
    uploads = Video.objects.filter(owner=user, created__gte=hour_ago).count()
    fancams = FancamRequest.objects.filter(user=user, created__gte=hour_ago)
    return uploads + fancams.exclude(fancam__video__owner=user).count()


def hourly_limit_message() -> str:
    return (
        f"You have reached the limit of {settings.VIDEO_UPLOADS_PER_HOUR} uploads and fancams "
        "of other people's videos in the last hour. Please try again a little later."
    )


def video_submit(
    *,
    source: Path,
    name: str,
    group: Group,
    owner=None,
    title: str = "",
    is_public: bool = False,
    enqueue: bool = True,
) -> Video:
    """Probe `source`, store it as a new video and queue its processing."""
    size = source.stat().st_size
    video_check_upload(name=name, size=size, owner=owner)
    try:
        info = probe(source)
    except MediaError as exc:
        # ffmpeg's words go to the log for whoever debugs it; the fan reads plain ones.
        log.info("upload %r refused: %s", name, str(exc).replace(source.name, name))
        with source.open("rb") as handle:
            head = handle.read(12)
        raise VideoRejected(plain_media_error(str(exc), head=head)) from None
    if recognition_selectors.active_version(group) is None:
        raise VideoRejected(f"{group} has no trained model yet; a curator must train one first")
    video = Video(
        owner=owner,
        group=group,
        title=title[:200] or title_from_name(PurePosixPath(name).name),
        original_name=name[:255],
        size=size,
        is_public=is_public,
        stage="waiting for a worker",
    )
    video_facts_set(video=video, info=info)
    # The file is stored first, outside the transaction, so the rate check and the insert
    # below hold the lock for milliseconds, not for the copy of a 2 GB file.
    with source.open("rb") as handle:
        video.original.save(name, File(handle), save=False)
    try:
        with transaction.atomic():
            if owner is not None:
                # One fan's uploads are counted one at a time: four at once at 9 of 10 store
                # one video, not four. (SQLite transactions here take the write lock up front.)
                row_lock(get_user_model(), owner.pk)
            _check_upload_rate(owner)
            video.save()
            if enqueue:
                job_enqueue(video)  # sent to Redis on commit; if it is down, the sweep sends it
    except BaseException:
        delete_tree(video.storage_folder())
        raise
    return video


CUT_SHORT = "This file is cut short: it looks like the upload stopped early. Try again."
# (what ffmpeg or the probe said, what a fan reads), the first that matches wins.
MEDIA_ERRORS = [
    ("file is empty", "This file is empty."),
    ("is a still image", "This is a still image, not a video."),
    ("audio-only", "This file has sound but no picture: choose a video."),
    (
        "share one timestamp",
        "Several frames of this video share one timestamp, so no player can show them in "
        "order. Export it again from any video editor or converter and upload that.",
    ),
    (
        "truncated or corrupt",
        "This file is cut short or damaged: part of it cannot be read. If the upload stopped "
        "early, try again.",
    ),
    ("", "This is not a video file, or not one that can be read."),
]


def plain_media_error(message: str, *, head: bytes = b"") -> str:
    """What the probe said about a file that is not a usable video, in a fan's words.

    An MP4 whose index (the moov atom, written last by most cameras) is missing but which
    starts as an MP4 does (an ftyp box) is one whose upload or copy stopped early; any other
    file ffmpeg cannot open is not a video."""
    if "moov atom not found" in message and head[4:8] == b"ftyp":
        return CUT_SHORT
    return next(plain for needle, plain in MEDIA_ERRORS if needle in message)


def title_from_name(name: str) -> str:
    """The title a file's name gives a video: the name as typed, less its extension (markup
    and slashes included: titles are escaped wherever they are shown)."""
    stem, dot, suffix = name.strip().rpartition(".")
    title = stem if dot and stem and "/" not in suffix else name.strip()
    return title[:200]


def video_update(
    *, video: Video, title: str, is_public: bool, allow_original_download: bool = False
) -> Video:
    """Rename a video or change who can watch it and download its original."""
    video.title = title[:200] or video.title
    video.is_public = is_public
    video.allow_original_download = allow_original_download
    video.save(update_fields=["title", "is_public", "allow_original_download"])
    return video


def video_retry(*, video: Video) -> bool:
    """Process a failed video again from its original; returns whether it was queued."""
    return job_retry(video)


def video_delete(*, video: Video) -> None:
    """Delete a video, its rows and (once that commits) every file made from it.

    A job still working on it notices at its next progress report and stops. Until then it
    may store tracks: a delete that collected the video's rows before the job added some
    fails as a whole at its commit (the new rows still point at the video), and is done again,
    collecting them too."""
    for attempt in range(5):
        try:
            video.delete()
            return
        except IntegrityError:
            if attempt == 4:
                raise
            log.info("video %s gained rows while it was deleted; deleting again", video.pk)


def video_upload(*, upload, group: Group, owner, title: str = "", is_public: bool = False) -> Video:
    """A fan's uploaded file (Django's UploadedFile) checked, stored and queued; the temp copy
    this needed is removed again. Raises VideoRejected with the reason."""
    video_check_upload(name=upload.name, size=upload.size, owner=owner)
    path = copy_to_temp(upload)
    try:
        return video_submit(
            source=path,
            name=upload.name,
            group=group,
            owner=owner,
            title=title,
            is_public=is_public,
        )
    finally:
        if not hasattr(upload, "temporary_file_path"):
            path.unlink(missing_ok=True)


def copy_to_temp(upload) -> Path:
    """An uploaded file as a path on local disk (Django keeps big uploads in a temp file)."""
    if hasattr(upload, "temporary_file_path"):
        return Path(upload.temporary_file_path())
    handle = tempfile.NamedTemporaryFile(delete=False, suffix=PurePosixPath(upload.name).suffix)
    with handle:
        for chunk in upload.chunks():
            handle.write(chunk)
    return Path(handle.name)
