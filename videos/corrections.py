"""Corrections: a person fixes a track's label; approved fixes become training samples.

The video's owner and curators change a track at once. Anyone else who may see the video
makes a suggestion (videos.models.Suggestion): stored, not applied, until the owner or a
curator accepts it, which applies it as their own correction.
"""

import io
import logging
from dataclasses import dataclass, field

import numpy as np
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Max, Min
from django.utils import timezone
from PIL import Image

from base.roles import is_curator
from base.storage import local_copy
from core.images import encode_jpeg, encode_png, face_crop
from core.media.decode import read_frames
from gallery import services as gallery_services
from gallery.models import GalleryImage, Member
from videos.facts import video_info
from videos.models import Correction, Detection, Suggestion, Track
from videos.rendering import video_render_request
from videos.selectors import can_edit

log = logging.getLogger(__name__)

# Face crops taken from an approved correction's track; a few varied ones are worth more than many.
CROPS_PER_CORRECTION = 3
# Kinds that change a track's label (the others: split).
LABEL_KINDS = (
    Correction.Kind.CONFIRM,
    Correction.Kind.MEMBER,
    Correction.Kind.UNKNOWN,
    Correction.Kind.NOT_FACE,
    Correction.Kind.NOT_MEMBER,
)


class CorrectionError(ValueError):
    """The correction cannot be made; the message says why."""


@dataclass
class Outcome:
    """What one request from the review page did: a correction made or undone, a suggestion
    made or withdrawn, or nothing (the change would change nothing)."""

    correction: Correction | None = None
    suggestion: Suggestion | None = None
    undone: bool = False
    unchanged: str = ""  # why nothing was recorded
    removed: list[int] = field(default_factory=list)  # tracks gone (merged, split undone)
    restored: list[int] = field(default_factory=list)  # tracks back (a merge undone)

    @property
    def summary(self) -> str:
        if self.unchanged:
            return self.unchanged
        return (self.correction or self.suggestion).describe()


def change_request(
    *, track, user, action: str, member=None, frame=None, undo=None, other=None, box=None
) -> Outcome:
    """One action from the review page, by whoever sent it: the owner's and curators' apply
    at once; anyone else's becomes a suggestion for the owner (their `undo` withdraws it)."""
    if can_edit(user, track.video):
        if action == "undo" and isinstance(undo, Suggestion):
            raise CorrectionError("that is a suggestion: accept or reject it instead")
        return correction_apply(
            track=track, user=user, action=action, member=member, frame=frame, undo=undo,
            other=other, box=box,
        )  # fmt: skip
    if action == "merge":
        raise CorrectionError("merging tracks is for the owner or a curator: suggest names")
    if action == Correction.Kind.BOX:
        raise CorrectionError("fixing boxes is for the owner or a curator: suggest names")
    if action == "undo":
        if not isinstance(undo, Suggestion):
            raise CorrectionError("only the owner or a curator can undo a correction")
        suggestion_withdraw(suggestion=undo, user=user)
        return Outcome(suggestion=undo, undone=True)
    suggestion = suggestion_make(track=track, user=user, kind=action, member=member, frame=frame)
    if suggestion is None:
        return Outcome(unchanged=_unchanged_text(track))
    return Outcome(suggestion=suggestion)


@transaction.atomic
def correction_apply(
    *, track, user, action: str, member=None, frame=None, undo=None, other=None, box=None,
    render=True,
) -> Outcome:  # fmt: skip
    """Apply one change to a track now (the caller may: see change_request): name it
    (`member`), confirm it, mark it unknown, not a face or not its member, split it at
    `frame`, set its `box` at `frame`, or undo correction `undo`. The labelled MP4 catches up
    in the background."""
    if action == "undo":
        tail = undo.new_track if undo.kind == Correction.Kind.SPLIT else None
        removed = [tail.number] if tail is not None else []
        correction_undo(correction=undo, user=user)
        outcome = Outcome(correction=undo, undone=True, removed=removed)
        if undo.kind == Correction.Kind.MERGE and undo.new_track is not None:
            outcome.restored = [undo.new_track.number]
        reason = "a correction was undone"
    elif action == "split":
        outcome = Outcome(correction=track_split(track=track, user=user, frame=frame))
        reason = "a track was split"
    elif action == "merge":
        outcome = Outcome(correction=track_merge(track=track, other=other, user=user))
        outcome.removed = [other.number]
        reason = "two tracks were merged"
    elif action == Correction.Kind.BOX:
        correction = track_box(track=track, user=user, frame=frame, box=box)
        if correction is None:
            there = "that box is already" if box else "there is no box"
            return Outcome(unchanged=f"{there} at frame {frame}: nothing to change")
        outcome = Outcome(correction=correction)
        reason = "a box was fixed"
    else:
        correction = track_correct(track=track, user=user, kind=action, member=member)
        if correction is None:
            return Outcome(unchanged=_unchanged_text(track))
        outcome = Outcome(correction=correction)
        reason = "a correction"
    if render:
        video_render_request(video=track.video, reason=reason)
    return outcome


def _unchanged_text(track: Track) -> str:
    label = "not a face" if not track.is_face else (track.member.name if track.member else None)
    return f"it is already {label or 'unknown'}: nothing to change"


def _label_after(track: Track, kind: str, member: Member | None):
    """(member, is_face) the track has after a label change of `kind`, or None when the change
    would change nothing a person said before (so it is not recorded)."""
    if kind not in LABEL_KINDS:
        raise CorrectionError(f"unknown correction {kind!r}")
    if kind == Correction.Kind.MEMBER and member is None:
        raise CorrectionError("choose the member this face is")
    if member is not None and member.group_id != track.video.group_id:
        raise CorrectionError(f"{member} is not in {track.video.group}")
    if kind == Correction.Kind.NOT_MEMBER and track.member is None:
        raise CorrectionError("the track names no member to say it is not")
    after = {
        Correction.Kind.CONFIRM: (track.member, True),
        Correction.Kind.MEMBER: (member, True),
        Correction.Kind.UNKNOWN: (None, True),
        Correction.Kind.NOT_FACE: (None, False),
        Correction.Kind.NOT_MEMBER: (None, True),
    }[kind]
    same = after == (track.member, track.is_face)
    if kind == Correction.Kind.NOT_MEMBER or not same:
        return after
    if track.corrected or track.member is None:
        # Said before (or unknown stays unknown): nothing new. A model-named member named
        # again is a confirmation, which is news.
        return None
    return after


def track_correct(
    *, track: Track, user, kind: str, member: Member | None = None
) -> Correction | None:
    """Relabel a whole track (confirm, another member, unknown, not a face, or not the member
    it is named); None when that changes nothing."""
    after = _label_after(track, kind, member)
    if after is None:
        return None
    if kind == Correction.Kind.MEMBER and after[0] == track.member:
        kind = Correction.Kind.CONFIRM  # naming a model's name is confirming it
    correction = Correction(
        video=track.video,
        track=track,
        user=user,
        kind=kind,
        before_member=track.member,
        before_corrected=track.corrected,
        before_is_face=track.is_face,
        after_member=after[0],
    )
    if track.member is not None and after[0] != track.member:
        # "Not her" is data: no model decision names this track her again.
        track.not_members.add(track.member)
    track.member, track.is_face = after
    # "Not this member" leaves the name open: the next relabel picks the next best, or unknown.
    track.corrected = kind != Correction.Kind.NOT_MEMBER
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
    """Cut a track in two at `frame`. The second part keeps the label, confidence and
    negatives, and takes the samples (and their faces in the strip) from its own frames."""
    if not track.first_frame < frame <= track.last_frame:
        raise CorrectionError(
            f"split inside the track: after frame {track.first_frame}, up to {track.last_frame}"
        )
    number = (Track.objects.filter(video=track.video).order_by("-number").first().number) + 1
    head_at = [k for k, s in enumerate(track.sample_boxes) if s[0] < frame]
    tail_at = [k for k, s in enumerate(track.sample_boxes) if s[0] >= frame]
    vectors = track.sample_vectors()
    tail = Track.objects.create(
        video=track.video,
        number=number,
        member=track.member,
        candidate=track.candidate,
        confidence=track.confidence,
        corrected=track.corrected,
        is_face=track.is_face,
        first_frame=frame,
        last_frame=track.last_frame,
        embedding_model=track.embedding_model,
        **_samples_of(vectors, track.sample_boxes, tail_at),
    )
    tail.not_members.set(track.not_members.all())
    if track.thumbnail:
        # A strip of its own (deleted with its track), of its own faces where they are known.
        tail.thumbnail.save("strip.jpg", ContentFile(_strip_part(track, tail_at)), save=True)
        if head_at and tail_at:
            track.thumbnail.save("strip.jpg", ContentFile(_strip_part(track, head_at)), save=False)
    Detection.objects.filter(track=track, frame__gte=frame).update(track=tail)
    track.last_frame = frame - 1
    for name, value in _samples_of(vectors, track.sample_boxes, head_at).items():
        setattr(track, name, value)
    track.save()
    return _label_kept(track, user, Correction.Kind.SPLIT, split_frame=frame, new_track=tail)


def _samples_of(vectors: np.ndarray, boxes: list, keep: list[int]) -> dict:
    """The fields of a part of a track that keeps samples `keep`; a part with no sample of
    its own keeps them all (something to name it by) but no boxes to crop faces from."""
    if len(vectors) != len(boxes) or not keep:
        chosen, kept_boxes = vectors, [boxes[k] for k in keep] if len(vectors) == len(boxes) else []
    else:
        chosen, kept_boxes = vectors[keep], [boxes[k] for k in keep]
    chosen = np.ascontiguousarray(chosen, dtype=np.float32)
    mean = chosen.mean(axis=0) if len(chosen) else np.zeros(vectors.shape[1], np.float32)
    return {
        "samples": chosen.tobytes(),
        "embedding": mean.astype(np.float32).tobytes(),
        "sample_boxes": kept_boxes,
    }


def _strip_part(track: Track, keep: list[int]) -> bytes:
    """The track's strip cut to the faces of samples `keep` (one square slot per sample, in
    sample order); the whole strip when it does not have that layout."""
    with track.thumbnail.open("rb") as handle:
        data = handle.read()
    picture = Image.open(io.BytesIO(data)).convert("RGB")
    side = picture.height
    if (
        not keep
        or picture.width < side * len(track.sample_boxes)
        or max(keep) >= picture.width // side
    ):
        return data
    pixels = np.asarray(picture)
    slots = [pixels[:, k * side : (k + 1) * side] for k in keep]
    return encode_jpeg(np.concatenate(slots, axis=1), quality=88)


def _join_strips(head: Track, tail: Track) -> bytes | None:
    """Head's strip then tail's, as one (undoing a split puts the faces back together)."""
    if not head.thumbnail or not tail.thumbnail:
        return None
    parts = []
    for track in (head, tail):
        with track.thumbnail.open("rb") as handle:
            parts.append(np.asarray(Image.open(handle).convert("RGB")))
    if parts[0].shape[0] != parts[1].shape[0]:
        return None
    return encode_jpeg(np.concatenate(parts, axis=1), quality=88)


@transaction.atomic
def correction_undo(*, correction: Correction, user) -> None:
    """Put the track back as it was before `correction`. It leaves the curators' queue: an
    undone change is nothing to review."""
    if correction.undone:
        raise CorrectionError("this correction was already undone")
    track = correction.track
    later = track.corrections.filter(undone__isnull=True, created__gt=correction.created)
    if later.exclude(pk=correction.pk).exists():
        raise CorrectionError("the track was changed again since: undo that first")
    if track.merged_into_id is not None:
        raise CorrectionError(
            f"the track was merged into track {track.merged_into.number}: undo that first"
        )
    if correction.kind == Correction.Kind.BOX:
        _set_box(track, correction.box_frame, correction.before_box)
    elif correction.kind == Correction.Kind.MERGE:
        _unmerge(track, correction.new_track)
    elif correction.kind == Correction.Kind.SPLIT:
        tail = correction.new_track
        if tail is not None:
            if tail.corrections.filter(undone__isnull=True).exists():
                raise CorrectionError("the split-off track was changed since: undo that first")
            if tail.suggestions.filter(state=Suggestion.State.PENDING).exists():
                raise CorrectionError("the split-off track has a suggestion: decide it first")
            _unsplit(track, tail)
            correction.new_track = None  # the database set it to NULL with the delete
    else:
        track.member = correction.before_member
        track.corrected = correction.before_corrected
        track.is_face = correction.before_is_face
        before = correction.before_member
        if before is not None and not _still_said_not(track, before, correction):
            track.not_members.remove(before)
    track.save()
    correction.undone = timezone.now()
    fields = ["undone"]
    if correction.samples_added is None:
        correction.review = Correction.Review.UNDONE
        fields.append("review")
    correction.save(update_fields=fields)


def _still_said_not(track: Track, member: Member, undoing: Correction) -> bool:
    """Whether another live correction of the track says it is not `member`."""
    others = track.corrections.filter(undone__isnull=True, before_member=member)
    others = others.exclude(pk=undoing.pk).exclude(kind=Correction.Kind.SPLIT)
    return others.exclude(after_member=member).exists()


def _unsplit(track: Track, tail: Track) -> None:
    joined = _join_strips(track, tail)
    Detection.objects.filter(track=tail).update(track=track)
    track.last_frame = max(track.last_frame, tail.last_frame)
    # Samples and their boxes stay in step (the head's first, as the strips are joined).
    vectors = np.concatenate([track.sample_vectors(), tail.sample_vectors()])
    if len(track.sample_boxes) == len(track.sample_vectors()) and tail.sample_boxes:
        track.samples = np.ascontiguousarray(vectors, dtype=np.float32).tobytes()
        track.embedding = vectors.mean(axis=0).astype(np.float32).tobytes()
        track.sample_boxes = track.sample_boxes + tail.sample_boxes
    if joined is not None:
        track.thumbnail.save("strip.jpg", ContentFile(joined), save=False)
    tail.delete()


@transaction.atomic
def track_merge(*, track: Track, other: Track, user) -> Correction:
    """Join `other` into `track`: one person the tracker lost and found again. Both must name
    the same member (or both nobody) and never be on screen at once. Undoable: `other` is
    kept, empty, until then."""
    if other is None or other.pk == track.pk or other.video_id != track.video_id:
        raise CorrectionError("choose another track of this video to merge with")
    if other.merged_into_id is not None:
        raise CorrectionError(f"track {other.number} was merged already")
    if (track.member_id, track.is_face) != (other.member_id, other.is_face):
        raise CorrectionError(
            f"track {track.number} and track {other.number} name different people: "
            "name them the same first"
        )
    if track.first_frame <= other.last_frame and other.first_frame <= track.last_frame:
        raise CorrectionError(
            f"track {track.number} and track {other.number} are on screen at the same time, "
            "so they are two faces"
        )
    correction = _label_kept(track, user, Correction.Kind.MERGE, new_track=other)
    joined = _join_strips(track, other)
    Detection.objects.filter(track=other).update(track=track)
    vectors = np.concatenate([track.sample_vectors(), other.sample_vectors()])
    track.samples = np.ascontiguousarray(vectors, dtype=np.float32).tobytes()
    track.embedding = vectors.mean(axis=0).astype(np.float32).tobytes()
    track.sample_boxes = track.sample_boxes + other.sample_boxes
    track.first_frame = min(track.first_frame, other.first_frame)
    track.last_frame = max(track.last_frame, other.last_frame)
    track.corrected = track.corrected or other.corrected
    if joined is not None:
        track.thumbnail.save("strip.jpg", ContentFile(joined), save=False)
    track.save()
    track.not_members.add(*other.not_members.all())
    other.merged_into = track
    other.save(update_fields=["merged_into"])
    return correction


def _unmerge(track: Track, other: Track | None) -> None:
    """Give `other` its boxes and samples back (they are the ones in its frames)."""
    if other is None:
        raise CorrectionError("the merged track is gone: this merge cannot be undone")
    span = (other.first_frame, other.last_frame)
    Detection.objects.filter(track=track, frame__gte=span[0], frame__lte=span[1]).update(
        track=other
    )
    own = [k for k, s in enumerate(track.sample_boxes) if not span[0] <= s[0] <= span[1]]
    vectors = track.sample_vectors()
    if track.thumbnail:
        track.thumbnail.save("strip.jpg", ContentFile(_strip_part(track, own)), save=False)
    for name, value in _samples_of(vectors, track.sample_boxes, own).items():
        setattr(track, name, value)
    frames = track.detections.exclude(frame__gte=span[0], frame__lte=span[1]).aggregate(
        first=Min("frame"), last=Max("frame")
    )
    track.first_frame, track.last_frame = frames["first"], frames["last"]
    other.merged_into = None
    other.save(update_fields=["merged_into"])


@transaction.atomic
def track_box(*, track: Track, user, frame: int, box: list[int] | None) -> Correction | None:
    """Fix the track's box in one frame where the tracker went wrong: move or resize it, draw
    it where the tracker lost the face, or remove it (`box` None) where it followed something
    else. None when that changes nothing."""
    video = track.video
    if track.merged_into_id is not None:
        raise CorrectionError(f"track {track.number} was merged into another track")
    if not track.is_face:
        raise CorrectionError(f"track {track.number} is not a face: it has no boxes to fix")
    if not video.frames or not video.width or not video.height:
        raise CorrectionError("the video's size and length are not known yet: process it first")
    if not 0 <= frame < video.frames:
        raise CorrectionError(f"the frame must be inside the video: 0 to {video.frames - 1}")
    if box is not None:
        _check_box(video, box)
    here = track.detections.filter(frame=frame).first()
    before = here.box() if here else None
    if before == box:
        return None
    if box is None and not track.detections.exclude(frame=frame).exists():
        raise CorrectionError("this is the track's only box: mark the track not a face instead")
    correction = _label_kept(
        track, user, Correction.Kind.BOX, box_frame=frame, before_box=before, after_box=box
    )
    _set_box(track, frame, box)
    track.save(update_fields=["first_frame", "last_frame"])
    return correction


def _check_box(video, box: list[int]) -> None:
    left, top, right, bottom = box
    if not (right > left and bottom > top):
        raise CorrectionError("the box is empty: right must be past left, and bottom below top")
    if not (0 <= left and right <= video.width and 0 <= top and bottom <= video.height):
        raise CorrectionError(f"the box must lie inside the {video.width}×{video.height} picture")


def _set_box(track: Track, frame: int, box: list[int] | None) -> None:
    """Make `box` the track's box at `frame` (None: no box there), and its first and last
    frame those of its boxes again (a box added or removed at an end moves them)."""
    if box is None:
        track.detections.filter(frame=frame).delete()
    else:
        left, top, right, bottom = box
        Detection.objects.update_or_create(
            track=track,
            frame=frame,
            defaults={
                "video_id": track.video_id,
                "time": track.video.clock().time(frame),  # as the analysis stores it
                "left": left,
                "top": top,
                "right": right,
                "bottom": bottom,
            },
        )
    span = track.detections.aggregate(first=Min("frame"), last=Max("frame"))
    track.first_frame, track.last_frame = span["first"], span["last"]


# --- suggestions --------------------------------------------------------------------------


@transaction.atomic
def suggestion_make(*, track: Track, user, kind: str, member=None, frame=None):
    """Store a change someone who may not make it proposes; nothing is applied. One pending
    suggestion per person and track: a new one replaces theirs. None when it would change
    nothing."""
    if not user.is_authenticated:
        raise CorrectionError("sign in to suggest a change")
    if kind == Correction.Kind.SPLIT:
        if frame is None or not track.first_frame < frame <= track.last_frame:
            raise CorrectionError(
                f"split inside the track: after frame {track.first_frame}, up to {track.last_frame}"
            )
    else:
        after = _label_after(track, kind, member)
        if after is None:
            return None
    track.suggestions.filter(user=user, state=Suggestion.State.PENDING).update(
        state=Suggestion.State.WITHDRAWN, decided=timezone.now(), decided_by=user
    )
    return Suggestion.objects.create(
        video=track.video,
        track=track,
        user=user,
        kind=kind,
        before_member=track.member,
        member=member if kind == Correction.Kind.MEMBER else None,
        split_frame=frame if kind == Correction.Kind.SPLIT else None,
    )


def suggestion_withdraw(*, suggestion: Suggestion, user) -> None:
    """The suggester takes a pending suggestion back (their undo)."""
    if suggestion.user_id != user.pk:
        raise CorrectionError("only the person who made a suggestion can take it back")
    _decide(suggestion, Suggestion.State.WITHDRAWN, user)


@transaction.atomic
def suggestion_accept(*, suggestion: Suggestion, by) -> Outcome:
    """Apply a suggestion exactly as a correction by `by` (the owner or a curator) would be;
    the suggestion keeps who proposed it, the correction who accepted it."""
    if not can_edit(by, suggestion.video):
        raise CorrectionError("only the owner or a curator can accept a suggestion")
    if suggestion.state != Suggestion.State.PENDING:
        raise CorrectionError(f"this suggestion was {suggestion.state} already")
    track = suggestion.track
    if suggestion.kind != Correction.Kind.SPLIT and track.member != suggestion.before_member:
        raise CorrectionError(
            f"the track is {track.member or 'unknown'} now, not {suggestion.before_member or 'unknown'}"
            " as when this was suggested: reject it and change the track yourself"
        )
    action = "member" if suggestion.kind == Correction.Kind.MEMBER else suggestion.kind
    outcome = correction_apply(
        track=track,
        user=by,
        action=action,
        member=suggestion.member,
        frame=suggestion.split_frame,
    )
    suggestion.correction = outcome.correction
    _decide(suggestion, Suggestion.State.ACCEPTED, by)
    outcome.suggestion = suggestion
    return outcome


def suggestion_reject(*, suggestion: Suggestion, by) -> None:
    if not can_edit(by, suggestion.video):
        raise CorrectionError("only the owner or a curator can reject a suggestion")
    _decide(suggestion, Suggestion.State.REJECTED, by)


def _decide(suggestion: Suggestion, state: str, by) -> None:
    # A conditional update: two people deciding at once cannot both win.
    if not Suggestion.objects.filter(pk=suggestion.pk, state=Suggestion.State.PENDING).update(
        state=state, decided_by=by, decided=timezone.now(), correction=suggestion.correction
    ):
        raise CorrectionError("this suggestion was decided already")
    suggestion.refresh_from_db()


# --- curators' review and training samples ----------------------------------------------


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
    training job before it encodes); returns how many faces were added. They are approved
    unless the flags (refreshed once, at the end) call them duplicates."""
    waiting = Correction.objects.filter(
        video__group=group,
        review=Correction.Review.APPROVED,
        undone__isnull=True,
        samples_added__isnull=True,
    ).select_related("track__member", "video")
    added: list[GalleryImage] = []
    with gallery_services.flags_refreshed_once():
        for correction in waiting:
            images = correction_add_samples(correction=correction)
            Correction.objects.filter(pk=correction.pk).update(samples_added=len(images))
            added += images
    gallery_services.images_approve_unless_duplicate(images=added)
    return len(added)


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


def correction_add_samples(*, correction: Correction) -> list[GalleryImage]:
    """Crop the corrected track's best faces from the original video into the gallery, as
    pending images (corrections_harvest approves those no flag holds back)."""
    track = correction.track
    member = track.member
    if correction.kind not in SAMPLE_KINDS or member is None:
        return []
    wanted = sorted(crop_boxes(track), key=lambda s: -(s[3] - s[1]) * (s[4] - s[2]))
    wanted = sorted(wanted[:CROPS_PER_CORRECTION])
    if not wanted:
        return []
    video = track.video
    by_frame = {s[0]: s[1:] for s in wanted}
    added = []
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
            )
            if result.outcome == "added":
                added.append(result.image)
    return added


def crop_boxes(track: Track) -> list[list[int]]:
    """The track's sample boxes, [frame, l, t, r, b], as people left them: its box now in each
    sample's frame (the analysis took the samples from those very boxes), so a box fixed since
    is cropped as fixed, and a frame whose box was removed (the tracker had followed someone
    else there) gives no face."""
    frames = [frame for frame, *_ in track.sample_boxes]
    now = {d.frame: d.box() for d in track.detections.filter(frame__in=frames)}
    return [[frame, *now[frame]] for frame in frames if frame in now]


def _label_kept(track: Track, user, kind: str, **details) -> Correction:
    """Record a change that keeps the track's label (a split, a merge, a box): approved as it
    is made, since no label changes and there is nothing to vet."""
    return Correction.objects.create(
        video=track.video,
        track=track,
        user=user,
        kind=kind,
        before_member=track.member,
        after_member=track.member,
        before_corrected=track.corrected,
        before_is_face=track.is_face,
        review=Correction.Review.APPROVED,
        **details,
    )
