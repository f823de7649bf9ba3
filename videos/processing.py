"""Processing a video: analyse (in segments on several workers when long), name, store, render."""

import io
import logging
from collections import defaultdict
from pathlib import Path

import django_rq
import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from PIL import Image
from rq import Retry

from recognition import selectors as recognition_selectors
from recognition.core import faces, media, pipeline
from recognition.services import model_version_load
from twicesite.jobs import Progress, running
from videos.models import Detection, Track, Video

log = logging.getLogger(__name__)

# Of the progress bar: analysis first, then saving, then the render.
ANALYSIS_SHARE, RENDER_FROM = 60.0, 62.0


def segment_bounds(frames: int, fps: float) -> list[tuple[int, int]]:
    """Frame ranges of the segments a video is analysed in."""
    size = max(1, int(round(settings.VIDEO_SEGMENT_SECONDS * (fps or 30.0))))
    return [(start, min(start + size, frames)) for start in range(0, frames, size)]


def _work_path(video: Video, name: str) -> Path:
    path = Path(default_storage.path(f"videos/{video.uuid.hex}/work/{name}"))
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def video_process(*, video: Video, fan_out: bool | None = None, echo=None) -> Video:
    """Run the whole pipeline in this process, or fan a long video out as segment jobs.

    `echo` receives the video row at each progress write (process_video prints it)."""
    fan_out = settings.VIDEO_SEGMENTS_AS_JOBS if fan_out is None else fan_out
    info = media.probe(video.original.path)
    bounds = segment_bounds(info.frames, info.fps)
    if len(bounds) > 1 and fan_out:
        Video.objects.filter(pk=video.pk).update(
            state=Video.State.RUNNING, started=timezone.now(), error="", progress=0.0
        )
        _fan_out(video, bounds)
        return video  # finish_video_job completes it
    processes = settings.VIDEO_ANALYSIS_PROCESSES
    if len(bounds) < processes:
        # Short: cut it anyway so every process gets a part.
        bounds = pipeline.split_for_processes(info, processes)
    with running(video, echo=echo) as progress:
        progress(0, "finding faces", force=True)
        analysis = pipeline.analyze_parallel(
            video.original.path,
            info=info,
            bounds=bounds,
            processes=processes,
            progress=lambda percent, stage: progress(ANALYSIS_SHARE * percent / 100, stage),
        )
        _finish(video, info, analysis, progress)
    video.refresh_from_db()
    return video


def _fan_out(video: Video, bounds: list[tuple[int, int]]) -> None:
    """Queue one analysis job per segment and a finishing job that waits for all of them."""
    queue = django_rq.get_queue("video")
    Video.objects.filter(pk=video.pk).update(
        segments=len(bounds), segments_done=0, stage=f"finding faces in {len(bounds)} segments"
    )
    jobs = [
        queue.enqueue(
            "videos.jobs.analyze_segment_job",
            video.pk,
            number,
            start,
            end,
            job_timeout=3600,
            retry=Retry(max=1),
            job_id=f"{video.rq_job_id}-seg{number}",
        )
        for number, (start, end) in enumerate(bounds)
    ]
    queue.enqueue(
        "videos.jobs.finish_video_job",
        video.pk,
        depends_on=jobs,
        job_timeout=6 * 3600,
        retry=Retry(max=1),
        job_id=f"{video.rq_job_id}-finish",
    )
    # Pages follow the finishing job from here on.
    Video.objects.filter(pk=video.pk).update(rq_job_id=f"{video.rq_job_id}-finish")


def segment_analyze(*, video: Video, number: int, start: int, end: int) -> None:
    info = media.probe(video.original.path)
    analysis = pipeline.analyze_segment(video.original.path, info, start, end, number)
    pipeline.save(analysis, _work_path(video, f"segment-{number}.npz"))
    Video.objects.filter(pk=video.pk).update(segments_done=F("segments_done") + 1)
    video.refresh_from_db()
    Video.objects.filter(pk=video.pk).update(
        progress=ANALYSIS_SHARE * video.segments_done / max(video.segments, 1),
        stage=f"found faces in {video.segments_done} of {video.segments} segments",
    )


def video_finish(*, video: Video) -> Video:
    """Join the segments' tracks at the seams, then name, store and render (after fan-out)."""
    info = media.probe(video.original.path)
    bounds = segment_bounds(info.frames, info.fps)
    Video.objects.filter(pk=video.pk).update(state=Video.State.RUNNING)
    video.refresh_from_db()
    with running(video) as progress:
        progress(ANALYSIS_SHARE, "joining segments", force=True)
        parts = [pipeline.load(_work_path(video, f"segment-{n}.npz")) for n in range(len(bounds))]
        analysis = pipeline.join(parts, [start for start, _ in bounds])
        _finish(video, info, analysis, progress)
    for n in range(len(bounds)):
        _work_path(video, f"segment-{n}.npz").unlink(missing_ok=True)
    video.refresh_from_db()
    return video


def _finish(video: Video, info: media.VideoInfo, analysis: pipeline.Analysis, progress: Progress):
    version = recognition_selectors.active_version(video.group)
    if version is None:
        raise RuntimeError(f"{video.group} has no active model")
    pipeline.name_tracks(analysis.tracks, model_version_load(version))
    progress(ANALYSIS_SHARE, "saving predictions", force=True)
    store_analysis(video=video, analysis=analysis, version=version, info=info)
    progress(RENDER_FROM, "drawing the labelled video", force=True)
    render_labelled(
        video=video,
        info=info,
        progress=lambda p: progress(RENDER_FROM + (100 - RENDER_FROM) * p / 100),
    )
    Video.objects.filter(pk=video.pk).update(
        timings={**analysis.timings, "tracks": len(analysis.tracks)}
    )


@transaction.atomic
def store_analysis(*, video: Video, analysis: pipeline.Analysis, version, info) -> None:
    """Replace the video's tracks and detections with these (a retried job starts clean)."""
    video.tracks.all().delete()
    members = {m.slug: m for m in video.group.members.all()}
    embedder_id = faces.Embedder().model_id
    fps = info.fps or 30.0
    rows = []
    for track in analysis.tracks:
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
            out = io.BytesIO()
            # The strip has a slot per possible sample; keep the filled ones.
            used = max(1, len(track.sample_boxes)) * track.thumbnail.shape[0]
            strip = Image.fromarray(track.thumbnail[:, :used])
            strip = strip.resize((strip.width * 72 // strip.height, 72))
            strip.save(out, format="JPEG", quality=88)
            row.thumbnail.save(f"{track.id}.jpg", ContentFile(out.getvalue()), save=True)
        rows += [
            Detection(
                video=video,
                track=row,
                frame=f,
                time=f / fps,
                left=b[0],
                top=b[1],
                right=b[2],
                bottom=b[3],
            )
            for f, b in sorted(track.boxes.items())
        ]
    Detection.objects.bulk_create(rows, batch_size=5000)
    Video.objects.filter(pk=video.pk).update(model_version=version)


def render_labelled(*, video: Video, info: media.VideoInfo | None = None, progress=None) -> None:
    """Draw the stored labels on the original and store it as the labelled MP4."""
    info = info or media.probe(video.original.path)
    labels: dict[int, list] = defaultdict(list)
    rows = (
        Detection.objects.filter(video=video, track__is_face=True, track__member__isnull=False)
        .values_list(
            "frame", "left", "top", "right", "bottom", "track__member__name", "track__member__color"
        )
        .iterator(chunk_size=5000)
    )
    for frame, left, top, right, bottom, name, color in rows:
        rgb = tuple(int(color[i : i + 2], 16) for i in (1, 3, 5))
        labels[frame].append(media.Label((left, top, right, bottom), name, rgb))
    total = max(info.frames, 1)

    def labels_at(index):
        if progress and index % 30 == 0:
            progress(100 * index / total)
        return labels.get(index, ())

    name = f"videos/{video.uuid.hex}/labelled.mp4"
    target = Path(default_storage.path(name))
    target.parent.mkdir(parents=True, exist_ok=True)
    media.render(video.original.path, target, info, labels_at, preset=settings.VIDEO_RENDER_PRESET)
    Video.objects.filter(pk=video.pk).update(labelled=name)


def group_relabel(*, version) -> dict[str, int]:
    """Name every uncorrected stored track of the group again with `version`, from stored
    embeddings (no video is decoded), and queue re-renders of the videos that changed."""
    from videos.models import Relabel

    clf = model_version_load(version)
    members = {m.slug: m for m in version.group.members.all()}
    changed_videos = changed_tracks = 0
    videos = Video.objects.filter(group=version.group, state=Video.State.DONE)
    for video in videos.iterator():
        rows = list(video.tracks.filter(is_face=True).select_related("member"))
        frames = defaultdict(set)
        for number, frame in Detection.objects.filter(video=video).values_list(
            "track__number", "frame"
        ):
            frames[number].add(frame)
        work = []
        for row in rows:
            if row.corrected:
                continue
            track = pipeline.Track(id=row.number)
            track.boxes = dict.fromkeys(frames[row.number], (0, 0, 0, 0))
            track.samples = row.sample_vectors()
            work.append((row, track))
        pipeline.name_tracks([t for _, t in work], clf)
        # A person's correction wins a clash with the model.
        fixed = [(r.member_id, frames[r.number]) for r in rows if r.corrected and r.member_id]
        updates = []
        for row, track in work:
            member = members.get(track.label)
            if member and any(m == member.pk and f & frames[row.number] for m, f in fixed):
                member = None
            candidate = members.get(track.candidate)
            if (row.member_id, row.candidate_id) != (
                member.pk if member else None,
                candidate.pk if candidate else None,
            ) or abs(row.confidence - track.confidence) > 1e-6:
                if row.member_id != (member.pk if member else None):
                    updates.append(row)
                row.member, row.candidate, row.confidence = member, candidate, track.confidence
                row.save(update_fields=["member", "candidate", "confidence"])
        Video.objects.filter(pk=video.pk).update(model_version=version)
        if updates:
            changed_videos += 1
            changed_tracks += len(updates)
            Relabel.objects.create(version=version, video=video, tracks_changed=len(updates))
            video_rerender_soon(video=video)
    return {"videos": changed_videos, "tracks": changed_tracks}


def video_rerender_soon(*, video: Video) -> None:
    """Queue one re-render of the labelled MP4; requests while one waits join it."""
    from rq.exceptions import NoSuchJobError
    from rq.job import Job, JobStatus

    queue = django_rq.get_queue("video")
    job_id = f"rerender-{video.pk}"
    try:
        if Job.fetch(job_id, connection=queue.connection).get_status() == JobStatus.QUEUED:
            return
    except NoSuchJobError:
        pass
    queue.enqueue("videos.jobs.rerender_video_job", video.pk, job_id=job_id, job_timeout=3600)


def video_rerender(*, video: Video) -> None:
    """Draw the current labels again on the labelled MP4 (after a relabel or corrections)."""
    render_labelled(video=video)
