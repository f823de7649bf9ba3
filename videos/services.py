"""Writes for videos: submission, processing, storing what was found."""

import logging
import tempfile
from datetime import timedelta
from pathlib import Path, PurePosixPath

import django_rq
from django.conf import settings
from django.core.files import File
from django.db import transaction
from django.utils import timezone

from gallery.models import Group
from recognition import selectors as recognition_selectors
from recognition.core import media
from videos.models import Video

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".3gp", ".mpg", ".mpeg", ".ts"}


class VideoRejected(Exception):
    """The file cannot be taken as a video; the message says why."""


def video_check_upload(*, name: str, size: int, owner=None) -> None:
    """Refuse what is certainly not acceptable before a byte is stored."""
    suffix = PurePosixPath(name).suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        raise VideoRejected(
            f"{name!r} is not a video file we take ({', '.join(sorted(VIDEO_SUFFIXES))})"
        )
    if size > settings.VIDEO_MAX_BYTES:
        raise VideoRejected(
            f"the file is {size / 1e6:.0f} MB; the limit is {settings.VIDEO_MAX_BYTES / 1e6:.0f} MB"
        )
    if size == 0:
        raise VideoRejected("the file is empty")
    if owner is not None and not owner.is_staff:
        hour_ago = timezone.now() - timedelta(hours=1)
        recent = Video.objects.filter(owner=owner, created__gte=hour_ago).count()
        if recent >= settings.VIDEO_UPLOADS_PER_HOUR:
            raise VideoRejected(
                f"you have uploaded {recent} videos in the last hour; please wait a little"
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
        info = media.probe(source)
    except media.MediaError as exc:
        # The message names the file; say it with the name the fan knows.
        raise VideoRejected(str(exc).replace(source.name, name)) from None
    if recognition_selectors.active_version(group) is None:
        raise VideoRejected(f"{group} has no trained model yet; a curator must train one first")
    with transaction.atomic():
        video = Video(
            owner=owner,
            group=group,
            title=title[:200] or PurePosixPath(name).stem[:200],
            original_name=name[:255],
            size=size,
            is_public=is_public,
            stage="waiting for a worker",
        )
        _set_probe_facts(video, info)
        with source.open("rb") as handle:
            video.original.save(name, File(handle), save=False)
        video.save()
        if enqueue:
            video_enqueue(video=video)
    return video


def _set_probe_facts(video: Video, info: media.VideoInfo) -> None:
    video.fps = info.fps
    video.frames = info.frames
    video.width = info.width
    video.height = info.height
    video.duration = info.duration
    video.rotation = info.rotation
    video.has_audio = info.has_audio


def video_enqueue(*, video: Video) -> None:
    """Queue processing once the surrounding transaction commits."""
    from rq import Retry

    video.rq_job_id = f"video-{video.pk}-{timezone.now().timestamp():.0f}"
    Video.objects.filter(pk=video.pk).update(
        rq_job_id=video.rq_job_id, state=Video.State.QUEUED, error="", progress=0.0
    )
    django_rq.get_queue("video").enqueue(
        "videos.jobs.process_video_job",
        video.pk,
        job_id=video.rq_job_id,
        job_timeout=6 * 3600,
        # A killed worker gets one more try; the job starts over and rewrites everything.
        retry=Retry(max=1),
    )


def copy_to_temp(upload) -> Path:
    """An uploaded file as a path on local disk (Django keeps big uploads in a temp file)."""
    if hasattr(upload, "temporary_file_path"):
        return Path(upload.temporary_file_path())
    handle = tempfile.NamedTemporaryFile(delete=False, suffix=PurePosixPath(upload.name).suffix)
    with handle:
        for chunk in upload.chunks():
            handle.write(chunk)
    return Path(handle.name)
