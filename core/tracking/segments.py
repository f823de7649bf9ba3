"""Long videos in segments: cut the frames into ranges, analyse them in forked processes (or
as separate jobs, which save and load their results), and join the tracks at the seams."""

from __future__ import annotations

import json
import multiprocessing
import os
import traceback
from collections.abc import Callable
from dataclasses import replace
from multiprocessing.connection import wait

import numpy as np

from core.faces import embed
from core.media.probe import VideoInfo
from core.processes import die_with_parent
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


def analyze_segment(
    path, info, start, end, number, *, settings=None, embedder=None, report=None
) -> Analysis:
    """analyze() segment `number` of a video, its track ids numbered for the join."""
    return analyze(
        path,
        info=info,
        start=start,
        end=end,
        settings=settings,
        embedder=embedder,
        progress=report,
        first_track_id=1 + number * SEGMENT_IDS,
    )


def analyze_parallel(
    path,
    *,
    info: VideoInfo,
    bounds: list[tuple[int, int]],
    processes: int,
    settings: Settings | None = None,
    embedder=None,
    progress: Callable[[float, str], None] | None = None,
) -> Analysis:
    """analyze() every [start, end) of bounds on up to `processes` forked processes, joined.

    Each process decodes only its own frames, so memory per process stays as flat as analyze()'s
    and the segments share the machine's cores.
    """
    parts = analyze_parts(
        path, info=info, bounds=bounds, processes=processes, settings=settings,
        embedder=embedder, progress=progress,
    )  # fmt: skip
    return join(parts, [start for start, _ in bounds], settings=settings)


def analyze_parts(
    path,
    *,
    info: VideoInfo,
    bounds: list[tuple[int, int]],
    processes: int,
    settings: Settings | None = None,
    embedder=None,
    progress: Callable[[float, str], None] | None = None,
    first_number: int = 0,
) -> list[Analysis]:
    """One analysis per [start, end) of bounds, not joined: segment first_number + i for the
    i-th, so a job that analyses some of a video's segments numbers them as a whole-video run
    does. Progress is over the frames of these bounds."""
    sizes = [end - start for start, end in bounds]
    total = max(sum(sizes), 1)
    if processes <= 1 or len(bounds) == 1:
        parts, done = [], 0
        for number, (start, end) in enumerate(bounds, start=first_number):

            def report(p, stage, span=(end - start) / total, before=done / total):
                if progress:
                    progress(100 * before + span * p, stage)

            parts.append(
                analyze_segment(path, info, start, end, number, settings=settings,
                                embedder=embedder, report=report)
            )  # fmt: skip
            done += end - start
        return parts
    # Load the detector and the embedding model once here; the forked children share them.
    embedder = (embedder or embed.embedder()).load()
    embed.detector()
    # A process per core keeps every core busy: decoder threads would only compete for them.
    in_child = replace(settings or Settings(), decode_threads=1)
    forked = _Forked(len(bounds))
    for number, (start, end) in enumerate(bounds, start=first_number):
        forked.add(
            lambda report, n=number, a=start, b=end: analyze_segment(
                path, info, a, b, n, settings=in_child, embedder=embedder, report=report
            )
        )
    parts = forked.run(processes, lambda done: _overall(progress, sizes, done))
    if progress:
        progress(100.0, "faces found")
    return parts


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
        results: dict[int, object] = {}
        running: dict = {}  # pipe end -> (task number, process)
        waiting = list(range(len(self.tasks)))
        try:
            while waiting or running:
                while waiting and len(running) < processes:
                    number = waiting.pop(0)
                    receive, send = self.context.Pipe(duplex=False)
                    child = self.context.Process(
                        target=self._child, args=(number, send, os.getpid())
                    )
                    child.start()
                    send.close()
                    running[receive] = (number, child)
                for pipe in wait(list(running), timeout=0.5):
                    number, child = running.pop(pipe)
                    outcome, value = _receive(pipe, child)
                    child.join()
                    if outcome == "error":
                        raise value
                    results[number] = value
                on_progress(list(self.done))
        finally:
            for _, child in running.values():
                child.terminate()
                child.join()
        return [results[n] for n in range(len(self.tasks))]

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
    cfg = settings or Settings()
    tracks: list[Track] = []
    cuts: list[int] = []
    timings: dict[str, float] = {}
    for part, seam in zip(parts, starts, strict=True):
        cuts += part.cuts
        for key, value in part.timings.items():
            timings[key] = round(timings.get(key, 0.0) + value, 3)
        ending = [t for t in tracks if t.boxes and max(t.boxes) == seam - 1]
        for track in part.tracks:
            if min(track.boxes) == seam and seam not in part.cuts:
                box = track.boxes[seam]
                best = max(ending, key=lambda t: iou(t.boxes[seam - 1], box), default=None)
                if best is not None and iou(best.boxes[seam - 1], box) >= cfg.match_iou:
                    best.boxes.update(track.boxes)
                    best.keyframes += track.keyframes
                    best.detections += track.detections
                    best.samples = np.concatenate([best.samples, track.samples])
                    best.sample_boxes += track.sample_boxes
                    ending.remove(best)
                    continue
            tracks.append(track)
    tracks = [t for t in tracks if substantial(t, cfg)]
    for number, track in enumerate(sorted(tracks, key=lambda t: (t.first_frame, t.id)), start=1):
        track.id = number
    return Analysis(tracks=tracks, frames=sum(p.frames for p in parts), cuts=cuts, timings=timings)


def save(analysis: Analysis, path) -> None:
    """Write an analysis to an .npz (no pickle), e.g. a segment's result for the joining job."""
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
        offset += t["samples"]
        tracks.append(track)
    return Analysis(
        tracks=tracks, frames=meta["frames"], cuts=meta["cuts"], timings=meta["timings"]
    )
