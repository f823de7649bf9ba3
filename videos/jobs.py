"""RQ entry points for videos: take ids, load rows, call one service."""

from videos import processing
from videos.models import Video


def process_video_job(video_id: int) -> str:
    video = processing.video_process(video=Video.objects.select_related("group").get(pk=video_id))
    return video.state


def analyze_segment_job(video_id: int, number: int, start: int, end: int) -> None:
    processing.segment_analyze(
        video=Video.objects.get(pk=video_id), number=number, start=start, end=end
    )


def finish_video_job(video_id: int) -> str:
    video = processing.video_finish(video=Video.objects.select_related("group").get(pk=video_id))
    return video.state


def relabel_group_job(version_id: int) -> dict:
    from recognition.models import ModelVersion

    return processing.group_relabel(
        version=ModelVersion.objects.select_related("group").get(pk=version_id)
    )


def rerender_video_job(video_id: int) -> None:
    processing.video_rerender(video=Video.objects.get(pk=video_id))
