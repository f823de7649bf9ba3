"""Reads across a viewer's whole library: every moment a member is on screen, who she shares
the screen with, and the stretches two or more members are on screen together.

Read from stored tracks (their first and last frame) and each video's clock, never from a
video file or its per-frame boxes: a track covers every frame from its first to its last, so
only tracks whose boxes a person changed since (a merge, a box moved, drawn or removed, the
tail of a split) are read from their detections, as runs of consecutive frames.
"""

from __future__ import annotations

import dataclasses
import threading
from array import array
from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from django.db import connection
from django.db.models import Count, Max

from base.roles import is_curator
from core.media import stretches
from core.media.clock import Clock
from core.media.stretches import Range
from gallery.models import Member
from videos.models import Correction, Detection, Fancam, Track, Video

# Moments less than this far apart are listed as one: a face turned away or lost by the
# tracker for a few frames is still the same moment to a fan. Screen time counts only the
# frames she is on screen.
MOMENT_GAP = 1.0

# Corrections after which a track may no longer cover every frame from its first to its last.
BOX_EDITS = (Correction.Kind.MERGE, Correction.Kind.BOX)


def library_of(user, *, everyone: bool = False):
    """The processed videos on a person's list: their own; every fan's for a curator who asks
    (the rule of the video list). A video someone else shares by link can be watched by
    whoever has the link, but is on no one else's list, so it is not here."""
    if not user.is_authenticated:
        return Video.objects.none()
    videos = Video.objects.filter(state=Video.State.DONE)
    return videos if everyone and is_curator(user) else videos.filter(owner=user)


@dataclass
class Appearance:
    """One video in an answer: how long, and the moments (start, end) on its clock."""

    video_id: int
    seconds: float
    share: float  # of the video's length
    moments: list[tuple[float, float]]
    end: float  # when the video's last frame stops showing
    video: Video | None = None  # filled in for the videos a page shows

    def spans(self) -> list[dict]:
        """The moments placed on a bar of the video's length, as the watch page's timeline
        places them (left and width in %)."""
        duration = (self.video.duration or 0.0) if self.video else 0.0
        length = max(duration, self.end, 1e-6)
        return [
            {"start": start, "end": end, "seconds": end - start,
             "left": 100 * start / length, "width": 100 * (end - start) / length}
            for start, end in self.moments
        ]  # fmt: skip


@dataclass
class MemberLibrary:
    """A member across a viewer's library."""

    appearances: list[Appearance]  # most screen time first
    seconds: float
    seen_with: list[tuple[Member, float]] = field(default_factory=list)  # most time first


def member_library(user, member: Member, *, everyone: bool = False) -> MemberLibrary:
    """Every video on `user`'s list where `member` is on screen, and the members she shares
    the screen with, for how long."""
    videos = library_of(user, everyone=everyone)
    edited = _edited(videos)
    hers = _presence(_face_tracks().filter(video__in=videos, member=member), edited)
    mine = {video_id: ranges for (video_id, _), ranges in hers.items()}
    found_clocks = clocks(mine)
    appearances = [
        _appearance(video_id, ranges, found_clocks[video_id]) for video_id, ranges in mine.items()
    ]
    together = _seen_with(videos, member, edited, found_clocks)
    names = Member.objects.in_bulk([pk for pk, seconds in together.items() if seconds > 0])
    seen_with = sorted(
        ((names[pk], seconds) for pk, seconds in together.items() if pk in names),
        key=lambda pair: (-pair[1], pair[0].order, pair[0].name),
    )
    return MemberLibrary(
        appearances=_ranked(appearances),
        seconds=sum(a.seconds for a in appearances),
        seen_with=seen_with,
    )


def together(user, members: Sequence[Member], *, everyone: bool = False) -> list[Appearance]:
    """Every stretch, in the videos on `user`'s list, where all of `members` are on screen
    at once; the videos with most time together first."""
    wanted = {member.pk for member in members}
    if not wanted:
        return []
    with_all = list(
        _face_tracks()
        .filter(video__in=library_of(user, everyone=everyone), member__in=wanted)
        .order_by()
        .values("video")
        .annotate(present=Count("member", distinct=True))
        .filter(present=len(wanted))
        .values_list("video", flat=True)
    )
    edited = _edited(Video.objects.filter(pk__in=with_all))
    presence = _presence(_face_tracks().filter(video_id__in=with_all, member__in=wanted), edited)
    found_clocks = clocks(with_all)
    appearances = []
    for video_id in with_all:
        shared = stretches.intersection(*(presence.get((video_id, pk), []) for pk in wanted))
        if shared:
            appearances.append(_appearance(video_id, shared, found_clocks[video_id]))
    return _ranked(appearances)


def fancams_of(user, member: Member, *, everyone: bool = False):
    """The member's finished fancams of videos on `user`'s list, newest first."""
    videos = library_of(user, everyone=everyone)
    return (
        Fancam.objects.filter(member=member, state=Fancam.State.DONE, video__in=videos)
        .exclude(file="")
        .select_related("video")
        .defer("video__probe_facts")
        .order_by("-created")
    )


def with_videos(appearances: Iterable[Appearance]) -> list[Appearance]:
    """The appearances with their Video rows loaded (one query, without the probe facts)."""
    appearances = list(appearances)
    videos = Video.objects.select_related("owner").defer("probe_facts")
    rows = videos.in_bulk([a.video_id for a in appearances])
    for appearance in appearances:
        appearance.video = rows[appearance.video_id]
    return appearances


# --- clocks ---------------------------------------------------------------------------------

# Clocks read in this process, by video. Only clocks of probe facts that carry the first
# frame's time are kept: those are written once (videos.facts) and never change, so an entry
# never goes stale. Weighed by what they hold (one, plus one per stored frame time; a 10-minute
# phone video holds 18,000 at 8 bytes each), the least recently used dropped first.
_CLOCKS: OrderedDict[tuple, Clock] = OrderedDict()
_CLOCKS_WEIGHT = [0]
_LOCK = threading.Lock()
CLOCKS_KEPT = 2_000_000


def clocks(video_ids: Iterable[int]) -> dict[int, Clock]:
    """Video.clock() of many videos at once: from this process's memory, or read from the
    probe facts (only the scalars a constant-rate clock needs, and every frame's time only
    where frames are irregular)."""
    # Kept by each video's random uuid too, so a row id a database hands out again (SQLite
    # after a rolled-back insert) never meets another video's clock.
    uuids = dict(Video.objects.filter(pk__in=list(video_ids)).order_by().values_list("pk", "uuid"))
    found, missing = {}, []
    with _LOCK:
        for pk, uuid in uuids.items():
            clock = _CLOCKS.get((pk, uuid))
            if clock is None:
                missing.append(pk)
            else:
                _CLOCKS.move_to_end((pk, uuid))
                found[pk] = clock
    if missing:
        read = _clocks_read(missing)
        with _LOCK:
            for pk, (clock, keep) in read.items():
                if keep and (pk, uuids[pk]) not in _CLOCKS:
                    _CLOCKS[pk, uuids[pk]] = clock
                    _CLOCKS_WEIGHT[0] += _weight(clock)
            while _CLOCKS_WEIGHT[0] > CLOCKS_KEPT and _CLOCKS:
                _, dropped = _CLOCKS.popitem(last=False)
                _CLOCKS_WEIGHT[0] -= _weight(dropped)
        found |= {pk: clock for pk, (clock, _) in read.items()}
    return found


def _weight(clock: Clock) -> int:
    return 1 + (len(clock.times) if clock.times is not None else 0)


def _clocks_read(ids: list[int]) -> dict[int, tuple[Clock, bool]]:
    """Clocks from the probe facts, each with whether it may be kept."""
    rows = (
        Video.objects.filter(pk__in=ids)
        .order_by()
        .values_list(
            "pk",
            "fps",
            "frames",
            "probe_facts__first_time",
            "probe_facts__fps",
            "probe_facts__frames",
            "probe_facts__duration",
        )
    )
    irregular = set(
        Video.objects.filter(pk__in=ids, probe_facts__has_key="frame_times")
        .exclude(probe_facts__frame_times=None)
        .order_by()
        .values_list("pk", flat=True)
    )
    found, times_of = {}, {}
    for pk, fps, frames, first, info_fps, info_frames, duration in rows:
        if first is None:  # probed before clocks were kept: frame / fps, as it was analysed
            found[pk] = (Clock.regular(0.0, fps or 30.0, frames or 0), False)
            continue
        first, info_fps, info_frames = float(first), float(info_fps), int(info_frames)
        found[pk] = (Clock(first, info_fps, info_frames, end=first + float(duration)), True)
        if pk in irregular:
            times_of[pk] = found[pk][0]
    if times_of:
        for pk, times in (
            Video.objects.filter(pk__in=times_of)
            .order_by()
            .values_list("pk", "probe_facts__frame_times")
        ):
            regular = times_of[pk]
            clock = dataclasses.replace(regular, times=array("d", times))
            found[pk] = (clock, True)
    return found


# --- tracks ---------------------------------------------------------------------------------


def _face_tracks():
    """Tracks that show on the pages: faces, not merged into another track."""
    return Track.objects.filter(is_face=True, merged_into__isnull=True).order_by()


def _edited(videos) -> dict[int, tuple]:
    """Tracks of the videos that may no longer cover every frame from their first to their
    last (a merge or a box change not undone, or the tail split off a track), each with a
    fingerprint of the corrections made to it, which changes whenever its boxes may have."""
    videos_of = {}
    for kind, track_id, tail_id, uuid in (
        Correction.objects.filter(
            video__in=videos, kind__in=(*BOX_EDITS, Correction.Kind.SPLIT), undone__isnull=True
        )
        .order_by()
        .values_list("kind", "track_id", "new_track_id", "video__uuid")
    ):
        videos_of[tail_id if kind == Correction.Kind.SPLIT else track_id] = uuid
    videos_of.pop(None, None)
    # The video's random uuid in each fingerprint: a row id handed out again never matches.
    found = {pk: (uuid, 0, None, None) for pk, uuid in videos_of.items()}
    for track_id, *fingerprint in (
        Correction.objects.filter(track_id__in=list(videos_of))
        .order_by()
        .values("track_id")
        .annotate(n=Count("id"), last=Max("id"), undone=Max("undone"))
        .values_list("track_id", "n", "last", "undone")
    ):
        found[track_id] = (videos_of[track_id], *fingerprint)
    return found


def _presence(tracks, edited: dict[int, tuple]) -> dict[tuple[int, int], list[Range]]:
    """The frames each (video, member) of the tracks is on screen, as sorted ranges; tracks in
    `edited` are read from their boxes."""
    found: dict[tuple[int, int], list[Range]] = defaultdict(list)
    read = []
    for pk, video_id, member_id, first, last in tracks.order_by().values_list(
        "pk", "video_id", "member_id", "first_frame", "last_frame"
    ):
        if pk in edited:
            read.append((pk, (video_id, member_id)))
        else:
            found[video_id, member_id].append((first, last))
    runs = _box_runs({pk: edited[pk] for pk, _ in read})
    for pk, key in read:
        found[key] += runs.get(pk, [])
    return {
        key: stretches.union(ranges) if len(ranges) > 1 else ranges for key, ranges in found.items()
    }


def _seen_with(videos, member: Member, edited: dict[int, tuple], found_clocks) -> dict[int, float]:
    """Seconds each other member is on screen with `member`, in `videos`.

    The database pairs each of her tracks with every other member's track that overlaps it in
    the same video, and gives the frames they share (the later first frame to the earlier
    last one): the union of those, per video and member, is where both are on screen. Tracks
    whose boxes a person changed are cut down to their runs of boxes here."""
    table = Track._meta.db_table
    library_sql, library_params = videos.order_by().values("pk").query.sql_with_params()
    query = (
        f"SELECT o.video_id, o.member_id, h.id, o.id,"
        f" CASE WHEN h.first_frame > o.first_frame THEN h.first_frame ELSE o.first_frame END,"
        f" CASE WHEN h.last_frame < o.last_frame THEN h.last_frame ELSE o.last_frame END"
        f" FROM {table} h JOIN {table} o ON o.video_id = h.video_id"
        f"  AND o.first_frame <= h.last_frame AND o.last_frame >= h.first_frame"
        f" WHERE h.member_id = %s AND h.is_face AND h.merged_into_id IS NULL"
        f"  AND o.member_id IS NOT NULL AND o.member_id <> %s AND o.is_face"
        f"  AND o.merged_into_id IS NULL AND h.video_id IN ({library_sql})"
    )
    with connection.cursor() as cursor:
        cursor.execute(query, [member.pk, member.pk, *library_params])
        rows = cursor.fetchall()
    pieces: dict[tuple[int, int], list[Range]] = defaultdict(list)
    cut = []
    for video_id, member_id, hers, theirs, first, last in rows:
        if hers in edited or theirs in edited:
            cut.append((video_id, member_id, hers, theirs, first, last))
        else:
            pieces[video_id, member_id].append((first, last))
    runs = _box_runs({t: edited[t] for row in cut for t in row[2:4] if t in edited})
    for video_id, member_id, hers, theirs, first, last in cut:
        shared = [(first, last)]
        pieces[video_id, member_id] += stretches.intersection(
            shared, runs.get(hers, shared), runs.get(theirs, shared)
        )
    seconds: dict[int, float] = defaultdict(float)
    for (video_id, member_id), ranges in pieces.items():
        shared = stretches.union(ranges) if len(ranges) > 1 else ranges
        seconds[member_id] += stretches.seconds(found_clocks[video_id], shared)
    return seconds


# Runs of boxes of edited tracks, by (track, fingerprint of its corrections): reading a
# track's boxes costs one row a frame, and they change only with a correction to it.
_RUNS: OrderedDict[tuple, list[Range]] = OrderedDict()
RUNS_KEPT = 50_000


def _box_runs(tracks: dict[int, tuple]) -> dict[int, list[Range]]:
    """Each track's boxes as runs of consecutive frames, for {track: fingerprint}."""
    found, missing = {}, []
    with _LOCK:
        for pk, fingerprint in tracks.items():
            runs = _RUNS.get((pk, fingerprint))
            if runs is None:
                missing.append(pk)
            else:
                _RUNS.move_to_end((pk, fingerprint))
                found[pk] = runs
    if not missing:
        return found
    # The database finds the runs (a frame less its rank among the track's frames is the same
    # all along a run), so a track's hundreds of boxes come back as a row or two.
    table = Detection._meta.db_table
    places = ", ".join(["%s"] * len(missing))
    query = (
        f"SELECT track_id, MIN(frame), MAX(frame) FROM ("
        f"  SELECT track_id, frame,"
        f"   frame - ROW_NUMBER() OVER (PARTITION BY track_id ORDER BY frame) AS run"
        f"  FROM {table} WHERE track_id IN ({places})"
        f") AS numbered GROUP BY track_id, run"
    )
    read = defaultdict(list)
    with connection.cursor() as cursor:
        cursor.execute(query, missing)
        for track_id, first, last in cursor.fetchall():
            read[track_id].append((first, last))
    with _LOCK:
        for pk in missing:
            runs = found[pk] = sorted(read.get(pk, []))
            _RUNS[pk, tracks[pk]] = runs
        while len(_RUNS) > RUNS_KEPT:
            _RUNS.popitem(last=False)
    return found


def _appearance(video_id: int, ranges: list[Range], clock: Clock) -> Appearance:
    seconds = stretches.seconds(clock, ranges)
    length = max(clock.end - clock.first, 1e-6)
    return Appearance(
        video_id=video_id,
        seconds=seconds,
        share=min(1.0, seconds / length),
        moments=stretches.moments(clock, ranges, bridge=MOMENT_GAP),
        end=clock.end,
    )


def _ranked(appearances: list[Appearance]) -> list[Appearance]:
    return sorted(appearances, key=lambda a: (-a.seconds, -a.video_id))
