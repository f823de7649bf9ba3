"""Frame ranges and their times on a clock: what the member page and the together search add up."""

import pytest

from core.media import stretches
from core.media.clock import Clock


def test_touching_and_overlapping_ranges_become_one():
    assert stretches.union([(10, 19), (0, 4), (5, 7), (18, 25), (30, 30)]) == [
        (0, 7),
        (10, 25),
        (30, 30),
    ]


def test_only_frames_every_list_covers_are_together():
    tom = [(0, 29), (40, 59)]
    halle = [(10, 44), (50, 50)]
    keanu = [(0, 12), (43, 100)]
    assert stretches.intersection(tom, halle) == [(10, 29), (40, 44), (50, 50)]
    assert stretches.intersection(tom, halle, keanu) == [(10, 12), (43, 44), (50, 50)]
    assert stretches.intersection(tom, [(30, 39)]) == []


def test_frames_become_runs_of_consecutive_frames():
    assert stretches.ranges_of([7, 3, 4, 5, 9, 8, 20]) == [(3, 5), (7, 9), (20, 20)]


def test_seconds_count_each_frame_for_as_long_as_it_is_shown():
    # A video starting 0.85 s after its sound, at 25 fps: frames 0-24 are one second.
    late = Clock.regular(0.85, 25, 50)
    assert stretches.seconds(late, [(0, 24)]) == pytest.approx(1.0)
    # Irregular frames: the first two last 0.1 s each, the last 0.5 s (until the end).
    uneven = Clock(first=0.0, fps=10, frames=4, end=1.5, times=(0.0, 0.1, 0.2, 1.0))
    assert stretches.seconds(uneven, [(0, 1)]) == pytest.approx(0.2)
    assert stretches.seconds(uneven, [(2, 3)]) == pytest.approx(1.3)


def test_moments_are_times_on_the_clock_with_short_gaps_bridged():
    late = Clock.regular(0.85, 25, 250)
    ranges = [(0, 24), (30, 49), (100, 124)]
    # Frames 25-29 (0.2 s) are bridged; frames 50-99 (2 s) are not.
    assert stretches.moments(late, ranges, bridge=1.0) == [
        pytest.approx((0.85, 2.85)),
        pytest.approx((4.85, 5.85)),
    ]
    assert len(stretches.moments(late, ranges, bridge=0.1)) == 3
