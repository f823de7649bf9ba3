"""Corrections: a person fixes a track's label; approved fixes become training samples."""

import logging

from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from base.roles import is_curator
from base.storage import local_copy
from core.images import encode_png, face_crop
from core.media.decode import read_frames
from gallery import services as gallery_services
from gallery.models import GalleryImage, Member
from videos.models import Correction, Detection, Track
from videos.processing import video_info, video_render_request

log = logging.getLogger(__name__)

# Face crops taken from an approved correction's track; a few varied ones are worth more than many.
CROPS_PER_CORRECTION = 3


class CorrectionError(ValueError):
    """The correction cannot be made; the message says why."""


@transaction.atomic
def correction_apply(*, track, user, action: str, member=None, frame=None, undo=None):
    """One action from the review page: name the track (`member`), confirm it, mark it unknown
    or not a face, split it at `frame`, or undo correction `undo`. The labelled MP4 catches up
    in the background. Returns the correction made or undone."""
    if action == "undo":
        correction_undo(correction=undo, user=user)
        reason = "a correction was undone"
        correction = undo
    elif action == "split":
        correction = track_split(track=track, user=user, frame=frame)
        reason = "a correction"
    else:
        correction = track_correct(track=track, user=user, kind=action, member=member)
        reason = "a correction"
    video_render_request(video=track.video, reason=reason)
    return correction


def track_correct(*, track: Track, user, kind: str, member: Member | None = None) -> Correction:
    """Relabel a whole track (confirm, another member, unknown, or not a face)."""
    if kind == Correction.Kind.MEMBER and member is None:
        raise CorrectionError("choose the member this face is")
    if member is not None and member.group_id != track.video.group_id:
        raise CorrectionError(f"{member} is not in {track.video.group}")
    correction = Correction(
        video=track.video,
        track=track,
        user=user,
        kind=kind,
        before_member=track.member,
        before_corrected=track.corrected,
        before_is_face=track.is_face,
    )
    if kind == Correction.Kind.CONFIRM:
        correction.after_member = track.member
    elif kind == Correction.Kind.MEMBER:
        correction.after_member = member
        track.member = member
    elif kind in (Correction.Kind.UNKNOWN, Correction.Kind.NOT_FACE):
        track.member = None
    else:
        raise CorrectionError(f"unknown correction {kind!r}")
    track.is_face = kind != Correction.Kind.NOT_FACE
    track.corrected = True
    track.save(update_fields=["member", "corrected", "is_face"])
    # Curators' own corrections count as approved.
    if is_curator(user):
        correction.review = Correction.Review.APPROVED
        correction.reviewed_by = user
        correction.reviewed = timezone.now()
    correction.save()
    return correction


@transaction.atomic
def track_split(*, track: Track, user, frame: int) -> Correction:
    """Cut a track in two at `frame`; the second part starts unlabelled and uncorrected."""
    if not track.first_frame < frame <= track.last_frame:
        raise CorrectionError(
            f"split inside the track: after frame {track.first_frame}, up to {track.last_frame}"
        )
    number = (Track.objects.filter(video=track.video).order_by("-number").first().number) + 1
    tail = Track.objects.create(
        video=track.video,
        number=number,
        member=None,
        candidate=track.candidate,
        confidence=track.confidence,
        first_frame=frame,
        last_frame=track.last_frame,
        embedding=track.embedding,
        samples=track.samples,
        embedding_model=track.embedding_model,
        sample_boxes=[s for s in track.sample_boxes if s[0] >= frame],
    )
    if track.thumbnail:
        # A copy of its own: each track's strip is deleted with its track.
        with track.thumbnail.open("rb") as strip:
            tail.thumbnail.save("strip.jpg", ContentFile(strip.read()), save=True)
    Detection.objects.filter(track=track, frame__gte=frame).update(track=tail)
    track.last_frame = frame - 1
    track.sample_boxes = [s for s in track.sample_boxes if s[0] < frame]
    track.save(update_fields=["last_frame", "sample_boxes"])
    correction = Correction.objects.create(
        video=track.video,
        track=track,
        user=user,
        kind=Correction.Kind.SPLIT,
        before_member=track.member,
        before_corrected=track.corrected,
        split_frame=frame,
        new_track=tail,
        review=Correction.Review.APPROVED,  # a split changes no label, so there is nothing to vet
    )
    return correction


@transaction.atomic
def correction_undo(*, correction: Correction, user) -> None:
    """Put the track back as it was before `correction`."""
    if correction.undone:
        raise CorrectionError("this correction was already undone")
    track = correction.track
    if correction.kind == Correction.Kind.SPLIT:
        tail = correction.new_track
        if tail is not None:
            Detection.objects.filter(track=tail).update(track=track)
            track.last_frame = max(track.last_frame, tail.last_frame)
            track.sample_boxes = sorted(track.sample_boxes + tail.sample_boxes)
            tail.delete()
            correction.new_track = None  # the database set it to NULL with the delete
    else:
        track.member = correction.before_member
        track.corrected = correction.before_corrected
        track.is_face = correction.before_is_face
    track.save()
    correction.undone = timezone.now()
    correction.save(update_fields=["undone"])


def corrections_approve(*, corrections, by) -> dict[str, int]:
    """Approve corrections and queue a retrain; the training job takes their tracks' faces
    into the gallery first (decoding video frames is no work for a web request)."""
    from recognition.services import training_request

    approved = 0
    groups = set()
    for correction in corrections:
        if correction.review != Correction.Review.PENDING or correction.undone:
            continue
        correction.review = Correction.Review.APPROVED
        correction.reviewed_by = by
        correction.reviewed = timezone.now()
        correction.save(update_fields=["review", "reviewed_by", "reviewed"])
        approved += 1
        if correction.kind in SAMPLE_KINDS:
            groups.add(correction.video.group)
    for group in groups:
        training_request(group=group, reason="approved corrections", requested_by=by)
    return {"approved": approved, "retrains": len(groups)}


# Corrections that say who a track is, so its faces can teach the model.
SAMPLE_KINDS = (Correction.Kind.MEMBER, Correction.Kind.CONFIRM)


def corrections_harvest(*, group) -> int:
    """Add the faces of approved corrections not yet taken into the group's gallery (run by the
    training job before it encodes); returns how many faces were added."""
    waiting = Correction.objects.filter(
        video__group=group,
        review=Correction.Review.APPROVED,
        undone__isnull=True,
        samples_added__isnull=True,
    ).select_related("track__member", "video")
    added = 0
    with gallery_services.flags_refreshed_once():
        for correction in waiting:
            count = correction_add_samples(correction=correction)
            Correction.objects.filter(pk=correction.pk).update(samples_added=count)
            added += count
    return added


def corrections_reject(*, corrections, by) -> int:
    count = 0
    for correction in corrections:
        if correction.review == Correction.Review.PENDING:
            correction.review = Correction.Review.REJECTED
            correction.reviewed_by = by
            correction.reviewed = timezone.now()
            correction.save(update_fields=["review", "reviewed_by", "reviewed"])
            count += 1
    return count


def correction_add_samples(*, correction: Correction) -> int:
    """Crop the corrected track's best faces from the original video into the gallery."""
    track = correction.track
    member = track.member
    if correction.kind not in SAMPLE_KINDS or member is None:
        return 0
    wanted = sorted(track.sample_boxes, key=lambda s: -(s[3] - s[1]) * (s[4] - s[2]))
    wanted = sorted(wanted[:CROPS_PER_CORRECTION])
    if not wanted:
        return 0
    video = track.video
    by_frame = {s[0]: s[1:] for s in wanted}
    added = 0
    with local_copy(video.original) as source:
        info = video_info(video, source)
        frames = read_frames(source, info, start=wanted[0][0], end=wanted[-1][0] + 1)
        for index, frame in frames:
            if index not in by_frame:
                continue
            crop = face_crop(frame, by_frame[index])
            result = gallery_services.image_ingest(
                member=member,
                data=encode_png(crop),
                name=f"{video}-track{track.number}-frame{index}.png",
                source=GalleryImage.Source.CORRECTION,
                approve=True,
            )
            added += result.outcome == "added"
    return added
