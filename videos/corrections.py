"""Corrections: a person fixes a track; approved fixes become training samples
(videos.harvest).

The video's owner and curators change a track at once. Anyone else who may see the video
makes a suggestion (videos.suggestions): stored, not applied, until the owner or a curator
accepts it, which applies it as their own correction.

Every action of the review page is a row of one table, ACTIONS: what its request carries,
what it does, and what it is when someone who may not change the video asks for it.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from base.api import BadRequest, whole_number
from base.roles import is_curator
from gallery import services as gallery_services
from gallery.models import GalleryImage, Member
from videos.harvest import SAMPLE_KINDS, group_harvest_request
from videos.models import Correction, Suggestion, Track, Video
from videos.rendering import video_render_request
from videos.selectors import can_edit
from videos.suggestions import (
    suggestion_decide,
    suggestion_make,
    suggestion_withdraw,
)
from videos.track_edits import (
    CorrectionError,
    box_set,
    label_after,
    track_box,
    track_merge,
    track_split,
    track_unmerge,
    track_unsplit,
    unchanged_text,
)

log = logging.getLogger(__name__)


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


# --- the review page's actions ----------------------------------------------------------------


@dataclass(frozen=True)
class Action:
    """One thing the review page asks for on a track.

    `read(video, body)` turns the request's JSON into the keyword arguments of `apply` and
    `others` (BadRequest or CorrectionError say what is missing). `apply(track, user, kind,
    **arguments)` makes the change, for the owner or a curator. `others` is what anyone else's
    request becomes: a function like apply (a suggestion), or the reason they may not."""

    read: Callable[[Video, dict], dict]
    apply: Callable[..., "Outcome"]
    others: Callable[..., "Outcome"] | str
    reason: str  # why the labelled MP4 is drawn again


def _read_nothing(video: Video, body: dict) -> dict:
    return {}


def _read_member(video: Video, body: dict) -> dict:
    number = whole_number(body, "member")
    member = video.group.members.filter(pk=number).first()
    if member is None:
        raise BadRequest(f"{video.group} has no member {number}")
    return {"member": member}


def _read_frame(video: Video, body: dict) -> dict:
    return {"frame": whole_number(body, "frame")}


def _read_other(video: Video, body: dict) -> dict:
    number = whole_number(body, "other")
    other = video.tracks.filter(number=number, merged_into__isnull=True).first()
    if other is None:
        raise BadRequest(f"this video has no track {number} to merge with")
    return {"other": other}


def _read_box(video: Video, body: dict) -> dict:
    """A box fix: the frame, and [left, top, right, bottom] in whole pixels of the picture,
    or null to remove the track's box at that frame."""
    frame = whole_number(body, "frame")
    if "box" not in body:
        raise BadRequest("box is missing: [left, top, right, bottom], or null to remove it")
    box = body["box"]
    if box is not None:
        if not isinstance(box, list) or len(box) != 4:
            raise BadRequest("box must be [left, top, right, bottom], or null to remove it")
        box = [whole_number({"box values": value}, "box values") for value in box]
    return {"frame": frame, "box": box}


def _read_undone(video: Video, body: dict) -> dict:
    """What to undo: a correction, or (someone who suggested) their own suggestion."""
    if "suggestion" in body:
        number = whole_number(body, "suggestion")
        undo = video.suggestions.filter(pk=number).first()
        if undo is None:
            raise BadRequest(f"this video has no suggestion {number}")
    else:
        number = whole_number(body, "correction")
        undo = video.corrections.filter(pk=number).first()
        if undo is None:
            raise BadRequest(f"this video has no correction {number}")
    return {"undo": undo}


def _relabel(*, track, user, kind, member=None) -> "Outcome":
    correction = track_correct(track=track, user=user, kind=kind, member=member)
    if correction is None:
        return Outcome(unchanged=unchanged_text(track))
    return Outcome(correction=correction)


def _split(*, track, user, kind, frame) -> "Outcome":
    return Outcome(correction=track_split(track=track, user=user, frame=frame))


def _merge(*, track, user, kind, other) -> "Outcome":
    return Outcome(
        correction=track_merge(track=track, other=other, user=user), removed=[other.number]
    )


def _box(*, track, user, kind, frame, box) -> "Outcome":
    correction = track_box(track=track, user=user, frame=frame, box=box)
    if correction is None:
        there = "that box is already" if box else "there is no box"
        return Outcome(unchanged=f"{there} at frame {frame}: nothing to change")
    return Outcome(correction=correction)


def _undo(*, track, user, kind, undo) -> "Outcome":
    if isinstance(undo, Suggestion):
        raise CorrectionError("that is a suggestion: accept or reject it instead")
    tail = undo.new_track if undo.kind == Correction.Kind.SPLIT else None
    removed = [tail.number] if tail is not None else []
    correction_undo(correction=undo, user=user)
    outcome = Outcome(correction=undo, undone=True, removed=removed)
    if undo.kind == Correction.Kind.MERGE and undo.new_track is not None:
        outcome.restored = [undo.new_track.number]
    return outcome


def _suggest(*, track, user, kind, member=None, frame=None) -> "Outcome":
    suggestion = suggestion_make(track=track, user=user, kind=kind, member=member, frame=frame)
    if suggestion is None:
        return Outcome(unchanged=unchanged_text(track))
    return Outcome(suggestion=suggestion)


def _withdraw(*, track, user, kind, undo) -> "Outcome":
    if not isinstance(undo, Suggestion):
        raise CorrectionError("only the owner or a curator can undo a correction")
    suggestion_withdraw(suggestion=undo, user=user)
    return Outcome(suggestion=undo, undone=True)


_LABEL = Action(_read_nothing, _relabel, _suggest, "a correction")
ACTIONS: dict[str, Action] = {
    Correction.Kind.CONFIRM: _LABEL,
    Correction.Kind.MEMBER: Action(_read_member, _relabel, _suggest, "a correction"),
    Correction.Kind.UNKNOWN: _LABEL,
    Correction.Kind.NOT_FACE: _LABEL,
    Correction.Kind.NOT_MEMBER: _LABEL,
    Correction.Kind.SPLIT: Action(_read_frame, _split, _suggest, "a track was split"),
    Correction.Kind.MERGE: Action(
        _read_other,
        _merge,
        "merging tracks is for the owner or a curator: suggest names",
        "two tracks were merged",
    ),
    Correction.Kind.BOX: Action(
        _read_box,
        _box,
        "fixing boxes is for the owner or a curator: suggest names",
        "a box was fixed",
    ),
    "undo": Action(_read_undone, _undo, _withdraw, "a correction was undone"),
}


def change_request(*, track, user, action: str, **arguments) -> "Outcome":
    """One action from the review page (ACTIONS), by whoever sent it: the owner's and
    curators' apply at once; anyone else's becomes a suggestion for the owner (their undo
    withdraws it), or is refused with the reason."""
    if can_edit(user, track.video):
        return correction_apply(track=track, user=user, action=action, **arguments)
    others = ACTIONS[action].others
    if isinstance(others, str):
        raise CorrectionError(others)
    return others(track=track, user=user, kind=action, **arguments)


@transaction.atomic
def correction_apply(*, track, user, action: str, render: bool = True, **arguments) -> "Outcome":
    """Apply one action (ACTIONS) to a track now; the caller may (see change_request). The
    labelled MP4 catches up in the background unless `render` is off."""
    act = ACTIONS.get(action)
    if act is None:
        raise CorrectionError(f"unknown correction {action!r}")
    outcome = act.apply(track=track, user=user, kind=action, **arguments)
    if render and not outcome.unchanged:
        video_render_request(video=track.video, reason=act.reason)
    return outcome


def track_correct(
    *, track: Track, user, kind: str, member: Member | None = None
) -> Correction | None:
    """Relabel a whole track (confirm, another member, unknown, not a face, or not the member
    it is named); None when that changes nothing."""
    after = label_after(track, kind, member)
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
    # Curators' own corrections count as approved: their faces go to the gallery at once.
    if is_curator(user):
        correction.review = Correction.Review.APPROVED
        correction.reviewed_by = user
        correction.reviewed = timezone.now()
        if kind in SAMPLE_KINDS:
            group_harvest_request(group=track.video.group, train=False, reason="a curator", by=user)
    correction.save()
    return correction


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
        box_set(track, correction.box_frame, correction.before_box)
    elif correction.kind == Correction.Kind.MERGE:
        track_unmerge(track, correction.new_track)
    elif correction.kind == Correction.Kind.SPLIT:
        tail = correction.new_track
        if tail is not None:
            if tail.corrections.filter(undone__isnull=True).exists():
                raise CorrectionError("the split-off track was changed since: undo that first")
            if tail.suggestions.filter(state=Suggestion.State.PENDING).exists():
                raise CorrectionError("the split-off track has a suggestion: decide it first")
            track_unsplit(track, tail)
            correction.new_track = None  # the database set it to NULL with the delete
    else:
        track.member = correction.before_member
        track.corrected = correction.before_corrected
        track.is_face = correction.before_is_face
        before = correction.before_member
        if before is not None and not _still_said_not(track, before, correction):
            track.not_members.remove(before)
    track.save()
    if correction.sample_images:
        # Its faces went to the gallery: they are no longer what a person says.
        images = GalleryImage.objects.filter(pk__in=correction.sample_images)
        gallery_services.images_reject(images=list(images), reason="its correction was undone")
    correction.undone = timezone.now()
    correction.review = Correction.Review.UNDONE  # nothing to review, nothing to learn from
    correction.save(update_fields=["undone", "review"])


def _still_said_not(track: Track, member: Member, undoing: Correction) -> bool:
    """Whether another live correction of the track says it is not `member`."""
    others = track.corrections.filter(undone__isnull=True, before_member=member)
    others = others.exclude(pk=undoing.pk).exclude(kind=Correction.Kind.SPLIT)
    return others.exclude(after_member=member).exists()


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
    if suggestion.kind == Correction.Kind.SPLIT:
        arguments = {"frame": suggestion.split_frame}
    else:
        arguments = {"member": suggestion.member}
    outcome = correction_apply(track=track, user=by, action=suggestion.kind, **arguments)
    suggestion.correction = outcome.correction
    suggestion_decide(suggestion, Suggestion.State.ACCEPTED, by)
    outcome.suggestion = suggestion
    return outcome
