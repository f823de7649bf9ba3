"""Long videos in segments: cut the frames into ranges, analyse them in forked processes (or
as separate jobs, which save and load their results), and join the tracks at the seams."""

from __future__ import annotations

import json
import multiprocessing
import os
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from multiprocessing.connection import wait

import numpy as np

from core.faces import embed
from core.media.probe import VideoInfo
from core.processes import die_with_parent, stop_child
from core.tracking.tracker import analyze
from core.tracking.tracks import Analysis, Settings, Track, iou, substantial

# A part shorter than this is not worth its own process: each part opens with a thorough pass.
MIN_PART_SECONDS = 5.0
# Track ids of segment n start at n * SEGMENT_IDS + 1, so no two segments share one.
SEGMENT_IDS = 100_000


def split(frames: int, parts: int, *, min_frames: int = 1) -> list[tuple[int, int]]:
    """[start, end) ranges cutting frames into `parts` nearly equal ranges of >= min_frames."""
    parts = max(1, min(parts, frames // max(min_frames, 1)))
    edges = [round(frames * k / parts) for k in range(parts + 1)]
    return [(a, b) for a, b in zip(edges, edges[1:], strict=False) if b > a] or [(0, frames)]


def split_for_processes(info: VideoInfo, processes: int) -> list[tuple[int, int]]:
    """A whole video cut into one part per process, none shorter than MIN_PART_SECONDS."""
    return split(info.frames, processes, min_frames=int(MIN_PART_SECONDS * (info.fps or 30)))


@dataclass(frozen=True)
class Source:
    """What an analysis reads: the video file, its probe facts, how to analyse it, and the
    face model to embed with (None: the default one)."""

    path: str | os.PathLike[str]
    info: VideoInfo
    settings: Settings = field(default_factory=Settings)
    embedder: object | None = None


def analyze_segment(source: Source, start: int, end: int, number: int, report=None) -> Analysis:
    """analyze() frames [start, end) as segment `number`, its track ids numbered for the join."""
    return analyze(
        source.path,
        info=source.info,
        start=start,
        end=end,
        settings=source.settings,
        embedder=source.embedder,
        progress=report,
        first_track_id=1 + number * SEGMENT_IDS,
    )


def analyze_parallel(
    source: Source,
    bounds: list[tuple[int, int]],
    processes: int,
    progress: Callable[[float, str], None] | None = None,
) -> Analysis:
    """analyze() every [start, end) of bounds on up to `processes` forked processes, joined:
    the analysis alone, without the render behind it (the benchmark's and the tests' way to
    compare the overlapped run with)."""
    parts = list(parts_in_order(source, bounds, processes, progress=progress))
    return join(parts, [start for start, _ in bounds], settings=source.settings)


def parts_in_order(
    source: Source,
    bounds: list[tuple[int, int]],
    processes: int,
    *,
    progress: Callable[[float, str], None] | None = None,
    first_number: int = 0,
):
    """One analysis per [start, end) of bounds on up to `processes` forked processes, each
    yielded as soon as it and all before it are done; not joined. The i-th is segment
    first_number + i, so a job that analyses some of a video's segments numbers them as a
    whole-video run does. Progress is over the frames of these bounds.

    Each process decodes only its own frames, so memory per process stays as flat as
    analyze()'s and the segments share the machine's cores."""
    sizes = [end - start for start, end in bounds]
    total = max(sum(sizes), 1)
    if processes <= 1 or len(bounds) == 1:
        done = 0
        for number, (start, end) in enumerate(bounds, start=first_number):

            def report(p, stage, span=(end - start) / total, before=done / total):
                if progress:
                    progress(100 * before + span * p, stage)

            yield analyze_segment(source, start, end, number, report)
            done += end - start
        return
    # Load the detector and the embedding model once here; the forked children share them,
    # and the tracker's assignment solver, which each child would import on first use (1 s).
    embedder = (source.embedder or embed.embedder()).load()
    embed.detector()
    import scipy.optimize  # noqa: F401

    # A process per core keeps every core busy: decoder threads would only compete for them.
    in_child = replace(
        source, settings=replace(source.settings, decode_threads=1), embedder=embedder
    )
    forked = _Forked(len(bounds))
    for number, (start, end) in enumerate(bounds, start=first_number):
        forked.add(
            lambda report, n=number, a=start, b=end: analyze_segment(in_child, a, b, n, report)
        )
    early: dict[int, Analysis] = {}
    following = 0
    for number, analysis in forked.finished(
        processes, lambda done: _overall(progress, sizes, done)
    ):
        early[number] = analysis
        while following in early:
            yield early.pop(following)
            following += 1
    if progress:
        progress(100.0, "faces found")


def _overall(progress, sizes: list[int], done) -> None:
    if progress:
        percent = sum(s * min(100.0, d) for s, d in zip(sizes, done, strict=True))
        progress(percent / max(sum(sizes), 1), "finding faces")


class _Forked:
    """Run callables in forked children, `processes` at a time, and gather their results.

    Nothing is pickled on the way in (a fork inherits the parent's memory), results come back
    through a pipe each, and progress through a shared array of one float per task. Children
    die with their parent (PR_SET_PDEATHSIG): a worker killed mid-job (OOM killer, SIGKILL, a
    lost machine) leaves no analysis running on. If the parent is stopped (its video deleted,
    say), the children are terminated at once.
    """

    def __init__(self, count: int) -> None:
        self.context = multiprocessing.get_context("fork")
        self.done = self.context.Array("d", count, lock=False)
        self.tasks: list[Callable] = []

    def add(self, task: Callable[[Callable[[float, str], None]], object]) -> None:
        self.tasks.append(task)

    def run(self, processes: int, on_progress: Callable[[list[float]], None]) -> list:
        results = dict(self.finished(processes, on_progress))
        return [results[n] for n in range(len(self.tasks))]

    def finished(self, processes: int, on_progress: Callable[[list[float]], None]):
        """(task number, result) as each task ends, tasks started in order, `processes` at a
        time; the first failure is raised here, and stops the rest.

        A task that ends is replaced before its result is handed out: whatever the caller
        does with it (joining, naming, storing) runs while every process is busy, not while
        a core waits for the next task to start."""
        running: dict = {}  # pipe end -> (task number, process)
        waiting = list(range(len(self.tasks)))
        try:
            self._start(waiting, running, processes)
            while waiting or running:
                ended = []
                for pipe in wait(list(running), timeout=0.5):
                    number, child = running.pop(pipe)
                    outcome, value = _receive(pipe, child)
                    child.join()
                    if outcome == "error":
                        raise value
                    ended.append((number, value))
                self._start(waiting, running, processes)
                on_progress(list(self.done))
                yield from ended
        finally:
            for _, child in running.values():
                stop_child(child)

    def _start(self, waiting: list[int], running: dict, processes: int) -> None:
        while waiting and len(running) < processes:
            number = waiting.pop(0)
            receive, send = self.context.Pipe(duplex=False)
            child = self.context.Process(target=self._child, args=(number, send, os.getpid()))
            child.start()
            send.close()
            running[receive] = (number, child)

    def _child(self, number: int, send, parent: int) -> None:
        die_with_parent(parent)

        def report(percent: float, _stage: str) -> None:
            self.done[number] = percent

        try:
            send.send(("ok", self.tasks[number](report)))
        except BaseException as exc:
            try:
                send.send(("error", exc))
            except Exception:  # an exception that does not pickle: its words, then
                send.send(("error", RuntimeError(traceback.format_exception_only(exc)[-1])))
        finally:
            send.close()


def _receive(pipe, child) -> tuple[str, object]:
    try:
        return pipe.recv()
    except EOFError:
        child.join()
        return "error", RuntimeError(f"an analysis process ended with exit code {child.exitcode}")
    finally:
        pipe.close()


def join(parts: list[Analysis], starts: list[int], *, settings: Settings | None = None) -> Analysis:
    """Join segment analyses into one, linking tracks that run across a seam."""
    stitcher = Stitcher(starts, settings=settings)
    for part in parts:
        stitcher.add(part)
    return stitcher.result()


class Stitcher:
    """Segment analyses joined in order as they come, telling which tracks are final.

    A track that ends on the frame before the next seam may go on in the next segment, which
    would add to its samples and so may change its name; so may the name of any track on
    screen with it (a member is named once per frame). Everything before the earliest such
    track is final: its tracks are handed out once, numbered, and nothing that comes later
    changes them. Numbers follow first frames, as in one pass. The tracks of result() are
    those of joining all parts at once, in the same order; with keep=False it has none, and
    tracks are let go once handed out, so a long video's tracks need not all fit in memory.
    """

    def __init__(
        self, starts: list[int], *, settings: Settings | None = None, keep: bool = True
    ) -> None:
        self.starts, self.cfg, self.keep = starts, settings or Settings(), keep
        self.numbered = 0
        self.tracks: list[Track] = []
        self.cuts: list[int] = []
        self.timings: dict[str, float] = {}
        self.frames = 0
        self.added = 0
        self.final_before = 0  # every frame before this has its final tracks
        self.handed_out: set[int] = set()  # id() of the tracks handed out as final

    def add(self, part: Analysis) -> list[Track]:
        """Join the next part; returns the tracks that became final (substantial ones)."""
        seam = self.starts[self.added]
        self.added += 1
        self.frames += part.frames
        self.cuts += part.cuts
        for key, value in part.timings.items():
            self.timings[key] = round(self.timings.get(key, 0.0) + value, 3)
        ending = [t for t in self.tracks if t.boxes and max(t.boxes) == seam - 1]
        for track in part.tracks:
            if min(track.boxes) == seam and seam not in part.cuts:
                box = track.boxes[seam]
                best = max(ending, key=lambda t: iou(t.boxes[seam - 1], box), default=None)
                if best is not None and iou(best.boxes[seam - 1], box) >= self.cfg.match_iou:
                    kin = track.kin
                    if kin is not None:  # its later parts are kin of the track it joins
                        best.kin = best.kin if best.kin is not None else kin
                        for other in part.tracks:
                            if other.kin == kin:
                                other.kin = best.kin
                    best.boxes.update(track.boxes)
                    best.keyframes += track.keyframes
                    best.detections += track.detections
                    best.samples = np.concatenate([best.samples, track.samples])
                    best.sample_boxes += track.sample_boxes
                    ending.remove(best)
                    continue
            self.tracks.append(track)
        return self._hand_out()

    def _hand_out(self) -> list[Track]:
        pending = [t for t in self.tracks if id(t) not in self.handed_out]
        if self.added == len(self.starts):
            limit = self.frames
        else:
            limit = self.starts[self.added]
            # Open: may go on after the seam. Then whatever shares frames with an open one.
            limit = min([limit, *(t.first_frame for t in pending if t.last_frame == limit - 1)])
            # Parts of one split track are named together (tracking.naming): final together.
            spans = {}
            for t in pending:
                key = ("kin", t.kin) if t.kin is not None else ("track", id(t))
                first, last = spans.get(key, (t.first_frame, t.last_frame))
                spans[key] = (min(first, t.first_frame), max(last, t.last_frame))
            moved = True
            while moved:
                moved = False
                for first, last in spans.values():
                    if first < limit <= last:
                        limit, moved = first, True
        final = [t for t in pending if t.last_frame < limit]
        self.handed_out.update(id(t) for t in final)
        self.final_before = max(self.final_before, limit)
        if not self.keep:
            self.tracks = [t for t in self.tracks if id(t) not in self.handed_out]
            self.handed_out.clear()
        # Tracks of later rounds start after these: numbering each round's by first frame
        # numbers them all so.
        kept = sorted(
            (t for t in final if substantial(t, self.cfg)), key=lambda t: (t.first_frame, t.id)
        )
        for track in kept:
            self.numbered += 1
            track.id = self.numbered
        return kept

    def result(self) -> Analysis:
        """All parts joined: substantial tracks numbered from 1 by their first frame."""
        if self.added != len(self.starts):
            raise RuntimeError(f"{len(self.starts) - self.added} parts were never added")
        # Every substantial track was numbered when the last part made it final.
        tracks = sorted((t for t in self.tracks if substantial(t, self.cfg)), key=lambda t: t.id)
        return Analysis(tracks=tracks, frames=self.frames, cuts=self.cuts, timings=self.timings)


def save(analysis: Analysis, path) -> None:
    """Write an analysis to an .npz (no pickle), e.g. a segment's result for the joining job,
    or named tracks put aside until they are stored."""
    meta = {"frames": analysis.frames, "cuts": analysis.cuts, "timings": analysis.timings}
    meta["tracks"] = [
        {
            "id": track.id,
            "keyframes": [[f, list(b)] for f, b in track.keyframes],
            "quick_hits": track.quick_hits,
            "detections": track.detections,
            "boxes": [[f, *b] for f, b in sorted(track.boxes.items())],
            "sample_boxes": [[f, list(b)] for f, b in track.sample_boxes],
            "samples": len(track.samples),
            "name": [track.label, track.candidate, track.confidence],
            "kin": track.kin,
            "brief": track.brief,
        }
        for track in analysis.tracks
    ]
    samples = [track.samples for track in analysis.tracks]
    thumbs = [track.thumbnail for track in analysis.tracks]
    np.savez(
        path,
        meta=np.array(json.dumps(meta)),
        samples=np.concatenate(samples) if samples else np.empty((0, 0), np.float32),
        thumbs=np.stack(thumbs) if thumbs else np.empty((0, 0, 0, 3), np.uint8),
    )


def load(path) -> Analysis:
    """Read what save() wrote."""
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        samples, thumbs = data["samples"], data["thumbs"]
    tracks, offset = [], 0
    for k, t in enumerate(meta["tracks"]):
        track = Track(id=t["id"], keyframes=[(f, tuple(b)) for f, b in t["keyframes"]])
        track.quick_hits = t["quick_hits"]
        track.detections = t.get("detections", t["samples"])
        track.boxes = {row[0]: tuple(row[1:]) for row in t["boxes"]}
        track.sample_boxes = [(f, tuple(b)) for f, b in t["sample_boxes"]]
        track.samples = samples[offset : offset + t["samples"]]
        track.thumbnail = thumbs[k]
        track.label, track.candidate, track.confidence = t.get("name", (None, None, 0.0))
        track.kin = t.get("kin")
        track.brief = t.get("brief", False)
        offset += t["samples"]
        tracks.append(track)
    return Analysis(
        tracks=tracks, frames=meta["frames"], cuts=meta["cuts"], timings=meta["timings"]
    )
