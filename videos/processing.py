"""Processing a video: analyse it (in segments on several workers when long), name its
tracks, store them, and draw the labelled MP4 (videos.rendering).

Every step is fenced by the job's attempt (base.jobs): a video deleted or queued again
while it is processed makes this run stop at its next progress report, and whatever it wrote
after a delete is removed with the video's folder. Which jobs follow which is the jobs
layer's business (videos.jobs): a step that hands work on to other jobs returns what they
are to do.
"""

import logging

from django.conf import settings
from django.core.files.storage import default_storage
from django.utils import timezone

from base.jobs import Progress, job_fence, running, workers_listening
from base.storage import delete_tree, local_copy, save_local_file, work_dir
from core.faces import embed
from core.media.probe import VideoInfo
from core.tracking import segments
from core.tracking.naming import name_tracks
from core.tracking.overlap import Naming, analyze_and_render, part_bounds
from core.tracking.segments import Source, parts_in_order
from recognition import selectors as recognition_selectors
from recognition.services import naming_classifier
from videos.facts import video_info, video_info_here
from videos.folders import forgotten_if_deleted, video_remove_unowned_files, work_name
from videos.models import Video
from videos.names import NamesPublisher
from videos.progress import (
    ANALYSIS,
    OVERLAP_ANALYSIS,
    OVERLAP_RENDER,
    RENDER,
    SEGMENTS,
    parts_done,
    shared_progress,
)
from videos.rendering import (
    group_looks,
    render_pieces,
    video_corrections_drawn,
    video_labelled_render,
    video_labelled_store,
    video_preview_store,
    video_render_spread,
)

log = logging.getLogger(__name__)


def segment_bounds(frames: int, fps: float) -> list[tuple[int, int]]:
    """Frame ranges of the segments a video is analysed in."""
    size = max(1, int(round(settings.VIDEO_SEGMENT_SECONDS * (fps or 30.0))))
    return [(start, min(start + size, frames)) for start in range(0, frames, size)]


def video_process(
    *, video: Video, attempt: int | None = None, echo=None, threshold: float | None = None
) -> Video:
    """Run the whole pipeline in this process: analysed on every core, the labelled video
    drawn behind the analysis. `echo` receives the row at each progress write
    (process_video prints it); `threshold`, a probability, replaces the group's operating
    point for this run (recognition.services.naming_classifier)."""
    attempt = video.attempt if attempt is None else attempt
    with forgotten_if_deleted(video):
        _clear_leftovers(video, attempt)
        with local_copy(video.original) as source:
            info = video_info(video, source)
            with running(video, attempt=attempt, echo=echo) as progress:
                progress(0, "finding faces", force=True)
                _analyze_and_render(video, attempt, source, info, progress, threshold)
    video_corrections_drawn(video=video)
    video.refresh_from_db()
    return video


def video_segments(*, video: Video, attempt: int) -> list[tuple[int, int, int]] | None:
    """The segment jobs a long video is analysed in, when they pay: (first segment, first
    frame, end frame) of each, the row marked running in segments; None: analyse it in one job.

    Segment jobs pay when another worker can take some: with one worker they would run one
    after the other, and the render could not start until the last was done. A job takes as
    many consecutive segments as a worker has analysis processes, so one worker keeps every
    core busy; the segments (and so the labels) are the same as one job's would be."""
    mode = settings.VIDEO_SEGMENTS_AS_JOBS
    pays = workers_listening(Video.job_queue) > 1 if mode == "auto" else bool(mode)
    if not pays:
        return None
    with forgotten_if_deleted(video):
        info = video_info_here(video)
        bounds = segment_bounds(info.frames, info.fps)
        if len(bounds) < 2:
            return None
        _clear_leftovers(video, attempt)
        Progress(video, attempt=attempt).update(
            state=Video.State.RUNNING,
            started=timezone.now(),
            error="",
            progress=0.0,
            segments=len(bounds),
            segments_done=0,
            stage=f"finding faces in {len(bounds)} segments",
        )
    step = max(1, settings.VIDEO_ANALYSIS_PROCESSES)
    return [
        (number, bounds[number][0], bounds[min(number + step, len(bounds)) - 1][1])
        for number in range(0, len(bounds), step)
    ]


def _analyze_and_render(
    video: Video, attempt: int, source, info: VideoInfo, progress, threshold=None
) -> None:
    """The whole video in this job: names first, analysed on every core and stored as each
    stretch becomes final; the labelled video drawn beside them at the lowest priority, so it
    takes what CPU the analysis leaves and finishes after it; above 720p the render waits for
    the analysis, so its encoder and the analysis processes do not take memory at the same
    time (core.tracking.overlap).

    Measured on a 30 s 720p stage video, one worker on two cores, three runs each: the render
    on a core of its own made the names ready in 6.9-7.6 s and the MP4 in 10.1-12.6 s; every
    core analysing and the render after them, names in 6.0-6.5 s and the MP4 in 12.0-12.8 s;
    every core analysing with the render beside at niceness 19, names in 4.1-4.2 s and the
    MP4 in 7.5-8.8 s."""
    version = _naming_version(video)
    processes = max(1, settings.VIDEO_ANALYSIS_PROCESSES)
    publisher = NamesPublisher(video, attempt, version, info)
    publisher.start()

    def report(analysed: float, rendered: float) -> None:
        stage = "finding faces" if analysed < 100 else "drawing the labelled video"
        progress(OVERLAP_ANALYSIS * analysed / 100 + OVERLAP_RENDER * rendered / 100, stage)

    with work_dir() as folder:
        target = folder / "labelled.mp4"
        analysis = analyze_and_render(
            Source(source, info, embedder=_embedder(video)),
            target,
            part_bounds(info),
            processes,
            Naming(naming_classifier(version, threshold=threshold), group_looks(video.group)),
            preset=settings.VIDEO_RENDER_PRESET,
            progress=report,
            on_final=publisher.add,
            on_analysed=publisher.finish,
        )
        progress(OVERLAP_ANALYSIS + OVERLAP_RENDER, "storing the labelled video", force=True)
        video_labelled_store(video=video, path=target)
    video_preview_store(video=video, attempt=attempt, source=source, info=info, progress=progress)
    progress.update(timings={**analysis.timings, "tracks": publisher.count})


def _naming_version(video: Video):
    """The group's active version, which names the tracks; its face model must be the one
    the analysis embeds with."""
    version = recognition_selectors.active_version(video.group)
    if version is None:
        raise RuntimeError(f"{video.group} has no active model")
    if version.embedding_model != _embedder(video).model_id:
        raise RuntimeError("the group's face model changed during the analysis; it will rerun")
    return version


def _embedder(video: Video):
    """The face model the group's active version was trained with: its tracks are named by
    that version, so they are embedded by its model."""
    version = recognition_selectors.active_version(video.group)
    if version is None:
        raise RuntimeError(f"{video.group} has no active model")
    return embed.embedder_for_model_id(version.embedding_model)


def _clear_leftovers(video: Video, attempt: int) -> None:
    job_fence(Video, video.pk, attempt)
    video_remove_unowned_files(video=video)


def segment_analyze(*, video: Video, attempt: int, number: int, start: int, end: int) -> None:
    """Analyse the video's segments that lie in frames [start, end), the first of them
    segment `number`, and store each one's result for the finishing job."""
    job_fence(Video, video.pk, attempt)
    with local_copy(video.original) as source:
        info = video_info(video, source)
        bounds = [b for b in segment_bounds(info.frames, info.fps) if start <= b[0] < end]
        report = shared_progress(video, attempt, SEGMENTS, len(bounds))
        found = parts_in_order(
            Source(source, info, embedder=_embedder(video)),
            bounds,
            settings.VIDEO_ANALYSIS_PROCESSES,
            progress=report,
            first_number=number,
        )
        parts = list(found)
    with work_dir() as folder:
        for offset, analysis in enumerate(parts):
            path = folder / f"segment-{number + offset}.npz"
            segments.save(analysis, path)
            job_fence(Video, video.pk, attempt)
            save_local_file(work_name(video, attempt, path.name), path)
    parts_done(video, attempt, SEGMENTS, len(parts))


def video_finish(*, video: Video, attempt: int) -> list[tuple[int, int]] | None:
    """Join the segments' tracks at the seams, then name, store and render (after segment
    jobs). Segments are read one at a time and their final tracks stored at once, so memory stays
    flat. With other workers about, the render is spread over them too: the frame ranges of
    its parts are returned for the jobs layer to queue (None: drawn here, done)."""
    with forgotten_if_deleted(video):
        with local_copy(video.original) as source:
            info = video_info(video, source)
            pieces = render_pieces(info)
            spread = len(pieces) > 1
            with running(video, attempt=attempt, finish=not spread) as progress:
                _join_segments(video, attempt, info, progress)
                if spread:
                    video_render_spread(video=video, attempt=attempt, pieces=pieces)
                    return pieces
                progress(RENDER.low, "drawing the labelled video", force=True)
                video_labelled_render(
                    video=video,
                    source=source,
                    info=info,
                    progress=lambda p: progress(RENDER.at(p)),
                )
                video_preview_store(
                    video=video, attempt=attempt, source=source, info=info, progress=progress
                )
        delete_tree(f"{video.storage_folder()}/work")
    video_corrections_drawn(video=video)
    return None


def _join_segments(video: Video, attempt: int, info: VideoInfo, progress) -> None:
    bounds = segment_bounds(info.frames, info.fps)
    progress(ANALYSIS.high, "joining segments", force=True)
    version = _naming_version(video)
    classifier = naming_classifier(version)
    stitcher = segments.Stitcher([start for start, _ in bounds], keep=False)
    publisher = NamesPublisher(video, attempt, version, info)
    publisher.start()
    for n in range(len(bounds)):
        with default_storage.open(work_name(video, attempt, f"segment-{n}.npz")) as f:
            final = stitcher.add(segments.load(f))
        name_tracks(final, classifier, cuts=stitcher.cuts)
        publisher.add(final, stitcher.final_before)
    analysis = stitcher.result()
    publisher.finish(analysis)
    progress.update(timings={**analysis.timings, "tracks": publisher.count})
