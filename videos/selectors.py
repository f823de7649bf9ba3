"""Reads for video pages: who may see what, and what is on screen when."""

from collections import defaultdict

from django.db.models import Count, Max, Min, Q
from django.http import Http404

from base.roles import is_curator
from core.media.probe import browsers_cannot_play
from videos.models import Detection, Suggestion, Video


def videos_visible_to(user, *, everyone: bool = False):
    """The videos on a person's list (their own; everyone's for a curator who asks), each
    with how many suggestions wait for a decision."""
    if everyone and is_curator(user):
        videos = Video.objects.all()
    elif not user.is_authenticated:
        return Video.objects.none()
    else:
        videos = Video.objects.filter(owner=user)
    pending = Q(suggestions__state=Suggestion.State.PENDING)
    # A list never needs the probe facts, which hold every frame's time when the rate varies.
    videos = videos.defer("probe_facts")
    return videos.annotate(pending_suggestions=Count("suggestions", filter=pending))


def suggestions_shown(user, video: Video):
    """Pending suggestions on the review page: all of them to those who decide them (the
    owner, curators), a person's own to anyone else."""
    pending = video.suggestions.filter(state=Suggestion.State.PENDING)
    pending = pending.select_related("track", "user", "member", "before_member")
    if can_edit(user, video):
        return pending
    if not user.is_authenticated:
        return pending.none()
    return pending.filter(user=user)


def video_for_viewer(user, uuid) -> Video:
    """The video if `user` may watch it: its owner, a curator, or anyone when public by link."""
    video = (
        Video.objects.select_related("group", "owner", "model_version").filter(uuid=uuid).first()
    )
    if video is None or not (video.is_public or can_edit(user, video)):
        raise Http404("No such video")  # the same answer whether it exists or not
    return video


def can_edit(user, video: Video) -> bool:
    return bool(user.is_authenticated and (video.owner_id == user.pk or is_curator(user)))


def can_download_original(user, video: Video) -> bool:
    """The original file (which may say where it was filmed): its owner and curators, or
    anyone who can watch when the owner allows it."""
    return video.allow_original_download or can_edit(user, video)


def sharing_words(user, video: Video) -> str:
    """Who can watch a video and download its original, as its owner (or a curator) reads it."""
    who = "you and the curators" if user.pk == video.owner_id else "its owner and the curators"
    if not video.is_public:
        return f"only {who} can watch it"
    if video.allow_original_download:
        return "anyone with the link can watch it and download the original"
    return f"anyone with the link can watch it; only {who} can download the original"


def can_delete(user, video: Video) -> bool:
    """Its owner, or staff allowed to delete videos."""
    return bool(
        user.is_authenticated
        and (video.owner_id == user.pk or user.has_perm("videos.delete_video"))
    )


def screen_time(video: Video) -> list[dict]:
    """Seconds and share of the video each member is on screen, most first: each frame
    counts for as long as it is shown (frames of a variable-rate video differ)."""
    clock = video.clock()
    people: dict[str, dict] = {}
    frames = defaultdict(set)
    for slug, name, color, frame in (
        Detection.objects.filter(video=video, track__member__isnull=False, track__is_face=True)
        .values_list("track__member__slug", "track__member__name", "track__member__color", "frame")
        .iterator(chunk_size=5000)
    ):
        people.setdefault(slug, {"slug": slug, "name": name, "color": color})
        frames[slug].add(frame)
    total = max(clock.end - clock.first, 1e-6)
    shown = []
    for slug, person in people.items():
        seconds = clock.seconds(frames[slug])
        shown.append({**person, "seconds": round(seconds, 1), "share": min(1.0, seconds / total)})
    return sorted(shown, key=lambda person: (-person["seconds"], person["name"]))


def timeline(video: Video) -> dict[str, list[dict]]:
    """For each member slug, the stretches they are on screen: start second on the player's
    clock, left and width in % of the player's duration."""
    clock = video.clock()
    frames = defaultdict(set)
    for slug, frame in (
        Detection.objects.filter(video=video, track__member__isnull=False, track__is_face=True)
        .values_list("track__member__slug", "frame")
        .iterator(chunk_size=5000)
    ):
        frames[slug].add(frame)
    length = timeline_length(video)
    return {
        slug: [
            {"start": a, "left": 100 * a / length, "width": 100 * (b - a) / length}
            for a, b in clock.runs(present)
        ]
        for slug, present in frames.items()
    }


def timeline_length(video: Video) -> float:
    """Seconds the timeline spans, from 0 on the player's clock to the end of the video or of
    its sound, whichever is later."""
    return max(video.duration or 0.0, video.clock().end, 1e-6)


def player_source(video: Video, user=None) -> tuple[str | None, str]:
    """Which file boxes are drawn live over ("original", or "preview": the copy browsers play,
    on the same clock), or None and why browsers cannot play the original.

    Someone who may not download the original gets the labelled video, which they may: playing
    a file in a browser is downloading it. It is on the original's clock, so the live boxes
    land on the drawn ones, and corrections made since it was drawn show at once."""
    if user is not None and not can_download_original(user, video):
        return "labelled", ""
    info = video.info()
    reason = browsers_cannot_play(info) if info is not None else None
    if reason is None:
        return "original", ""
    if video.preview:
        return "preview", ""
    return None, reason


def tracks_for_review(video: Video):
    """Tracks, least confident first, with their extent."""
    return (
        video.tracks.filter(merged_into__isnull=True)
        .select_related("member", "candidate")
        .annotate(
            boxes=Count("detections"), first=Min("detections__frame"), last=Max("detections__frame")
        )
        .order_by("confidence", "number")
    )


TICK_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)


def time_ticks(duration: float | None, *, most: int = 6) -> list[dict]:
    """Marks for the timeline's time axis: at most `most` + 1 round times, each with its place
    in % of the video and its label ("0:30")."""
    if not duration or duration <= 0:
        return []
    step = next((s for s in TICK_STEPS if duration / s <= most), TICK_STEPS[-1])
    ticks, at = [], 0
    while at <= duration + 1e-6:
        minutes, seconds = divmod(at, 60)
        hours, minutes = divmod(minutes, 60)
        label = f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"
        ticks.append({"left": 100 * at / duration, "label": label})
        at += step
    return ticks
