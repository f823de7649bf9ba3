"""Names first, and the labelled video drawn beside the analysis at the lowest priority, not after it.

The parts of a video are analysed in forked processes (segments.parts_in_order) and come back
in the order of their frames. Each is joined to those before it (segments.Stitcher), and the
tracks that nothing later can change are named at once. Their labels go down a pipe to a
render process, forked before the analysis starts, which draws every frame as soon as its
labels are final and waits where they are not yet. So the render uses whatever CPU the
analysis leaves, and when the last part is in, only its stretch is left to draw.

The tracks, names and drawn labels are those of analysing, joining, naming and then rendering
one after the other: parts come in order, a track is named only when final, and the clash
rule (a member once per frame) only ever compares tracks that share frames, which are final
together.
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import os
import sys
import threading
import traceback
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from multiprocessing.connection import wait

from core.media.draw import Label
from core.media.probe import VideoInfo
from core.media.render import DEFAULT_CRF, DEFAULT_PRESET, render
from core.processes import die_with_parent, stop_child
from core.tracking.naming import name_tracks
from core.tracking.segments import MIN_PART_SECONDS, Source, Stitcher, parts_in_order, split
from core.tracking.tracks import Analysis, Track

# Parts of this long, and at least two: names (and the render) can start once the first parts
# are in, and what is left after the last one is short. Each part opens with a thorough
# detection pass (88 ms at 1080p), about 1% of a 10 s part's analysis.
PART_SECONDS = 10.0
# The render yields the CPU to the analysis: names first (what a fan waits for); the render
# takes what CPU the analysis leaves, and the cores once it is done.
RENDER_NICENESS = 19
# Above this many pixels a frame, the render waits for the analysis instead of running beside
# it. At 1080p a worker holding the render's encoder (about 300 MB) beside two analysis
# processes (about 230 MB each) peaked at 1.1-1.2 GB; drawn after, the render gets both cores
# and the MP4 comes no later, as the analysis left it little CPU anyway.
RENDER_BESIDE_MAX_PIXELS = 1280 * 720
LAST = sys.maxsize  # "every frame is final"

# Member slug -> (name, RGB) of her tag; None -> the tag of a face nobody was named for (left
# out: unknown faces are not tagged).
Looks = dict[str | None, tuple[str, tuple[int, int, int]]]


@dataclass(frozen=True)
class Naming:
    """How final tracks are named (a FaceClassifier) and tagged (each member's look)."""

    classifier: object
    looks: Looks


def part_bounds(info: VideoInfo) -> list[tuple[int, int]]:
    """The parts an overlapped run analyses: about PART_SECONDS long, at least two, none
    shorter than MIN_PART_SECONDS. They do not depend on how many processes analyse them:
    a track is cut where a part ends, so the same video gets the same labels on any machine
    (with the parts counted per process, a 20 s 1080p stage video lost 1.4% of its faces
    when a second analysis process made its parts 5 s long)."""
    fps = info.fps or 30.0
    parts = max(2, round(info.frames / (PART_SECONDS * fps)))
    return split(info.frames, parts, min_frames=int(MIN_PART_SECONDS * fps))


def track_labels(tracks: Iterable[Track], looks: Looks) -> dict[int, list[Label]]:
    """Frame -> the labels of these named tracks, drawn in the order of the tracks."""
    labels: dict[int, list[Label]] = defaultdict(list)
    for track in tracks:
        look = looks.get(track.label)
        if look is not None:
            name, rgb = look
            for frame, box in track.boxes.items():
                labels[frame].append(Label(box, name, rgb))
    return labels


def analyze_and_render(
    source: Source,
    target,
    bounds: list[tuple[int, int]],
    processes: int,
    naming: Naming,
    *,
    preset: str = DEFAULT_PRESET,
    crf: int = DEFAULT_CRF,
    niceness: int | None = None,
    beside: bool | None = None,
    progress: Callable[[float, float], None] | None = None,
    on_final: Callable[[list[Track], int], None] | None = None,
    on_analysed: Callable[[Analysis], None] | None = None,
) -> Analysis:
    """Analyse the video in `bounds` parts on `processes` processes, name and tag its tracks
    by `naming`, and render the labelled video to `target` meanwhile; returns the named
    analysis once both are done. progress(analysed %, rendered %) comes now and then, and
    on_analysed(analysis) as soon as the analysis is done, while the render may go on.

    With `on_final`, each batch of final, named tracks goes there instead (in order of their
    numbers), with the frame before which every track is final now: on_final(tracks,
    final_before), once per part, so what is named can be shown at once. The tracks are let
    go: the analysis returned has none, and memory stays flat however long the video.

    The render runs `beside` the analysis at `niceness` (by default for frames up to
    RENDER_BESIDE_MAX_PIXELS), or starts once the analysis is done, with the labels kept
    until then."""
    info = source.info
    if beside is None:
        beside = info.width * info.height <= RENDER_BESIDE_MAX_PIXELS
    niceness = RENDER_NICENESS if niceness is None else niceness
    start = functools.partial(_RenderProcess, source.path, target, info, preset, crf)
    render_process = start(niceness) if beside else None
    held: list[tuple[int, dict[int, list[Label]]]] = []  # labels, until a render takes them

    def report(percent: float, _stage: str = "") -> None:
        if render_process is not None:
            render_process.check()
        if progress:
            progress(percent, render_process.percent() if render_process is not None else 0.0)

    def each(final: list[Track], final_before: int) -> None:
        labels = track_labels(final, naming.looks)
        if render_process is not None:
            render_process.send(final_before, labels)
        else:
            held.append((final_before, labels))
        if on_final is not None:
            on_final(final, final_before)

    try:
        keep = on_final is None
        analysis = analyze_named(
            source, bounds, processes, naming, progress=report, on_final=each, keep=keep
        )
        if render_process is not None:
            render_process.send(LAST, {})
        if on_analysed is not None:
            on_analysed(analysis)
        if render_process is None:
            render_process = start(0)  # nothing else runs now: no reason to yield
            for final_before, labels in held:
                render_process.send(final_before, labels)
            held.clear()
            render_process.send(LAST, {})
        render_process.join(lambda: report(100.0))
        report(100.0)
        return analysis
    finally:
        if render_process is not None:
            render_process.stop()


def analyze_named(
    source: Source,
    bounds: list[tuple[int, int]],
    processes: int,
    naming: Naming,
    *,
    progress: Callable[[float, str], None] | None = None,
    on_final: Callable[[list[Track], int], None] | None = None,
    keep: bool | None = None,
) -> Analysis:
    """Analyse the video in `bounds` parts on `processes` processes and name its tracks as
    they become final: the names first, with no render beside them. on_final(tracks,
    final_before) as analyze_and_render() calls it; the tracks are let go then, unless
    `keep` says to keep them for the analysis returned."""
    starts = [start for start, _ in bounds]
    keep = on_final is None if keep is None else keep
    stitcher = Stitcher(starts, settings=source.settings, keep=keep)
    parts = parts_in_order(source, bounds, processes, progress=progress)
    with contextlib.closing(parts):
        for part in parts:
            final = stitcher.add(part)  # numbered, in order
            name_tracks(final, naming.classifier, cuts=stitcher.cuts, settings=source.settings)
            if on_final is not None:
                on_final(final, stitcher.final_before)
    return stitcher.result()


class _RenderProcess:
    """render() in a forked child, fed labels through a pipe: send(final_before, labels) says
    every frame before final_before has its labels now."""

    def __init__(self, path, target, info: VideoInfo, preset: str, crf: int, niceness: int):
        context = multiprocessing.get_context("fork")
        self.total = max(info.frames, 1)
        self.rendered = context.Value("q", 0, lock=False)
        labels_in, self.labels_out = context.Pipe(duplex=False)
        self.outcome, outcome_out = context.Pipe(duplex=False)
        args = (path, target, info, preset, crf, niceness, labels_in, outcome_out, os.getpid())
        self.child = context.Process(target=self._run, args=args, daemon=True)
        self.child.start()
        labels_in.close()
        outcome_out.close()
        self.result: tuple[str, object] | None = None

    def percent(self) -> float:
        return min(100.0, 100.0 * self.rendered.value / self.total)

    def send(self, final_before: int, labels: dict[int, list[Label]]) -> None:
        self.check()
        if self.result is not None:
            return  # drawn whole already: the last labels it needed came before
        try:
            self.labels_out.send((final_before, dict(labels)))
        except (BrokenPipeError, EOFError):
            # It may have drawn its last frame and ended meanwhile (every frame was final).
            self._collect()
            self.check()
            if self.result is None or self.result[0] != "ok":
                raise RuntimeError("the render process stopped taking labels") from None

    def check(self) -> None:
        """Raise the render's error as soon as it has failed."""
        if self.result is None and self.outcome.poll():
            self._collect()
        if self.result is not None and self.result[0] == "error":
            raise self.result[1]

    def join(self, tick: Callable[[], None]) -> None:
        """Wait for the render to finish, calling tick() every half second meanwhile."""
        while self.result is None:
            if wait([self.outcome], timeout=0.5):
                self._collect()
            else:
                tick()
        self.check()

    def _collect(self) -> None:
        if self.result is not None:
            return  # what it said is kept; asking again would only find the pipe closed
        try:
            self.result = self.outcome.recv()
        except EOFError:
            self.child.join()
            self.result = (
                "error",
                RuntimeError(f"the render process ended with exit code {self.child.exitcode}"),
            )

    def stop(self) -> None:
        self.labels_out.close()
        if self.child.is_alive() and self.result is None:
            stop_child(self.child)
        self.child.join()
        self.outcome.close()

    def _run(self, path, target, info, preset, crf, niceness, labels_in, outcome_out, parent):
        die_with_parent(parent)
        if niceness:
            os.nice(niceness)
        self.labels_out.close()
        self.outcome.close()
        feed = _LabelFeed(labels_in)

        def labels_at(index: int):
            self.rendered.value = index
            return feed.at(index)

        try:
            render(path, target, info, labels_at, preset=preset, crf=crf)
            self.rendered.value = self.total
            outcome_out.send(("ok", None))
        except BaseException as exc:
            try:
                outcome_out.send(("error", exc))
            except Exception:  # an exception that does not pickle: its words, then
                words = traceback.format_exception_only(exc)[-1].strip()
                outcome_out.send(("error", RuntimeError(words)))
        finally:
            outcome_out.close()


class _LabelFeed:
    """The render's side of the pipe: a thread takes in labels as they come (so the analysis
    never waits on the render), and at(index) waits until frame `index` is final."""

    def __init__(self, receive) -> None:
        self.labels: dict[int, list[Label]] = {}
        self.final_before = 0
        self.gone = False
        self.changed = threading.Condition()
        threading.Thread(target=self._take, args=(receive,), daemon=True).start()

    def _take(self, receive) -> None:
        try:
            while True:
                final_before, labels = receive.recv()
                with self.changed:
                    self.labels.update(labels)
                    self.final_before = final_before
                    self.changed.notify_all()
                if final_before == LAST:
                    return
        except (EOFError, OSError):
            with self.changed:
                self.gone = True
                self.changed.notify_all()

    def at(self, index: int) -> list[Label]:
        with self.changed:
            while index >= self.final_before:
                if self.gone:
                    raise RuntimeError("the analysis stopped before the render was done")
                self.changed.wait()
            return self.labels.pop(index, [])
