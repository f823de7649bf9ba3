"""Fancams: one member followed through a processed video, cut from the stored boxes.

Nothing is analysed again: the job reads the member's stored detections (corrections
included), plans the window (core.fancam.framing) and renders it in one pass with the audio
(core.fancam.render). The same request twice gets the stored file, until her tracks change.
"""

import hashlib

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from base.db import row_lock
from base.jobs import job_enqueue, job_fence, running
from base.roles import is_curator
from base.storage import local_copy, save_local_file, work_dir
from core.fancam import framing
from core.fancam.render import render_fancam
from videos import services
from videos.facts import video_info
from videos.models import Correction, Detection, Fancam, FancamRequest, Track, Video
from videos.rendering import video_labels


class FancamRefused(Exception):
    """A fancam that cannot be made, with the reason in words for the fan."""


def fancam_request(
    *,
    video: Video,
    member,
    aspect: str = framing.DEFAULT_ASPECT,
    highlights=False,
    labels=False,
    user=None,
    enqueue: bool = True,
) -> Fancam:
    """The fancam of `member` with these settings: the stored one when it is still right,
    otherwise queued (again); with enqueue=False the caller makes it (the command).

    `user` is who asks (None: a command on the server). Making one costs the owner's machine:
    a fancam of someone else's video needs a signed-in fan and counts against their hourly
    limit, and every request that makes one is recorded for the owner to see."""
    if video.state != Video.State.DONE:
        raise FancamRefused("the video is not processed yet")
    if aspect not in framing.ASPECTS:
        raise FancamRefused(f"the aspect must be one of {', '.join(framing.ASPECTS)}")
    if member.group_id != video.group_id:
        raise FancamRefused(f"{member} is not a member of {video.group}")
    if not _her_tracks(video, member).exists():
        raise FancamRefused(
            f"{member} is not recognised anywhere in this video, so there is no fancam to make"
        )
    key = _source_key(video, member, labels)
    asker = user if user is not None and user.is_authenticated else None
    with transaction.atomic():
        row_lock(Video, video.pk)  # one row per setting, even for two requests at once
        fancam, created = Fancam.objects.get_or_create(
            video=video,
            member=member,
            aspect=aspect,
            highlights=highlights,
            labels=labels,
            defaults={"requested_by": asker},
        )
        if not created and (
            fancam.is_active() or (fancam.state == Fancam.State.DONE and fancam.source_key == key)
        ):
            return fancam
        _check_asker(video, user)  # refused: the row made above is rolled back
        if asker is not None:
            FancamRequest.objects.create(fancam=fancam, user=asker)
        if enqueue:
            job_enqueue(fancam, reason="" if created else "made again")
    fancam.refresh_from_db()
    return fancam


def _check_asker(video: Video, user) -> None:
    """Refuse a new fancam to someone not signed in, and to a fan over their hourly limit
    when the video is someone else's (the owner and curators are not counted)."""
    if user is None:
        return  # a command run on the server
    if not user.is_authenticated:
        raise FancamRefused("sign in to have a new fancam made")
    if user.pk == video.owner_id or user.is_staff or is_curator(user):
        return
    row_lock(get_user_model(), user.pk)  # one fan's requests and uploads counted one at a time
    if services.asked_last_hour(user) >= settings.VIDEO_UPLOADS_PER_HOUR:
        raise FancamRefused(services.hourly_limit_message())


def fancam_make(*, fancam: Fancam, attempt: int | None = None, echo=None) -> Fancam:
    """The job: plan the window from her stored boxes and render the fancam."""
    video, member = fancam.video, fancam.member
    with running(fancam, attempt=attempt, echo=echo) as progress:
        progress(0, "planning the camera", force=True)
        key = _source_key(video, member, fancam.labels)
        boxes = _her_boxes(video, member)
        if not boxes:
            raise FancamRefused(f"{member} is not recognised anywhere in this video")
        with local_copy(video.original) as source, work_dir() as folder:
            info = video_info(video, source)
            cuts = video.cuts if video.cuts is not None else _track_edges(video, member)
            plan = framing.plan(
                boxes,
                frames=info.frames,
                frame=(info.width, info.height),
                fps=info.fps,
                cuts=cuts,
                aspect=fancam.aspect,
            )
            keep = (
                framing.highlight_ranges(list(boxes), frames=info.frames, cuts=cuts)
                if fancam.highlights
                else None
            )
            drawn = video_labels(video) if fancam.labels else {}
            total = max(info.frames, 1)

            def labels_at(index):
                if index % 30 == 0:
                    progress(5 + 90 * index / total, "following her")
                return drawn.get(index, ())

            target = folder / "fancam.mp4"
            written = render_fancam(
                source,
                target,
                info,
                plan.windows,
                plan.output,
                keep=keep,
                labels=labels_at,
                preset=settings.VIDEO_RENDER_PRESET,
            )
            job_fence(Fancam, fancam.pk, attempt or fancam.attempt)
            old = fancam.file.name
            name = save_local_file(f"{video.storage_folder()}/fancams/{fancam.pk}.mp4", target)
        clock = info.clock()
        kept = (
            [clock.span(a, b) for a, b in keep] if keep is not None else [(clock.first, clock.end)]
        )
        progress.update(
            file=name,
            source_key=key,
            frames=written,
            duration=round(sum(t1 - t0 for t0, t1 in kept), 3),
        )
        if old and old != name:
            fancam.file.storage.delete(old)
    fancam.refresh_from_db()
    return fancam


def _her_tracks(video: Video, member):
    return Track.objects.filter(video=video, member=member, is_face=True)


def _her_boxes(video: Video, member) -> dict[int, tuple[int, int, int, int]]:
    rows = Detection.objects.filter(
        video=video, track__member=member, track__is_face=True
    ).values_list("frame", "left", "top", "right", "bottom")
    return {frame: (left, top, right, bottom) for frame, left, top, right, bottom in rows}


def _track_edges(video: Video, member) -> list[int]:
    """Shot edges for a video analysed before cuts were stored: her tracks never cross a cut,
    so where one of them starts or ends the window may jump."""
    edges = set()
    for first, last in _her_tracks(video, member).values_list("first_frame", "last_frame"):
        edges |= {first, last + 1}
    return sorted(edges)


def _source_key(video: Video, member, labels: bool) -> str:
    """What the fancam is made from: her tracks (all named tracks when labels are drawn) and
    the boxes people fixed, so a correction or relabel that changes them makes it again."""
    tracks = Track.objects.filter(video=video, is_face=True)
    if not labels:
        tracks = tracks.filter(member=member)
    rows = tracks.order_by("number").values_list("number", "member_id", "first_frame", "last_frame")
    fixed = video.corrections.filter(kind=Correction.Kind.BOX, undone__isnull=True)
    boxes = list(fixed.order_by("pk").values_list("pk", flat=True))
    text = f"{video.labelled.name}|{list(rows)}|{video.cuts}|{boxes}"
    return hashlib.sha256(text.encode()).hexdigest()
