"""Processing a video: analyse (in segments on several workers when long), name, store, render.

Every step is fenced by the job's attempt (base.jobs): a video deleted or queued again
while it is processed makes this run stop at its next progress report, and whatever it wrote
after a delete is removed with the video's folder.
"""

import logging
import os
import socket
import time
import uuid
from collections import defaultdict
from contextlib import ExitStack, contextmanager
from datetime import timedelta

import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from base.db import row_lock
from base.jobs import (
    JobGone,
    Progress,
    job_enqueue,
    job_fence,
    job_send,
    running,
    workers_listening,
)
from base.storage import (
    delete_tree,
    local_copy,
    local_copy_of,
    pid_alive,
    save_local_file,
    work_dir,
)
from core.faces import embed
from core.images import encode_jpeg, shrunk
from core.media.draw import Label
from core.media.probe import VideoInfo, browsers_cannot_play, probe
from core.media.render import join_parts, render, render_part
from core.tracking import segments
from core.tracking.naming import Fixed, name_samples, name_tracks
from core.tracking.overlap import analyze_and_render, part_bounds
from core.tracking.segments import analyze_parts
from core.tracking.tracks import Analysis
from recognition import selectors as recognition_selectors
from recognition.services import model_version_load
from videos.models import Detection, RelabelRun, RenderRun, Track, Video

log = logging.getLogger(__name__)

# Of the progress bar: analysis first, then saving, then the render.
ANALYSIS_SHARE, RENDER_FROM = 60.0, 62.0
# Overlapped, analysis and render fill it side by side, then the predictions are saved.
OVERLAP_ANALYSIS, OVERLAP_RENDER = 55.0, 43.0


def segment_bounds(frames: int, fps: float) -> list[tuple[int, int]]:
    """Frame ranges of the segments a video is analysed in."""
    size = max(1, int(round(settings.VIDEO_SEGMENT_SECONDS * (fps or 30.0))))
    return [(start, min(start + size, frames)) for start in range(0, frames, size)]


def _work_name(video: Video, attempt: int, name: str) -> str:
    """Stored scratch files shared between the jobs of one attempt (segment results)."""
    return f"{video.storage_folder()}/work/{attempt}/{name}"


def video_process(
    *, video: Video, attempt: int | None = None, fan_out: bool | None = None, echo=None
) -> Video:
    """Run the whole pipeline in this process, or fan a long video out as segment jobs.

    `echo` receives the video row at each progress write (process_video prints it)."""
    fan_out = _fan_out_pays() if fan_out is None else fan_out
    attempt = video.attempt if attempt is None else attempt
    with _forgotten_if_deleted(video):
        _clear_leftovers(video, attempt)
        with local_copy(video.original) as source:
            info = video_info(video, source)
            bounds = segment_bounds(info.frames, info.fps)
            if len(bounds) > 1 and fan_out:
                _fan_out(video, attempt, bounds)
                return video  # finish_video_job completes it
            with running(video, attempt=attempt, echo=echo) as progress:
                progress(0, "finding faces", force=True)
                _analyze_and_render(video, attempt, source, info, progress)
    video.refresh_from_db()
    return video


def _fan_out_pays() -> bool:
    """Segment jobs pay when another worker can take some: with one worker they would run one
    after the other, and the render could not start until the last was done."""
    mode = settings.VIDEO_SEGMENTS_AS_JOBS
    if mode != "auto":
        return bool(mode)
    return workers_listening(Video.job_queue) > 1


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
            source, target, info=info, bounds=part_bounds(info, processes), processes=processes,
            classifier=model_version_load(version), looks=member_looks(video.group),
            embedder=_embedder(video), preset=settings.VIDEO_RENDER_PRESET, progress=report,
            on_final=aside.add,
        )  # fmt: skip
        progress(OVERLAP_ANALYSIS + OVERLAP_RENDER, "saving predictions", force=True)
        store_analysis(
            video=video, attempt=attempt, analysis=analysis, version=version, info=info,
            tracks=aside.tracks(),
        )  # fmt: skip
        _store_labelled(video, target)
    _store_preview(video, attempt, source, info, progress)
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


def member_looks(group) -> dict[str | None, tuple[str, tuple[int, int, int]]]:
    """How each member of the group is labelled: slug -> (name, RGB); and None -> the tag of
    an unknown face, with settings.VIDEO_SHOW_UNKNOWN (as labels_by_frame draws them)."""
    looks = {m.slug: (m.name, _rgb(m.color)) for m in group.members.all()}
    if settings.VIDEO_SHOW_UNKNOWN:
        looks[None] = (UNKNOWN_NAME, _rgb(UNKNOWN_COLOUR))
    return looks


def _rgb(color: str) -> tuple[int, int, int]:
    return tuple(int(color[i : i + 2], 16) for i in (1, 3, 5))


def _naming_version(video: Video):
    """The group's active version, which names the tracks; its face model must be the one
    the analysis embeds with."""
    version = recognition_selectors.active_version(video.group)
    if version is None:
        raise RuntimeError(f"{video.group} has no active model")
    if version.embedding_model != _embedder(video).model_id:
        raise RuntimeError("the group's face model changed during the analysis; it will rerun")
    return version


def video_info(video: Video, source) -> VideoInfo:
    """The video's stored probe result; one stored before results (or its clock) were kept
    is probed now, once, and keeps its result."""
    info = video.info()
    if info is None or info.first_time is None:
        info = probe(source)
        video.probe_facts = info.to_json()
        Video.objects.filter(pk=video.pk).update(probe_facts=video.probe_facts)
    return info


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
def _forgotten_if_deleted(video: Video):
    """Let JobGone through, first removing the video's folder if the video was deleted: the
    delete removed it when it committed, and this run may have written since."""
    try:
        yield
    except JobGone:
        if not Video.objects.filter(pk=video.pk).exists():
            delete_tree(video.storage_folder())
        raise


def _job_base(video: Video, attempt: int) -> str:
    """The start of the ids of one attempt's jobs (as job_enqueue names the first)."""
    return f"videos-video-{video.pk}-{attempt}"


def _fan_out(video: Video, attempt: int, bounds: list[tuple[int, int]]) -> None:
    """Queue the analysis jobs and a finishing job that waits for all of them. A job takes as
    many consecutive segments as a worker has analysis processes, so one worker keeps every
    core busy; the segments (and so the labels) are the same as one job's would be."""
    Progress(video, attempt=attempt).update(
        state=Video.State.RUNNING,
        started=timezone.now(),
        error="",
        progress=0.0,
        segments=len(bounds),
        segments_done=0,
        stage=f"finding faces in {len(bounds)} segments",
    )
    base = _job_base(video, attempt)
    parts = []
    group = max(1, settings.VIDEO_ANALYSIS_PROCESSES)
    for number in range(0, len(bounds), group):
        start, end = bounds[number][0], bounds[min(number + group, len(bounds)) - 1][1]
        job = job_send(
            Video,
            "videos.jobs.analyze_segment_job",
            (video.pk, attempt, number, start, end),
            job_id=f"{base}-seg{number}",
            row_pk=video.pk,
        )
        if job is None:
            raise RuntimeError("the queue stopped answering while the segments were queued")
        parts.append(job)
    finish = job_send(
        Video,
        "videos.jobs.finish_video_job",
        (video.pk, attempt),
        job_id=f"{base}-finish",
        row_pk=video.pk,
        depends_on=parts,
    )
    if finish is None:
        raise RuntimeError("the queue stopped answering while the segments were queued")
    # Pages and the sweep follow the finishing job from here on.
    Progress(video, attempt=attempt).update(rq_job_id=finish.id)


def segment_analyze(*, video: Video, attempt: int, number: int, start: int, end: int) -> None:
    """Analyse the video's segments that lie in frames [start, end), the first of them
    segment `number`, and store each one's result for the finishing job."""
    job_fence(Video, video.pk, attempt)
    with local_copy(video.original) as source:
        info = video_info(video, source)
        bounds = [b for b in segment_bounds(info.frames, info.fps) if start <= b[0] < end]
        parts = analyze_parts(
            source, info=info, bounds=bounds, processes=settings.VIDEO_ANALYSIS_PROCESSES,
            embedder=_embedder(video), first_number=number,
            progress=_shared_progress(
                video, attempt, 0.0, ANALYSIS_SHARE, "finding faces", "segments", len(bounds)
            ),
        )  # fmt: skip
    with work_dir() as folder:
        for offset, analysis in enumerate(parts):
            path = folder / f"segment-{number + offset}.npz"
            segments.save(analysis, path)
            job_fence(Video, video.pk, attempt)
            save_local_file(_work_name(video, attempt, path.name), path)
    _part_done(video, attempt, 0.0, ANALYSIS_SHARE, "found faces in", "segments", len(parts))


def _shared_progress(
    video: Video, attempt: int, low: float, high: float, stage: str, what: str, count: int = 1
):
    """Progress within one of several jobs that share a stretch of the bar (segment analyses,
    render parts): this job's share of the parts, on top of those done, shown as soon as it is
    made; never backwards (the jobs run side by side). This job does `count` of the parts.
    Returns report(percent)."""
    last = [0.0]

    def report(percent: float, _stage: str = "") -> None:
        now = time.monotonic()
        if now - last[0] < 1.0:
            return
        last[0] = now
        done = Video.objects.filter(pk=video.pk).values_list("segments_done", "segments").first()
        if done is None:
            raise JobGone(f"video {video.pk} was deleted")
        value = low + (high - low) * (done[0] + count * percent / 100) / max(done[1], 1)
        Video.objects.filter(pk=video.pk, attempt=attempt, progress__lt=value).update(
            progress=value, stage=f"{stage}: {done[0]} of {done[1]} {what} done"
        )

    return report


def _part_done(
    video: Video, attempt: int, low: float, high: float, verb: str, what: str, count: int = 1
) -> None:
    """`count` more of the parts are done: the bar and the stage say so."""
    progress = Progress(video, attempt=attempt)
    progress.update(segments_done=F("segments_done") + count)
    video.refresh_from_db()
    progress.update(
        progress=max(
            video.progress, low + (high - low) * video.segments_done / max(video.segments, 1)
        ),
        stage=f"{verb} {video.segments_done} of {video.segments} {what}",
    )


def video_finish(*, video: Video, attempt: int) -> Video:
    """Join the segments' tracks at the seams, then name, store and render (after fan-out).
    Segments are read one at a time and their final tracks put aside, so memory stays flat.
    With other workers about, the render is spread over them too (render parts, then a join)."""
    with _forgotten_if_deleted(video):
        with local_copy(video.original) as source:
            info = video_info(video, source)
            pieces = render_bounds(info)
            spread = len(pieces) > 1
            with running(video, attempt=attempt, finish=not spread) as progress:
                _join_segments(video, attempt, info, progress)
                if spread:
                    _spread_render(video, attempt, pieces)
                    return video  # render_join_job completes it
                progress(RENDER_FROM, "drawing the labelled video", force=True)
                render_labelled(
                    video=video, source=source, info=info,
                    progress=lambda p: progress(RENDER_FROM + (100 - RENDER_FROM) * p / 100),
                )  # fmt: skip
                _store_preview(video, attempt, source, info, progress)
        delete_tree(f"{video.storage_folder()}/work")
    video.refresh_from_db()
    return video


def _join_segments(video: Video, attempt: int, info: VideoInfo, progress) -> None:
    bounds = segment_bounds(info.frames, info.fps)
    progress(ANALYSIS_SHARE, "joining segments", force=True)
    version = _naming_version(video)
    classifier = model_version_load(version)
    stitcher = segments.Stitcher([start for start, _ in bounds], keep=False)
    with work_dir() as folder:
        aside = _TracksAside(folder)
        for n in range(len(bounds)):
            with default_storage.open(_work_name(video, attempt, f"segment-{n}.npz")) as f:
                final = stitcher.add(segments.load(f))
            name_tracks(final, classifier)
            aside.add(final)
        analysis = stitcher.result()
        progress(ANALYSIS_SHARE, "saving predictions", force=True)
        store_analysis(
            video=video, attempt=attempt, analysis=analysis, version=version, info=info,
            tracks=aside.tracks(),
        )  # fmt: skip
    progress.update(timings={**analysis.timings, "tracks": aside.count})


def render_bounds(info: VideoInfo) -> list[tuple[int, int]]:
    """The frame ranges a fanned-out video's labelled MP4 is drawn in: two per worker taking
    videos (so a slow one holds up less), each at least VIDEO_RENDER_PART_SECONDS; one range
    when no other worker could help, or for variable-rate video (drawn in one pass)."""
    mode = settings.VIDEO_SEGMENTS_AS_JOBS
    workers = workers_listening(Video.job_queue) if mode == "auto" else (2 if mode else 1)
    if workers < 2 or info.vfr:
        return [(0, info.frames)]
    least = max(1, round(settings.VIDEO_RENDER_PART_SECONDS * (info.fps or 30.0)))
    return segments.split(info.frames, min(2 * workers, max(1, info.frames // least)))


def _spread_render(video: Video, attempt: int, pieces: list[tuple[int, int]]) -> None:
    """Queue a job per render part and the job that joins them once all are done."""
    Progress(video, attempt=attempt).update(
        segments=len(pieces), segments_done=0, progress=RENDER_FROM,
        stage=f"drawing the labelled video in {len(pieces)} parts",
    )  # fmt: skip
    base = _job_base(video, attempt)
    parts = []
    for number, (start, end) in enumerate(pieces):
        job = job_send(
            Video, "videos.jobs.render_part_job", (video.pk, attempt, number, start, end),
            job_id=f"{base}-render{number}", row_pk=video.pk,
        )  # fmt: skip
        if job is None:
            raise RuntimeError("the queue stopped answering while the render parts were queued")
        parts.append(job)
    join = job_send(
        Video, "videos.jobs.render_join_job", (video.pk, attempt), job_id=f"{base}-join",
        row_pk=video.pk, depends_on=parts,
    )  # fmt: skip
    if join is None:
        raise RuntimeError("the queue stopped answering while the render parts were queued")
    Progress(video, attempt=attempt).update(rq_job_id=join.id)


def render_part_draw(*, video: Video, attempt: int, number: int, start: int, end: int) -> None:
    """Draw frames [start, end) of the labelled video (no audio) and store them for the join."""
    job_fence(Video, video.pk, attempt)
    report = _shared_progress(
        video, attempt, RENDER_FROM, 100.0, "drawing the labelled video", "parts"
    )
    with local_copy(video.original) as source, work_dir() as folder:
        info = video_info(video, source)
        labels = labels_by_frame(video, frames=(start, end))

        def labels_at(index):
            if (index - start) % 30 == 0:
                report(100 * (index - start) / (end - start))
            return labels.get(index, ())

        path = folder / f"render-{number}.mp4"
        render_part(source, path, info, labels_at, start, end, preset=settings.VIDEO_RENDER_PRESET)
        job_fence(Video, video.pk, attempt)
        save_local_file(_work_name(video, attempt, path.name), path)
    _part_done(video, attempt, RENDER_FROM, 100.0, "drew", "parts of the labelled video")


def render_join(*, video: Video, attempt: int) -> Video:
    """Put the drawn parts together with the original audio, store the labelled MP4: done."""
    with _forgotten_if_deleted(video):
        with local_copy(video.original) as source:
            info = video_info(video, source)
            with (
                running(video, attempt=attempt, start=False) as progress,
                work_dir() as folder,
                ExitStack() as copies,
            ):
                progress(99.0, "putting the labelled video together", force=True)
                parts = [
                    copies.enter_context(
                        local_copy_of(_work_name(video, attempt, f"render-{number}.mp4"))
                    )
                    for number in range(video.segments)
                ]
                target = folder / "labelled.mp4"
                join_parts(parts, source, target, info)
                _store_labelled(video, target)
                _store_preview(video, attempt, source, info, progress)
        delete_tree(f"{video.storage_folder()}/work")
    video.refresh_from_db()
    return video


def store_analysis(
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


DETECTION_BATCH = 5000


# The tag of a face that is no known member, as the watch page's overlay draws it too.
UNKNOWN_NAME, UNKNOWN_COLOUR = "unknown", "#bbbbbb"


def labels_by_frame(
    video: Video, *, unknown: bool | None = None, frames: tuple[int, int] | None = None
) -> dict[int, list[Label]]:
    """The name tags to draw, frame by frame: every named face's box, in its member's colour,
    and (with settings.VIDEO_SHOW_UNKNOWN) every other face's, in grey. `frames`: only those
    of frames [start, end)."""
    if unknown is None:
        unknown = settings.VIDEO_SHOW_UNKNOWN
    labels: dict[int, list[Label]] = defaultdict(list)
    rows = Detection.objects.filter(video=video, track__is_face=True)
    if frames is not None:
        rows = rows.filter(frame__gte=frames[0], frame__lt=frames[1])
    if not unknown:
        rows = rows.filter(track__member__isnull=False)
    rows = (
        rows.order_by("track__number", "frame")  # drawn in track order, as the analysis drew them
        .values_list(
            "frame", "left", "top", "right", "bottom", "track__member__name", "track__member__color"
        )
        .iterator(chunk_size=5000)
    )
    for frame, left, top, right, bottom, name, color in rows:
        box = (left, top, right, bottom)
        labels[frame].append(Label(box, name or UNKNOWN_NAME, _rgb(color or UNKNOWN_COLOUR)))
    return labels


def render_labelled(
    *, video: Video, source, info: VideoInfo, progress=None, lease: "RenderLease | None" = None
) -> None:
    """Draw the stored labels on the original (a local file) and store the labelled MP4.

    One render of a video at a time, on any worker: under `lease` when the caller holds the
    video's render lease, else under one taken here. The labels are read once it is held,
    so a render that waited draws the newest ones."""
    if lease is None:
        with render_lease(video) as taken:
            return render_labelled(
                video=video, source=source, info=info, progress=progress, lease=taken
            )
    total = max(info.frames, 1)
    labels = labels_by_frame(video)

    def labels_at(index):
        if index % 30 == 0:
            lease.renew()
            if progress:
                progress(100 * index / total)
        return labels.get(index, ())

    with work_dir() as folder:
        target = folder / "labelled.mp4"
        render(source, target, info, labels_at, preset=settings.VIDEO_RENDER_PRESET)
        _store_labelled(video, target, lease)


# The copy of an original browsers cannot play is only watched with boxes drawn over it:
# x264's faster preset and its default quality keep it cheap.
PREVIEW_PRESET, PREVIEW_CRF = "superfast", 23


def _store_preview(video: Video, attempt: int, source, info: VideoInfo, progress) -> None:
    """Make and store a copy browsers play, on the original's clock, when the original is
    not one (core.media.render keeps every frame's time and the audio's offset)."""
    if browsers_cannot_play(info) is None:
        return
    progress(99.0, "making a copy your browser can play", force=True)
    with work_dir() as folder:
        target = folder / "preview.mp4"
        render(source, target, info, lambda index: (), preset=PREVIEW_PRESET, crf=PREVIEW_CRF)
        job_fence(Video, video.pk, attempt)
        name = save_local_file(f"{video.storage_folder()}/preview.mp4", target)
    Video.objects.filter(pk=video.pk).update(preview=name)


def _store_labelled(video: Video, path, lease: "RenderLease | None" = None) -> None:
    """Store a labelled MP4 made from the video's current labels, under the render lease (a
    render drawn behind the analysis takes it just for this)."""
    if lease is None:
        with render_lease(video) as taken:
            return _store_labelled(video, path, taken)
    name = save_local_file(f"{video.storage_folder()}/labelled.mp4", path)
    if not Video.objects.filter(pk=video.pk, render_lease=lease.token).update(labelled=name):
        if not Video.objects.filter(pk=video.pk).exists():
            delete_tree(video.storage_folder())  # deleted while it rendered
            raise JobGone(f"video {video.pk} was deleted")
        raise RuntimeError("another worker took this video's render over; it draws it")


class RenderLease:
    """A video's render lease held by this process: a token and until when (see Video)."""

    def __init__(self, video_pk: int):
        self.video_pk = video_pk
        # Who holds it, so a lease of a process of this machine that died (a killed work
        # horse) is taken over at once rather than when it runs out.
        self.token = f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self._renewed = 0.0

    def take(self) -> bool:
        now = timezone.now()
        free = Q(render_lease="") | Q(render_lease_until__lt=now)
        claim = {"render_lease": self.token, "render_lease_until": self._until(now)}
        if Video.objects.filter(free, pk=self.video_pk).update(**claim):
            return True
        holder = Video.objects.filter(pk=self.video_pk).values_list("render_lease", flat=True)
        holder = holder.first()
        if holder and _holder_dead(holder):
            return bool(Video.objects.filter(pk=self.video_pk, render_lease=holder).update(**claim))
        return False

    def renew(self) -> None:
        """Push the lease's end on (at most every few seconds: it is a database write)."""
        if time.monotonic() - self._renewed < 10:
            return
        self._renewed = time.monotonic()
        Video.objects.filter(pk=self.video_pk, render_lease=self.token).update(
            render_lease_until=self._until(timezone.now())
        )

    def release(self) -> None:
        Video.objects.filter(pk=self.video_pk, render_lease=self.token).update(
            render_lease="", render_lease_until=None
        )

    @staticmethod
    def _until(now):
        return now + timedelta(seconds=settings.VIDEO_RENDER_LEASE_SECONDS)


def _holder_dead(token: str) -> bool:
    """Whether a lease's holder was a process of this machine that is gone."""
    host, _, rest = token.partition(":")
    pid = rest.partition(":")[0]
    return host == socket.gethostname()[:30] and pid.isdigit() and not pid_alive(int(pid))


@contextmanager
def render_lease(video: Video, on_wait=None):
    """Hold the video's render lease for the block, waiting while another worker holds it.

    Not a database lock: a render takes minutes, and SQLite would hold every writer back
    meanwhile. A lease whose worker died runs out after VIDEO_RENDER_LEASE_SECONDS."""
    lease = RenderLease(video.pk)
    said = False
    while not lease.take():
        if not Video.objects.filter(pk=video.pk).exists():
            raise JobGone(f"video {video.pk} was deleted")
        if on_wait is not None and not said:
            on_wait()  # once: the page says why it waits
            said = True
        time.sleep(RENDER_LEASE_POLL)
    lease._renewed = time.monotonic()
    try:
        yield lease
    finally:
        lease.release()


# How often a render waiting for a video's lease asks again.
RENDER_LEASE_POLL = 0.25


def negatives_violated(*, group, classifier) -> dict[str, int]:
    """How many "not this member" corrections of the group's tracks `classifier` would break
    if it named the tracks freely (a model version's metrics; relabels never break them)."""
    tracks = (
        Track.objects.filter(video__group=group, not_members__isnull=False, is_face=True)
        .distinct()
        .prefetch_related("not_members")
    )
    negatives = violated = 0
    for track in tracks.iterator(chunk_size=200):
        banned = {m.slug for m in track.not_members.all()}
        negatives += len(banned)
        vectors = track.sample_vectors()
        if len(vectors) and vectors.shape[1] == classifier.dimensions:
            violated += classifier.predict_track(vectors).label in banned
    return {"negatives": negatives, "negatives_violated": violated}


# --- re-renders and relabels ----------------------------------------------------------------


def video_render_request(*, video: Video, reason: str = "") -> RenderRun:
    """Queue one re-render of the labelled MP4; requests made while one waits join it (and
    push its start on: see video_rerender)."""
    with transaction.atomic():
        # Serialises concurrent requests for one video (a row lock on PostgreSQL; SQLite
        # transactions here take the write lock up front), and the job's start (_close_run).
        row_lock(Video, video.pk)
        now = timezone.now()
        waiting = RenderRun.objects.filter(video=video, state=RenderRun.State.QUEUED).first()
        if waiting:
            RenderRun.objects.filter(pk=waiting.pk).update(
                requests=F("requests") + 1, last_request=now
            )
            return waiting
        run = RenderRun.objects.create(video=video, reason=reason[:200], last_request=now)
        job_enqueue(run)
    return run


def video_rerender(*, run: RenderRun, attempt: int) -> None:
    """Draw the current labels again on the labelled MP4 (after a relabel or corrections),
    once requests have been quiet for a moment: a burst of corrections is drawn once."""
    _wait_for_quiet(run, attempt)
    _close_run(run, attempt)
    video = Video.objects.get(pk=run.video_id)

    def waiting():
        RenderRun.objects.filter(pk=run.pk, attempt=attempt).update(
            stage="waiting for another render of this video to end"
        )

    with render_lease(video, on_wait=waiting) as lease, running(run, attempt=attempt) as progress:
        if video.state != Video.State.DONE:
            # Still processing: its own render at the end draws the current labels.
            progress(100, "nothing to do: the video is still being processed", force=True)
            return
        with local_copy(video.original) as source:
            info = video_info(video, source)
            render_labelled(video=video, source=source, info=info, progress=progress, lease=lease)


def _wait_for_quiet(run: RenderRun, attempt: int) -> None:
    """Sleep until no request joined the run for VIDEO_RERENDER_QUIET_SECONDS (at most
    VIDEO_RERENDER_MAX_WAIT_SECONDS after it was made). The run stays queued meanwhile, so
    requests keep joining it."""
    quiet = timedelta(seconds=settings.VIDEO_RERENDER_QUIET_SECONDS)
    latest = run.created + timedelta(seconds=settings.VIDEO_RERENDER_MAX_WAIT_SECONDS)
    said = False
    while True:
        row = job_fence(RenderRun, run.pk, attempt)
        now = timezone.now()
        wait = (min((row.last_request or row.created) + quiet, latest) - now).total_seconds()
        if wait <= 0:
            return
        if not said:
            RenderRun.objects.filter(pk=run.pk, attempt=attempt).update(
                stage="waiting a moment for more corrections"
            )
            said = True
        time.sleep(min(wait, 1.0))


def _close_run(run: RenderRun, attempt: int) -> None:
    """Mark the run running under the video's lock: a request from then on makes a new run
    instead of joining one whose labels may be read already."""
    with transaction.atomic():
        row_lock(Video, run.video_id)
        if not RenderRun.objects.filter(pk=run.pk, attempt=attempt).update(
            state=RenderRun.State.RUNNING
        ):
            raise JobGone(f"render run {run.pk} was deleted or queued again")


def group_relabel_request(*, version) -> RelabelRun:
    """Queue naming the group's stored tracks again with `version` (once this commits)."""
    run = RelabelRun.objects.create(version=version)
    job_enqueue(run)
    return run


def group_relabel(*, run: RelabelRun, attempt: int) -> dict[str, int]:
    """Name every uncorrected stored track of the group again with the run's version, from
    stored embeddings (no video is decoded), and queue re-renders of the videos that changed."""
    from videos.models import Relabel

    version = run.version
    with running(run, attempt=attempt) as progress:
        if not type(version).objects.filter(pk=version.pk, is_active=True).exists():
            # Another version became active since (a run queued again late, say): naming
            # with this one would undo that version's relabel.
            progress(100, f"nothing to do: {version} is no longer active", force=True)
            return {"videos": 0, "tracks": 0, "reanalysed": 0}
        clf = model_version_load(version)
        members = {m.slug: m for m in version.group.members.all()}
        changed_videos = changed_tracks = 0
        videos = Video.objects.filter(group=version.group, state=Video.State.DONE)
        total = max(videos.count(), 1)
        reanalysed = 0
        for done, video in enumerate(videos.iterator()):
            progress(100 * done / total, f"naming the tracks of {done + 1} of {total} videos")
            if video.tracks.exclude(embedding_model=version.embedding_model).exists():
                # Embedded by another face model: only a new analysis can name it.
                job_enqueue(video, reason=f"analysed again with {version}'s face model")
                reanalysed += 1
                continue
            updates = _relabel_video(video, clf, members)
            Video.objects.filter(pk=video.pk).update(model_version=version)
            if updates:
                changed_videos += 1
                changed_tracks += updates
                Relabel.objects.create(version=version, video=video, tracks_changed=updates)
                video_render_request(video=video, reason=f"relabelled by {version}")
        progress.update(videos_changed=changed_videos, tracks_changed=changed_tracks)
    return {"videos": changed_videos, "tracks": changed_tracks, "reanalysed": reanalysed}


def _relabel_video(video: Video, clf, members: dict) -> int:
    """Name the video's uncorrected tracks again from their stored samples; a correction
    wins every clash with the model, and a track is never named a member a person said it
    is not. Returns how many tracks changed member."""
    rows = list(
        video.tracks.filter(is_face=True, merged_into__isnull=True)
        .select_related("member")
        .prefetch_related("not_members")
    )
    frames = defaultdict(list)
    for number, frame in Detection.objects.filter(video=video).values_list(
        "track__number", "frame"
    ):
        frames[number].append(frame)
    frames = {number: np.unique(found) for number, found in frames.items()}
    no_frames = np.empty(0, np.int64)
    fixed = [
        Fixed(r.member.slug, frames.get(r.number, no_frames))
        for r in rows
        if r.corrected and r.member_id
    ]
    open_rows = [r for r in rows if not r.corrected]
    names = name_samples(
        [r.sample_vectors() for r in open_rows],
        [frames.get(r.number, no_frames) for r in open_rows],
        clf,
        fixed=fixed,
        excluded=[{m.slug for m in r.not_members.all()} for r in open_rows],
    )
    updates = 0
    for row, name in zip(open_rows, names, strict=True):
        member, candidate = members.get(name.label), members.get(name.candidate)
        if (row.member_id, row.candidate_id) != (
            member.pk if member else None,
            candidate.pk if candidate else None,
        ) or abs(row.confidence - name.confidence) > 1e-6:
            if row.member_id != (member.pk if member else None):
                updates += 1
            row.member, row.candidate, row.confidence = member, candidate, name.confidence
            row.save(update_fields=["member", "candidate", "confidence"])
    return updates
