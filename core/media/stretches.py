"""Stretches of frames: where someone is on screen, as sorted, disjoint ranges of frame
indices (first and last frame, both included), and what they are on a video's clock.

A stored track covers its frames from first to last, so a member's presence in a video is the
union of her tracks' ranges, two members' presence together is the intersection of theirs,
and times come from the clock (clock.py), never from frame / fps.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from core.media.clock import Clock

Range = tuple[int, int]  # first and last frame, both included


def union(ranges: Iterable[Range]) -> list[Range]:
    """The frames any of the ranges covers, as sorted ranges; touching ones become one."""
    out: list[Range] = []
    for first, last in sorted(ranges):
        if out and first <= out[-1][1] + 1:
            if last > out[-1][1]:
                out[-1] = (out[-1][0], last)
        else:
            out.append((first, last))
    return out


def intersection(*lists: Sequence[Range]) -> list[Range]:
    """The frames every list covers (each list sorted and disjoint, as union() gives them)."""
    if not lists:
        return []
    common = list(lists[0])
    for other in lists[1:]:
        found, i, j = [], 0, 0
        while i < len(common) and j < len(other):
            first = max(common[i][0], other[j][0])
            last = min(common[i][1], other[j][1])
            if first <= last:
                found.append((first, last))
            if common[i][1] < other[j][1]:
                i += 1
            else:
                j += 1
        common = found
    return common


def ranges_of(frames: Iterable[int]) -> list[Range]:
    """Frame indices as ranges of consecutive frames."""
    return union((frame, frame) for frame in frames)


def seconds(clock: Clock, ranges: Iterable[Range]) -> float:
    """How long the frames are on screen: each range from its first frame's time to the time
    of the frame after its last (the end of the video for the last frame)."""
    return sum(clock.time(last + 1) - clock.time(first) for first, last in ranges)


def moments(clock: Clock, ranges: Sequence[Range], *, bridge: float) -> list[tuple[float, float]]:
    """The ranges (sorted, disjoint) as (start, end) seconds on the clock; ranges less than
    `bridge` seconds apart become one moment."""
    out: list[tuple[float, float]] = []
    for first, last in ranges:
        start, end = clock.time(first), clock.time(last + 1)
        if out and start - out[-1][1] < bridge:
            out[-1] = (out[-1][0], max(end, out[-1][1]))
        else:
            out.append((start, end))
    return out
