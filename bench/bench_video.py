"""Video benchmark: plain ffmpeg transcode vs the seed method vs twicesite, in one run.

    .venv/bin/python -m bench.bench_video [--video V --truth T --gallery DIR --seed-frames N]

Prints wall times, twicesite's ratio to the transcode, frames per second, peak memory and the
quality figures of ../shared/tools/score.py for the seed method and for twicesite.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
KNOWN = "barack-obama,tom-hanks,keanu-reeves,halle-berry,jennifer-aniston,hugh-laurie,miley-cyrus,drew-barrymore"


def _peak_mb(usage) -> float:
    return usage.ru_maxrss / 1024


def _pss_bytes(pid: int) -> int:
    """Proportional set size: resident memory with pages shared by n processes counted 1/n."""
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    return 0


def _tree_pss_mb(root: int) -> float:
    """Memory of a process and all its descendants now (Linux /proc), in MB, shared pages
    (forked children, libraries) counted once."""
    parents = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            parents[int(entry)] = int(fields[1])
        except (OSError, IndexError, ValueError):
            continue
    tree, grew = {root}, True
    while grew:
        more = {pid for pid, parent in parents.items() if parent in tree} - tree
        tree |= more
        grew = bool(more)
    total = 0
    for pid in tree:
        try:
            total += _pss_bytes(pid)
        except OSError:  # it ended meanwhile
            continue
    return total / 2**20


class _TreePeak:
    """Samples this process tree's memory (PSS) every 50 ms; .peak is the highest."""

    def __init__(self) -> None:
        import threading

        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, _tree_pss_mb(os.getpid()))

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return round(self.peak, 1)


def _looks(clf) -> dict:
    return {member: (member, (255, 95, 162)) for member in clf.members}


def _analyse_and_render(args, info, embedder, clf):
    """As process_video runs it: parts on one process per core, joined at the seams and named
    as they come, with the labelled video drawn behind the analysis. Returns the analysis and
    the seconds it all took."""
    from core.tracking.overlap import Naming, analyze_and_render, part_bounds
    from core.tracking.segments import Source

    t = time.perf_counter()
    analysis = analyze_and_render(
        Source(args.video, info, embedder=embedder),
        args.out,
        part_bounds(info),
        args.processes,
        Naming(clf, _looks(clf)),
        preset=args.preset,
        niceness=args.render_niceness,
    )
    return analysis, time.perf_counter() - t


def _one_after_the_other(args, info, embedder, clf) -> tuple[float, float]:
    """The same parts analysed, then named, then drawn: seconds of analysis and of render."""
    from core.media.render import render
    from core.tracking.naming import name_tracks
    from core.tracking.overlap import part_bounds, track_labels
    from core.tracking.segments import Source, analyze_parallel

    t1 = time.perf_counter()
    bounds = part_bounds(info)
    analysis = analyze_parallel(Source(args.video, info, embedder=embedder), bounds, args.processes)
    name_tracks(analysis.tracks, clf, cuts=analysis.cuts)
    t_analysis = time.perf_counter() - t1
    labels = track_labels(analysis.tracks, _looks(clf))
    t2 = time.perf_counter()
    render(args.video, args.out, info, lambda index: labels.get(index, ()), preset=args.preset)
    return t_analysis, time.perf_counter() - t2


def _fancam(args, info, analysis) -> tuple[float, str]:
    """A 9:16 fancam of the most-seen member, as the fancam job makes it from stored boxes:
    the plan and the render, timed together."""
    from collections import Counter

    from core.fancam import framing
    from core.fancam.render import render_fancam

    seen = Counter()
    for track in analysis.tracks:
        if track.label:
            seen[track.label] += len(track.boxes)
    if not seen:
        return 0.0, ""
    member = seen.most_common(1)[0][0]
    t = time.perf_counter()
    boxes = {f: b for t_ in analysis.tracks if t_.label == member for f, b in t_.boxes.items()}
    plan = framing.plan(
        boxes, frames=info.frames, frame=(info.width, info.height), fps=info.fps,
        cuts=analysis.cuts,
    )  # fmt: skip
    out = Path(args.out).with_name("fancam.mp4")
    render_fancam(args.video, out, info, plan.windows, plan.output, preset=args.preset)
    return time.perf_counter() - t, member


def run_twicesite(args) -> None:
    """Child mode: gallery -> classifier -> analyze -> name -> render; prints JSON."""
    import numpy as np
    from PIL import Image

    from core.classifier.training import fit
    from core.faces import embed
    from core.media.probe import probe

    t0 = time.perf_counter()
    embedder = embed.embedder(args.embedding)
    X, labels = [], []
    for person in args.members.split(","):
        for name in sorted(os.listdir(Path(args.gallery) / person))[: args.first]:
            image = np.asarray(Image.open(Path(args.gallery) / person / name).convert("RGB"))
            # As the gallery does it: the photo's subject, chip from the photo itself.
            found = embed.find_faces_in_photo(image)
            if found:
                chips = embedder.chips(image, [found[0].box], keypoints=[found[0].keypoints])
                X.append(embedder.embed_chips(chips)[0])
                labels.append(person)
    clf = fit(np.stack(X), labels, default_max_distance=embedder.same_person_distance)
    t_gallery = time.perf_counter() - t0

    info = probe(args.video)
    if args.child == "memory":
        # Peak memory of the whole process tree, from a run of its own: the sampler reads /proc
        # every 50 ms, which costs CPU and holds the GIL (it had made analysis 0.3 s and the
        # render 0.2 s slower on stage-dev), so the timed run goes without it.
        sampler = _TreePeak()
        _analyse_and_render(args, info, embedder, clf)
        peak_tree = sampler.stop()
        print(
            json.dumps(
                {
                    "peak_mb_python": round(_peak_mb(resource.getrusage(resource.RUSAGE_SELF)), 1),
                    "peak_mb_largest_child": round(
                        _peak_mb(resource.getrusage(resource.RUSAGE_CHILDREN)), 1
                    ),
                    "peak_mb_tree": peak_tree,
                }
            )
        )
        return
    t_analysis, t_render = _one_after_the_other(args, info, embedder, clf)
    analysis, t_video = _analyse_and_render(args, info, embedder, clf)
    t_fancam, fancam_of = _fancam(args, info, analysis)
    detections = [
        {"frame": f, "box": list(b), "member": t.label, "confidence": t.confidence, "track": t.id}
        for t in analysis.tracks
        for f, b in t.boxes.items()
    ]
    Path(args.preds).write_text(
        json.dumps({"video": {"fps": info.fps, "frames": info.frames}, "detections": detections})
    )
    print(
        json.dumps(
            {
                "gallery_s": round(t_gallery, 2),
                "video_s": round(t_video, 2),
                "apart_analysis_s": round(t_analysis, 2),
                "apart_render_s": round(t_render, 2),
                "fancam_s": round(t_fancam, 2),
                "fancam_of": fancam_of,
                "frames": info.frames,
                "stages": analysis.timings,
                "tracks": len(analysis.tracks),
                "processes": args.processes,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", default=str(SHARED / "data" / "stage-dev.mp4"))
    parser.add_argument("--truth", default=str(SHARED / "data" / "stage-dev.truth.json"))
    parser.add_argument("--gallery", default=str(SHARED / "data" / "faces"))
    parser.add_argument("--members", default=KNOWN)
    parser.add_argument("--first", type=int, default=30)
    parser.add_argument("--preset", default="veryfast")
    parser.add_argument("--embedding", choices=("arcface", "dlib"), default="arcface")
    parser.add_argument(
        "--seed-frames", type=int, default=90, help="frames the seed method runs on (0: all)"
    )
    parser.add_argument("--skip-seed", action="store_true", help="do not run the seed method")
    parser.add_argument(
        "--processes", type=int, default=os.cpu_count(), help="analysis processes (default: cores)"
    )
    parser.add_argument(
        "--render-niceness", type=int, default=None, help="of the render behind the analysis"
    )
    parser.add_argument("--child", choices=("time", "memory"), help=argparse.SUPPRESS)
    parser.add_argument("--out", default="")
    parser.add_argument("--preds", default="")
    args = parser.parse_args()
    if args.child:
        run_twicesite(args)
        return
    if not Path(args.video).exists():
        sys.exit(f"no video at {args.video}; pass --video and --truth")
    sys.path.insert(0, str(SHARED / "tools"))
    from score import score

    from core.media.probe import probe
    from core.media.render import transcode

    work = Path(tempfile.mkdtemp(prefix="bench-video-"))
    info = probe(args.video)
    rows = {}

    t = time.perf_counter()
    transcode(args.video, work / "transcode.mp4", preset=args.preset)
    rows["transcode"] = {"wall_s": round(time.perf_counter() - t, 2)}

    seed_script = SHARED / "tools" / "seed_pipeline.py"
    if seed_script.exists() and not args.skip_seed:
        t = time.perf_counter()
        done = subprocess.run(
            [sys.executable, str(seed_script), "--gallery", args.gallery, "--members", args.members,
             "--first", str(args.first), "--video", args.video, "--out", str(work / "seed.mp4"),
             "--preds", str(work / "seed.json"), "--max-frames", str(args.seed_frames)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        wall = time.perf_counter() - t
        seed = json.loads(done.stdout.strip().splitlines()[-1])
        frames = seed["frames"]
        per_frame = seed["video_s"] / frames
        rows["seed"] = {
            "wall_s_measured": round(wall, 2),
            "frames_run": frames,
            "fps": round(frames / seed["video_s"], 2),
            "wall_s_whole_video_estimate": round(seed["encode_s"] + per_frame * info.frames, 1),
            "quality_on_frames_run": score(
                {
                    **json.load(open(args.truth)),
                    "faces": json.load(open(args.truth))["faces"][:frames],
                },
                json.load(open(work / "seed.json")),
            ),
        }

    def twicesite(measure: str) -> tuple[dict, float]:
        t = time.perf_counter()
        child = subprocess.run(
            [sys.executable, "-m", "bench.bench_video", "--child", measure, "--video", args.video,
             "--gallery", args.gallery, "--members", args.members, "--first", str(args.first),
             "--preset", args.preset, "--processes", str(args.processes),
             "--embedding", args.embedding,
             *(["--render-niceness", str(args.render_niceness)]
               if args.render_niceness is not None else []),
             "--out", str(work / "twicesite.mp4"), "--preds", str(work / "twicesite.json")],
            capture_output=True, text=True, cwd=ROOT, check=True,
        )  # fmt: skip
        return json.loads(child.stdout.strip().splitlines()[-1]), time.perf_counter() - t

    # Two fresh processes doing the same work: one timed, one measuring memory.
    result, wall = twicesite("time")
    result.update(twicesite("memory")[0])
    video_s = result["video_s"]
    apart_s = result["apart_analysis_s"] + result["apart_render_s"]
    rows["twicesite"] = {
        **result,
        "wall_s_process": round(wall, 2),
        "fps": round(info.frames / video_s, 1),
        "quality": score(json.load(open(args.truth)), json.load(open(work / "twicesite.json"))),
    }
    transcode = rows["transcode"]["wall_s"]
    rows["ratios"] = {
        "twicesite_video_vs_transcode": round(video_s / transcode, 2),
        "one_after_the_other_vs_transcode": round(apart_s / transcode, 2),
        "fancam_vs_transcode": round(result["fancam_s"] / transcode, 2),
        "seed_estimate_vs_transcode": round(
            rows["seed"]["wall_s_whole_video_estimate"] / transcode, 1
        )
        if "seed" in rows
        else None,
    }
    print(
        f"video: {args.video} ({info.width}x{info.height}, {info.frames} frames, {info.duration:.1f} s)"
    )
    for name, row in rows.items():
        print(f"{name:10s} {json.dumps(row)}")
    print(f"outputs in {work}")


if __name__ == "__main__":
    main()
