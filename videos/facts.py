"""A video's probe facts: probed once at upload, stored on the row, read by every job."""

from base.storage import local_copy
from core.media.probe import VideoInfo, probe
from videos.models import Video


def video_facts_set(*, video: Video, info: VideoInfo) -> None:
    """Copy the probe's facts onto the (unsaved) row: the columns pages read, and the whole
    result for jobs."""
    video.fps = info.fps
    video.frames = info.frames
    video.width = info.width
    video.height = info.height
    # The player's duration (every stream, as a browser shows it), not the video stream's.
    video.duration = info.media_duration or info.duration
    video.rotation = info.rotation
    video.has_audio = info.has_audio
    video.probe_facts = info.to_json()


def video_info(video: Video, source) -> VideoInfo:
    """The video's stored probe result; one stored before results (or its clock) were kept
    is probed now, once, from `source` (a local copy of the original), and keeps its result."""
    info = video.info()
    if info is None or info.first_time is None:
        info = probe(source)
        video.probe_facts = info.to_json()
        Video.objects.filter(pk=video.pk).update(probe_facts=video.probe_facts)
    return info


def video_info_here(video: Video) -> VideoInfo:
    """video_info() without a local copy of the original unless the facts must be probed."""
    info = video.info()
    if info is not None and info.first_time is not None:
        return info
    with local_copy(video.original) as source:
        return video_info(video, source)
