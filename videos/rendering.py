"""The labelled MP4: the name tags drawn from the stored labels, in one pass or in parts on
several workers, under the video's render lease; re-renders that wait for a burst of
corrections to end; and the copy browsers play of an original they cannot."""

import time
from collections import defaultdict
from contextlib import ExitStack
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from base.db import row_lock
from base.jobs import JobGone, Progress, job_enqueue, job_fence, running, workers_listening
from base.storage import delete_tree, local_copy, local_copy_of, save_local_file, work_dir
from core.media.draw import Label
from core.media.probe import VideoInfo, browsers_cannot_play
from core.media.render import join_parts, render, render_part
from core.tracking import segments
from videos.facts import video_info
from videos.folders import forgotten_if_deleted, work_name
from videos.lease import RenderLease, render_lease
from videos.models import Detection, RenderRun, Video
from videos.progress import RENDER, RENDER_PARTS, parts_done, shared_progress

# The tag of a face that is no known member, as the watch page's overlay draws it too.
UNKNOWN_NAME, UNKNOWN_COLOUR = "unknown", "#bbbbbb"
# The copy of an original browsers cannot play is only watched with boxes drawn over it:
# x264's faster preset and its default quality keep it cheap.
PREVIEW_PRESET, PREVIEW_CRF = "superfast", 23

# Member slug -> (name, RGB) of her tag; None -> the tag of an unknown face.
Looks = dict[str | None, tuple[str, tuple[int, int, int]]]


def group_looks(group) -> Looks:
    """How each member of the group is labelled, and (with settings.VIDEO_SHOW_UNKNOWN) a face
    that is no known member, as video_labels() draws them."""
    looks = {m.slug: (m.name, _rgb(m.color)) for m in group.members.all()}
    if settings.VIDEO_SHOW_UNKNOWN:
        looks[None] = (UNKNOWN_NAME, _rgb(UNKNOWN_COLOUR))
    return looks


def _rgb(color: str) -> tuple[int, int, int]:
    return tuple(int(color[i : i + 2], 16) for i in (1, 3, 5))


def video_labels(
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
    columns = ("frame", "left", "top", "right", "bottom", "track__member__name")
    rows = (
        rows.order_by("track__number", "frame")  # drawn in track order, as the analysis drew them
        .values_list(*columns, "track__member__color")
        .iterator(chunk_size=5000)
    )
    for frame, left, top, right, bottom, name, color in rows:
        box = (left, top, right, bottom)
        labels[frame].append(Label(box, name or UNKNOWN_NAME, _rgb(color or UNKNOWN_COLOUR)))
    return labels


def video_labelled_render(
    *, video: Video, source, info: VideoInfo, progress=None, lease: RenderLease | None = None
) -> None:
    """Draw the stored labels on the original (a local file) and store the labelled MP4.

    One render of a video at a time, on any worker: under `lease` when the caller holds the
    video's render lease, else under one taken here. The labels are read once it is held,
    so a render that waited draws the newest ones."""
    if lease is None:
        with render_lease(video) as taken:
            return video_labelled_render(
                video=video, source=source, info=info, progress=progress, lease=taken
            )
    total = max(info.frames, 1)
    labels = video_labels(video)

    def labels_at(index):
        if index % 30 == 0:
            lease.renew()
            if progress:
                progress(100 * index / total)
        return labels.get(index, ())

    with work_dir() as folder:
        target = folder / "labelled.mp4"
        render(source, target, info, labels_at, preset=settings.VIDEO_RENDER_PRESET)
        video_labelled_store(video=video, path=target, lease=lease)


def video_labelled_store(*, video: Video, path, lease: RenderLease | None = None) -> None:
    """Store a labelled MP4 made from the video's current labels, under the render lease (a
    render drawn behind the analysis takes it just for this)."""
    if lease is None:
        with render_lease(video) as taken:
            return video_labelled_store(video=video, path=path, lease=taken)
    name = save_local_file(f"{video.storage_folder()}/labelled.mp4", path)
    if not Video.objects.filter(pk=video.pk, render_lease=lease.token).update(labelled=name):
        if not Video.objects.filter(pk=video.pk).exists():
            delete_tree(video.storage_folder())  # deleted while it rendered
            raise JobGone(f"video {video.pk} was deleted")
        raise RuntimeError("another worker took this video's render over; it draws it")


def video_preview_store(*, video: Video, attempt: int, source, info: VideoInfo, progress) -> None:
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


# --- the render in parts, after segment jobs --------------------------------------------------


def render_pieces(info: VideoInfo) -> list[tuple[int, int]]:
    """The frame ranges a fanned-out video's labelled MP4 is drawn in: two per worker taking
    videos (so a slow one holds up less), each at least VIDEO_RENDER_PART_SECONDS; one range
    when no other worker could help, or for variable-rate video (drawn in one pass)."""
    mode = settings.VIDEO_SEGMENTS_AS_JOBS
    workers = workers_listening(Video.job_queue) if mode == "auto" else (2 if mode else 1)
    if workers < 2 or info.vfr:
        return [(0, info.frames)]
    least = max(1, round(settings.VIDEO_RENDER_PART_SECONDS * (info.fps or 30.0)))
    return segments.split(info.frames, min(2 * workers, max(1, info.frames // least)))


def video_render_spread(*, video: Video, attempt: int, pieces: list[tuple[int, int]]) -> None:
    """The bar and the stage say the labelled video is drawn in `pieces` parts now (the jobs
    layer queues a job per part and the join)."""
    Progress(video, attempt=attempt).update(
        segments=len(pieces),
        segments_done=0,
        progress=RENDER.low,
        stage=f"drawing the labelled video in {len(pieces)} parts",
    )


def video_render_part(*, video: Video, attempt: int, number: int, start: int, end: int) -> None:
    """Draw frames [start, end) of the labelled video (no audio) and store them for the join."""
    job_fence(Video, video.pk, attempt)
    report = shared_progress(video, attempt, RENDER_PARTS)
    with local_copy(video.original) as source, work_dir() as folder:
        info = video_info(video, source)
        labels = video_labels(video, frames=(start, end))

        def labels_at(index):
            if (index - start) % 30 == 0:
                report(100 * (index - start) / (end - start))
            return labels.get(index, ())

        path = folder / f"render-{number}.mp4"
        render_part(source, path, info, labels_at, start, end, preset=settings.VIDEO_RENDER_PRESET)
        job_fence(Video, video.pk, attempt)
        save_local_file(work_name(video, attempt, path.name), path)
    parts_done(video, attempt, RENDER_PARTS)


def video_render_join(*, video: Video, attempt: int) -> Video:
    """Put the drawn parts together with the original audio, store the labelled MP4: done."""
    with forgotten_if_deleted(video):
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
                        local_copy_of(work_name(video, attempt, f"render-{number}.mp4"))
                    )
                    for number in range(video.segments)
                ]
                target = folder / "labelled.mp4"
                join_parts(parts, source, target, info)
                video_labelled_store(video=video, path=target)
                video_preview_store(
                    video=video, attempt=attempt, source=source, info=info, progress=progress
                )
        delete_tree(f"{video.storage_folder()}/work")
    video_corrections_drawn(video=video)
    video.refresh_from_db()
    return video


# --- re-renders ---------------------------------------------------------------------------------


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
            # Still processing: its own render at the end draws the current labels, and asks
            # for another if a correction came after it read them (video_corrections_drawn).
            progress(100, "nothing to do: the video is still being processed", force=True)
            return
        with local_copy(video.original) as source:
            info = video_info(video, source)
            video_labelled_render(
                video=video, source=source, info=info, progress=progress, lease=lease
            )


def video_corrections_drawn(*, video: Video) -> None:
    """Once a video is processed: its names could be corrected as soon as they were all there,
    maybe after its render read them; then it is drawn again."""
    if video.corrections.exists():
        video_render_request(video=video, reason="corrected while it was drawn")


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
