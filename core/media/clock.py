"""The clock a video's frames are shown on: the player's.

A frame's time is its presentation timestamp in seconds, as PyAV's `frame.time` gives it and
as a browser's `requestVideoFrameCallback` reports it (`mediaTime`); a paused `<video>` whose
`currentTime` is t shows the last frame whose time is at or before t. Real files rarely start
at 0: a video that starts after its audio, an edit list, a broadcast capture's clock all move
the first frame, and a variable frame rate spaces the others unevenly. Every time the site
shows or exports is read off this clock, never worked out as index / fps.

Frame indices count from 0 over the decoded frames, in display order (probe.py).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

# A constant-rate clock stores no list when every frame is this close to first + i / fps.
# Containers with millisecond clocks (Matroska, WebM) round each time by up to 0.5 ms.
REGULAR_WITHIN = 0.001


@dataclass(frozen=True, slots=True)
class Clock:
    """When each of `frames` frames is shown: first + i / fps, or the explicit `times`."""

    first: float
    fps: float
    frames: int
    end: float  # when the last frame stops showing
    times: Sequence[float] | None = None

    @classmethod
    def regular(cls, first: float, fps: float, frames: int) -> Clock:
        """A constant-rate clock (or the best guess for a video probed before clocks)."""
        fps = fps or 30.0
        return cls(first=first, fps=fps, frames=frames, end=first + frames / fps)

    @classmethod
    def of(cls, times: Sequence[float], fps: float, end: float) -> Clock:
        """The clock of frames shown at `times` (ascending); no list kept when they are regular."""
        first = float(times[0]) if len(times) else 0.0
        if fps and regular(times, first, fps):
            return cls(first=first, fps=fps, frames=len(times), end=end)
        return cls(first=first, fps=fps, frames=len(times), end=end, times=tuple(times))

    def time(self, index: int) -> float:
        """When frame `index` is shown; `frames` gives the end of the last one."""
        if index >= self.frames:
            return self.end
        if self.times is not None:
            return float(self.times[index])
        return self.first + index / self.fps

    def all_times(self) -> np.ndarray:
        """Every frame's time, in order."""
        if self.times is not None:
            return np.asarray(self.times, dtype=np.float64)
        return self.first + np.arange(self.frames, dtype=np.float64) / self.fps

    def frame_at(self, seconds: float) -> int:
        """The frame on screen at `seconds`: the last one shown at or before it (frame 0 before
        the first frame, as a player shows it)."""
        if self.times is not None:
            found = bisect.bisect_right(self.times, seconds + 1e-6) - 1
        else:
            found = int(np.floor((seconds - self.first) * self.fps + 1e-6))
        return min(max(found, 0), max(self.frames - 1, 0))

    def span(self, start: int, end: int) -> tuple[float, float]:
        """The times frames [start, end) are on screen: from the first's time to the next's."""
        return self.time(start), self.time(end)

    def seconds(self, frames: Iterable[int]) -> float:
        """How long the given frames are on screen, all together."""
        total = 0.0
        for index in frames:
            total += self.time(index + 1) - self.time(index)
        return total

    def runs(self, frames: Iterable[int]) -> list[tuple[float, float]]:
        """The given frames as stretches of consecutive frames: (start, end) in seconds."""
        ordered = sorted(set(frames))
        if not ordered:
            return []
        runs, start, previous = [], ordered[0], ordered[0]
        for index in ordered[1:]:
            if index > previous + 1:
                runs.append(self.span(start, previous + 1))
                start = index
            previous = index
        runs.append(self.span(start, previous + 1))
        return runs

    def to_json(self) -> dict:
        """What a page needs to find frames by time: the first frame's time, the rate, and
        every frame's time only when they are not first + i / fps."""
        return {
            "first_frame_time": round(self.first, 6),
            "fps": self.fps,
            "frame_times": None if self.times is None else [round(t, 6) for t in self.times],
        }


def regular(times: Sequence[float], first: float, fps: float) -> bool:
    """Whether every time is first + i / fps, to within REGULAR_WITHIN."""
    if not len(times):
        return True
    expected = first + np.arange(len(times), dtype=np.float64) / fps
    return bool(np.abs(np.asarray(times, dtype=np.float64) - expected).max() <= REGULAR_WITHIN)
