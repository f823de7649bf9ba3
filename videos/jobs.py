"""RQ entry points for videos: take ids, load rows, call one service. A step that hands work
on to other jobs gets them queued here, so the services never name a job."""

from base.jobs import JobCall, job_entry, job_fan_out
from videos import fancams, harvest, processing, relabel, rendering
from videos.models import Fancam, HarvestRun, RelabelRun, RenderRun, Video


def process_video_job(video_id: int, attempt: int):
    return job_entry(Video, video_id, lambda video: _process(video, attempt), related=("group",))


def _process(video: Video, attempt: int) -> str:
    """The whole video in this job, or (long, with other workers about) segment jobs and a
    finishing job that waits for them."""
    segments = processing.video_segments(video=video, attempt=attempt)
    if segments is None:
        return processing.video_process(video=video, attempt=attempt).state
    parts = [
        JobCall(analyze_segment_job, (video.pk, attempt, number, start, end), f"seg{number}")
        for number, start, end in segments
    ]
    job_fan_out(video, attempt, parts, JobCall(finish_video_job, (video.pk, attempt), "finish"))
    return f"analysed in {len(parts)} jobs"


def analyze_segment_job(video_id: int, attempt: int, number: int, start: int, end: int):
    return job_entry(
        Video,
        video_id,
        lambda video: processing.segment_analyze(
            video=video, attempt=attempt, number=number, start=start, end=end
        ),
    )


def finish_video_job(video_id: int, attempt: int):
    return job_entry(Video, video_id, lambda video: _finish(video, attempt), related=("group",))


def _finish(video: Video, attempt: int) -> str:
    """Join, name and store the segments; draw the labelled MP4 here, or in parts on any
    worker and a job that joins them."""
    pieces = processing.video_finish(video=video, attempt=attempt)
    if pieces is None:
        return Video.objects.get(pk=video.pk).state
    parts = [
        JobCall(render_part_job, (video.pk, attempt, number, start, end), f"render{number}")
        for number, (start, end) in enumerate(pieces)
    ]
    job_fan_out(video, attempt, parts, JobCall(render_join_job, (video.pk, attempt), "join"))
    return f"drawn in {len(parts)} jobs"


def render_part_job(video_id: int, attempt: int, number: int, start: int, end: int):
    return job_entry(
        Video,
        video_id,
        lambda video: rendering.video_render_part(
            video=video, attempt=attempt, number=number, start=start, end=end
        ),
    )


def render_join_job(video_id: int, attempt: int):
    return job_entry(
        Video,
        video_id,
        lambda video: rendering.video_render_join(video=video, attempt=attempt).state,
    )


def relabel_group_job(run_id: int, attempt: int):
    return job_entry(
        RelabelRun,
        run_id,
        lambda run: relabel.group_relabel(run=run, attempt=attempt),
        related=("version__group",),
    )


def render_video_job(run_id: int, attempt: int):
    return job_entry(
        RenderRun,
        run_id,
        lambda run: rendering.video_rerender(run=run, attempt=attempt),
        related=("video",),
    )


def fancam_job(fancam_id: int, attempt: int):
    return job_entry(
        Fancam,
        fancam_id,
        lambda fancam: fancams.fancam_make(fancam=fancam, attempt=attempt).state,
        related=("video", "member"),
    )


def harvest_job(run_id: int, attempt: int):
    return job_entry(
        HarvestRun,
        run_id,
        lambda run: harvest.group_harvest(run=run, attempt=attempt),
        related=("group",),
    )
