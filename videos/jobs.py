"""RQ entry points for videos: take ids, load rows, call one service."""

from base.jobs import job_entry
from videos import fancams, processing
from videos.models import Fancam, RelabelRun, RenderRun, Video


def process_video_job(video_id: int, attempt: int):
    return job_entry(
        Video,
        video_id,
        lambda video: processing.video_process(video=video, attempt=attempt).state,
        related=("group",),
    )


def analyze_segment_job(video_id: int, attempt: int, number: int, start: int, end: int):
    return job_entry(
        Video,
        video_id,
        lambda video: processing.segment_analyze(
            video=video, attempt=attempt, number=number, start=start, end=end
        ),
    )


def finish_video_job(video_id: int, attempt: int):
    return job_entry(
        Video,
        video_id,
        lambda video: processing.video_finish(video=video, attempt=attempt).state,
        related=("group",),
    )


def render_part_job(video_id: int, attempt: int, number: int, start: int, end: int):
    return job_entry(
        Video,
        video_id,
        lambda video: processing.render_part_draw(
            video=video, attempt=attempt, number=number, start=start, end=end
        ),
    )


def render_join_job(video_id: int, attempt: int):
    return job_entry(
        Video, video_id, lambda video: processing.render_join(video=video, attempt=attempt).state
    )


def relabel_group_job(run_id: int, attempt: int):
    return job_entry(
        RelabelRun,
        run_id,
        lambda run: processing.group_relabel(run=run, attempt=attempt),
        related=("version__group",),
    )


def render_video_job(run_id: int, attempt: int):
    return job_entry(
        RenderRun,
        run_id,
        lambda run: processing.video_rerender(run=run, attempt=attempt),
        related=("video",),
    )


def fancam_job(fancam_id: int, attempt: int):
    return job_entry(
        Fancam,
        fancam_id,
        lambda fancam: fancams.fancam_make(fancam=fancam, attempt=attempt).state,
        related=("video", "member"),
    )
