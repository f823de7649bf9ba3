"""Embedding speed of both face models on the same faces, in one run, one core.

Run with `make bench-embed` (`.venv/bin/python -m bench.bench_embed`). Every case gets one
onnxruntime intra-op thread (dlib-bin's CPU path is single-threaded too), so all numbers are
per core:

- arcface: ArcFace MobileFaceNet as twicesite runs it (the graph rewritten at load), and the
  published file run as it is (the reference), with the largest deviation between them;
- dlib: the ResNet on onnxruntime (a graph rebuilt from the .dat file) and on dlib itself.

Chips are cut from the fixture faces the way the gallery cuts them (SCRFD's keypoints for
ArcFace, dlib's landmarks in SCRFD's box for dlib). Every case is warmed up first, then the
timed repeats of all cases are interleaved, so load from other processes hits them alike. The
table gives milliseconds per face: wall-clock median and best over repeats, and process CPU
time; targets use the best repeat.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import dlib
import numpy as np
import onnxruntime
from PIL import Image

from core.faces import embed, weights

FIXTURE_FACES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "faces"
ARCFACE_TARGET_MS = 6.0  # per face, one core (#12)
DLIB_TARGET_MS = 10.0


def load_chips(embedder) -> np.ndarray:
    """Aligned chips of every fixture face, cut for `embedder`."""
    chips = []
    for path in sorted(FIXTURE_FACES.glob("*/*.png")):
        image = np.asarray(Image.open(path).convert("RGB"))
        face = embed.find_faces_in_photo(image)[0]
        chips.append(embedder.chips(image, [face.box], keypoints=[face.keypoints])[0])
    return np.stack(chips)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


class Case:
    """One model, runtime and mode: a callable embedding `count` faces, and its timings."""

    def __init__(self, name: str, mode: str, batch: int, count: int, run, repeats: int):
        self.name, self.mode, self.batch = name, mode, batch
        self.count, self.run, self.repeats = count, run, repeats
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def time_once(self) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        self.run()
        self.wall.append((time.perf_counter() - wall) * 1000 / self.count)
        self.cpu.append((time.process_time() - cpu) * 1000 / self.count)


def _published_arcface():
    """The ArcFace file run as it is published: the reference for speed and for the result."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(
        weights.ARCFACE.read(), options, providers=["CPUExecutionProvider"]
    )
    name = session.get_inputs()[0].name

    def embed(chips: np.ndarray) -> np.ndarray:
        blob = ((chips.astype(np.float32) - 127.5) / 127.5).transpose(0, 3, 1, 2)
        # The file declares a batch of one.
        out = np.concatenate([session.run(None, {name: b[None]})[0] for b in blob])
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    return embed


def make_cases(args) -> tuple[list[Case], float]:
    arcface = embed.ArcFaceEmbedder(threads=1)
    arc_chips = _repeat(load_chips(arcface), args.batch)
    published = _published_arcface()
    deviation = float((1 - (arcface.embed_chips(arc_chips) * published(arc_chips)).sum(1)).max())
    runners = [
        ("arcface", "twicesite", arcface.embed_chips, arc_chips, args.repeats),
        ("arcface", "published", published, arc_chips, args.repeats),
    ]
    if not args.skip_dlib:
        dlib_chips = _repeat(load_chips(embed.DlibEmbedder()), args.batch)
        onnx_dlib = embed.DlibEmbedder(backend="onnx", threads=1, batch_size=args.batch)
        runners += [
            ("dlib", "onnx", onnx_dlib.embed_chips, dlib_chips, args.repeats),
            ("dlib", "dlib", embed.DlibEmbedder(backend="dlib").embed_chips, dlib_chips,
             args.dlib_repeats),
        ]  # fmt: skip
    cases = []
    for model, runtime, embed_fn, chips, repeats in runners:

        def one_by_one(run=embed_fn, chips=chips):
            for chip in chips[: args.single]:
                run(chip[None])

        def batched(run=embed_fn, chips=chips):
            run(chips)

        name = f"{model}/{runtime}"
        cases.append(Case(name, "single", 1, args.single, one_by_one, repeats))
        cases.append(Case(name, "batched", len(chips), len(chips), batched, repeats))
    return cases, deviation


def _repeat(chips: np.ndarray, count: int) -> np.ndarray:
    copies = -(-count // len(chips))
    return np.concatenate([chips] * copies)[:count]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32, help="faces per batched call")
    parser.add_argument("--single", type=int, default=8, help="faces timed one call each")
    parser.add_argument("--repeats", type=int, default=7, help="timed repeats")
    parser.add_argument("--dlib-repeats", type=int, default=2, help="timed repeats for dlib")
    parser.add_argument("--skip-dlib", action="store_true", help="time ArcFace only")
    args = parser.parse_args(argv)

    cases, deviation = make_cases(args)
    print(f"cpu: {cpu_name()} ({len(os.sched_getaffinity(0))} cores visible, 1 used)")
    print(f"onnxruntime {onnxruntime.__version__}, dlib {dlib.__version__}, numpy {np.__version__}")
    print(f"faces: the fixture faces; load {os.getloadavg()[0]:.2f}")
    print()

    for case in cases:
        case.run()  # warm-up: the first call loads the model and allocates buffers
    for round_ in range(max(case.repeats for case in cases)):
        for case in cases:
            if round_ < case.repeats:
                case.time_once()

    header = f"{'model/runtime':18} {'mode':8} {'batch':>5} {'median':>8} {'best':>8} {'cpu':>8}"
    print(header + "   (ms/face)")
    for c in cases:
        median, best, cpu = statistics.median(c.wall), min(c.wall), statistics.median(c.cpu)
        print(f"{c.name:18} {c.mode:8} {c.batch:5d} {median:8.2f} {best:8.2f} {cpu:8.2f}")

    best = {(c.name, c.mode): min(c.wall) for c in cases}
    arc = best[("arcface/twicesite", "batched")]
    verdict = "met" if arc <= ARCFACE_TARGET_MS else "NOT met"
    print(f"\narcface batched: {arc:.2f} ms/face (target <= {ARCFACE_TARGET_MS:g}): {verdict}")
    speedup = best[("arcface/published", "batched")] / arc
    print(f"arcface speed-up over the published graph: {speedup:.2f}x")
    print(f"arcface largest deviation from the published graph: 1 - cos = {deviation:.1e}")
    if not args.skip_dlib:
        onnx_ms = best[("dlib/onnx", "batched")]
        verdict = "met" if onnx_ms <= DLIB_TARGET_MS else "NOT met"
        print(
            f"dlib on onnx batched: {onnx_ms:.2f} ms/face (target <= {DLIB_TARGET_MS:g}): {verdict}"
        )
        for mode in ("single", "batched"):
            ratio = best[("dlib/dlib", mode)] / best[("dlib/onnx", mode)]
            print(f"dlib: onnxruntime against dlib itself, {mode}: {ratio:.1f}x faster")
    print(f"load after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
