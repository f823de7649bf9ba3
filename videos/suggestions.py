"""Suggestions: a change proposed by someone who may see a video but not change it, stored
and not applied until the owner or a curator decides (accepting applies it as their own
correction: videos.corrections.suggestion_accept)."""

from django.db import transaction
from django.utils import timezone

from videos.models import Correction, Suggestion, Track
from videos.selectors import can_edit
from videos.track_edits import CorrectionError, label_after


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
        after = label_after(track, kind, member)
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
    suggestion_decide(suggestion, Suggestion.State.WITHDRAWN, user)


def suggestion_reject(*, suggestion: Suggestion, by) -> None:
    if not can_edit(by, suggestion.video):
        raise CorrectionError("only the owner or a curator can reject a suggestion")
    suggestion_decide(suggestion, Suggestion.State.REJECTED, by)


def suggestion_decide(suggestion: Suggestion, state: str, by) -> None:
    # A conditional update: two people deciding at once cannot both win.
    if not Suggestion.objects.filter(pk=suggestion.pk, state=Suggestion.State.PENDING).update(
        state=state, decided_by=by, decided=timezone.now(), correction=suggestion.correction
    ):
        raise CorrectionError("this suggestion was decided already")
    suggestion.refresh_from_db()
