"""Processing a video: analyse it (in segments on several workers when long), name its
tracks, store them, and draw the labelled MP4 (videos.rendering).

Every step is fenced by the job's attempt (base.jobs): a video deleted or queued again
while it is processed makes this run stop at its next progress report, and whatever it wrote
after a delete is removed with the video's folder. Which jobs follow which is the jobs
layer's business (videos.jobs): a step that hands work on to other jobs returns what they
are to do.
"""

import logging

import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from base.jobs import Progress, job_fence, running, workers_listening
from base.storage import delete_tree, local_copy, save_local_file, work_dir
from core.faces import embed
from core.images import encode_jpeg, shrunk
from core.media.probe import VideoInfo
from core.tracking import segments
from core.tracking.naming import name_tracks
from core.tracking.overlap import Naming, analyze_and_render, part_bounds
from core.tracking.segments import Source, parts_in_order
from core.tracking.tracks import Analysis
from recognition import selectors as recognition_selectors
from recognition.services import model_version_load
from videos.facts import video_info, video_info_here
from videos.folders import forgotten_if_deleted, video_remove_unowned_files, work_name
from videos.models import Detection, Track, Video
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
    video_labelled_render,
    video_labelled_store,
    video_preview_store,
    video_render_spread,
)

log = logging.getLogger(__name__)

# Rows written in one go while storing a long video's detections.
DETECTION_BATCH = 5000


def segment_bounds(frames: int, fps: float) -> list[tuple[int, int]]:
    """Frame ranges of the segments a video is analysed in."""
    size = max(1, int(round(settings.VIDEO_SEGMENT_SECONDS * (fps or 30.0))))
    return [(start, min(start + size, frames)) for start in range(0, frames, size)]


def video_process(*, video: Video, attempt: int | None = None, echo=None) -> Video:
    """Run the whole pipeline in this process: analysed on every core, the labelled video
    drawn behind the analysis. `echo` receives the row at each progress write
    (process_video prints it)."""
    attempt = video.attempt if attempt is None else attempt
    with forgotten_if_deleted(video):
        _clear_leftovers(video, attempt)
        with local_copy(video.original) as source:
            info = video_info(video, source)
            with running(video, attempt=attempt, echo=echo) as progress:
                progress(0, "finding faces", force=True)
                _analyze_and_render(video, attempt, source, info, progress)
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


def _analyze_and_render(video: Video, attempt: int, source, info: VideoInfo, progress) -> None:
    """The whole video in this job: analysed on every core, with the labelled video drawn
    behind the analysis (core.tracking.overlap)."""
    version = _naming_version(video)
    # The render process is the other core's work: with every core analysing as well, the
    # video was no sooner ready (2 cores, stage-dev and a 1080p stage, 2 runs each) and a
    # 1080p worker took 1.04-1.08 GB instead of 0.87-0.90.
    processes = max(1, settings.VIDEO_ANALYSIS_PROCESSES - 1)

    def report(analysed: float, rendered: float) -> None:
        stage = "finding faces" if analysed < 100 else "drawing the labelled video"
        progress(OVERLAP_ANALYSIS * analysed / 100 + OVERLAP_RENDER * rendered / 100, stage)

    with work_dir() as folder:
        target = folder / "labelled.mp4"
        aside = _TracksAside(folder)
        analysis = analyze_and_render(
            Source(source, info, embedder=_embedder(video)),
            target,
            part_bounds(info, processes),
            processes,
            Naming(model_version_load(version), group_looks(video.group)),
            preset=settings.VIDEO_RENDER_PRESET,
            progress=report,
            on_final=aside.add,
        )
        progress(OVERLAP_ANALYSIS + OVERLAP_RENDER, "saving predictions", force=True)
        video_analysis_store(
            video=video,
            attempt=attempt,
            analysis=analysis,
            version=version,
            info=info,
            tracks=aside.tracks(),
        )
        video_labelled_store(video=video, path=target)
    video_preview_store(video=video, attempt=attempt, source=source, info=info, progress=progress)
    progress.update(timings={**analysis.timings, "tracks": aside.count})


class _TracksAside:
    """Named tracks put in files as they become final, and read back one batch at a time to
    be stored: a long video's tracks (strips, boxes, samples) never all sit in memory."""

    def __init__(self, folder) -> None:
        self.folder, self.batches, self.count = folder, 0, 0

    def add(self, tracks: list) -> None:
        if not tracks:
            return
        segments.save(Analysis(tracks, 0, [], {}), self.folder / f"named-{self.batches}.npz")
        self.batches += 1
        self.count += len(tracks)

    def tracks(self):
        for number in range(self.batches):
            yield from segments.load(self.folder / f"named-{number}.npz").tracks


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
    jobs). Segments are read one at a time and their final tracks put aside, so memory stays
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
    return None


def _join_segments(video: Video, attempt: int, info: VideoInfo, progress) -> None:
    bounds = segment_bounds(info.frames, info.fps)
    progress(ANALYSIS.high, "joining segments", force=True)
    version = _naming_version(video)
    classifier = model_version_load(version)
    stitcher = segments.Stitcher([start for start, _ in bounds], keep=False)
    with work_dir() as folder:
        aside = _TracksAside(folder)
        for n in range(len(bounds)):
            with default_storage.open(work_name(video, attempt, f"segment-{n}.npz")) as f:
                final = stitcher.add(segments.load(f))
            name_tracks(final, classifier)
            aside.add(final)
        analysis = stitcher.result()
        progress(ANALYSIS.high, "saving predictions", force=True)
        video_analysis_store(
            video=video,
            attempt=attempt,
            analysis=analysis,
            version=version,
            info=info,
            tracks=aside.tracks(),
        )
    progress.update(timings={**analysis.timings, "tracks": aside.count})


def video_analysis_store(
    *, video: Video, attempt: int | None = None, analysis: Analysis, version, info, tracks=None
) -> None:
    """Replace the video's tracks and detections with the analysis's (or `tracks`, an
    iterable of them read as they are stored); a retried job starts clean."""
    saved: list[str] = []
    try:
        with transaction.atomic():
            if attempt is not None:
                job_fence(Video, video.pk, attempt, lock=True)  # no delete until this commits
            _store(video, analysis.tracks if tracks is None else tracks, version, info, saved)
            Video.objects.filter(pk=video.pk).update(
                model_version=version, cuts=list(analysis.cuts)
            )
    except BaseException:
        for name in saved:  # the rows are gone with the rollback; so go their strips
            default_storage.delete(name)
        raise


def _store(video, tracks, version, info, saved: list[str]) -> None:
    video.tracks.all().delete()  # their strips go when this commits
    members = {m.slug: m for m in video.group.members.all()}
    embedder_id = version.embedding_model  # the analysis used the version's model
    clock = info.clock()
    rows = []
    for track in tracks:
        samples = np.asarray(track.samples, dtype=np.float32)
        row = Track.objects.create(
            video=video,
            number=track.id,
            member=members.get(track.label),
            candidate=members.get(track.candidate),
            confidence=track.confidence,
            first_frame=track.first_frame,
            last_frame=track.last_frame,
            embedding=samples.mean(axis=0).astype(np.float32).tobytes(),
            samples=samples.tobytes(),
            embedding_model=embedder_id,
            sample_boxes=[[f, *map(int, b)] for f, b in track.sample_boxes],
        )
        if track.thumbnail is not None:
            # The strip has a slot per possible sample; keep the filled ones.
            used = max(1, len(track.sample_boxes)) * track.thumbnail.shape[0]
            strip = shrunk(track.thumbnail[:, :used], height=72)
            row.thumbnail.save(
                f"{track.id}.jpg", ContentFile(encode_jpeg(strip, quality=88)), save=True
            )
            saved.append(row.thumbnail.name)
        rows += [
            Detection(
                video=video,
                track=row,
                frame=f,
                time=clock.time(f),
                left=b[0],
                top=b[1],
                right=b[2],
                bottom=b[3],
            )
            for f, b in sorted(track.boxes.items())
        ]
        if len(rows) >= DETECTION_BATCH:  # a long video's rows need not all be in memory
            Detection.objects.bulk_create(rows)
            rows = []
    Detection.objects.bulk_create(rows)
