"""Embedding speed, dlib's own path against onnxruntime, on the same chips in one run.

Run with `make bench-embed` (`.venv/bin/python -m bench.bench_embed`). onnxruntime gets one
intra-op thread; dlib-bin's CPU path is single-threaded too, so both numbers are per core.
Chips are cut from the fixture faces the way the pipeline cuts them (HOG box, 5 landmarks,
150 px, padding 0.25). Every case is warmed up first, then the timed repeats of all cases are
interleaved, so load from other processes on a shared machine hits both backends alike. The
table gives milliseconds per face: wall-clock median and best, and process CPU time (which
other processes do not inflate); targets and speed-ups use the best wall-clock repeat.
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

from recognition.core import faces

FIXTURE_FACES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "faces"
TARGET_MS = 10.0  # onnx, per face, one core
TARGET_RATIO = 15.0  # onnx against dlib-bin, per face


def load_chips() -> np.ndarray:
    """Aligned chips of every fixture face (whole image as the box where HOG finds none)."""
    chips = []
    for path in sorted(FIXTURE_FACES.glob("*/*.png")):
        image = np.asarray(Image.open(path).convert("RGB"))
        boxes = faces.detect(image) or [(0, 0, image.shape[1] - 1, image.shape[0] - 1)]
        chips.append(faces.face_chips(image, boxes[:1])[0])
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
    """One backend and mode: a callable embedding `count` faces, and its timings per face."""

    def __init__(self, backend: str, mode: str, batch: int, count: int, run, repeats: int):
        self.backend, self.mode, self.batch = backend, mode, batch
        self.count, self.run, self.repeats = count, run, repeats
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def time_once(self) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        self.run()
        self.wall.append((time.perf_counter() - wall) * 1000 / self.count)
        self.cpu.append((time.process_time() - cpu) * 1000 / self.count)


def make_cases(args, batch: np.ndarray, singles: np.ndarray) -> list[Case]:
    embedders = [("onnx", faces.Embedder(backend="onnx", threads=1, batch_size=len(batch)))]
    if not args.skip_dlib:
        embedders.append(("dlib", faces.Embedder(backend="dlib")))
    cases = []
    for name, embedder in embedders:
        repeats = args.repeats if name == "onnx" else args.dlib_repeats

        def one_by_one(embedder=embedder):
            for chip in singles:
                embedder.embed_chips(chip[None])

        def batched(embedder=embedder):
            embedder.embed_chips(batch)

        cases.append(Case(name, "single", 1, len(singles), one_by_one, repeats))
        cases.append(Case(name, "batched", len(batch), len(batch), batched, repeats))
    return cases


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32, help="faces per batched call")
    parser.add_argument("--single", type=int, default=8, help="faces timed one call each")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats for onnx")
    parser.add_argument("--dlib-repeats", type=int, default=2, help="timed repeats for dlib")
    parser.add_argument("--skip-dlib", action="store_true", help="time onnx only")
    args = parser.parse_args(argv)

    distinct = load_chips()
    # Reuse the fixture faces when asked for more faces than there are.
    copies = -(-max(args.batch, args.single) // len(distinct))
    chips = np.concatenate([distinct] * copies)
    cases = make_cases(args, chips[: args.batch], chips[: args.single])

    print(f"cpu: {cpu_name()} ({len(os.sched_getaffinity(0))} cores visible, 1 used)")
    print(f"onnxruntime {onnxruntime.__version__}, dlib {dlib.__version__}, numpy {np.__version__}")
    print(f"chips: {len(distinct)} fixture faces, 150x150 RGB uint8; load {os.getloadavg()[0]:.2f}")
    print()

    for case in cases:
        case.run()  # warm-up: the first call loads the model and allocates buffers
    for round_ in range(max(case.repeats for case in cases)):
        for case in cases:
            if round_ < case.repeats:
                case.time_once()

    header = f"{'backend':8} {'mode':8} {'batch':>5} {'median':>8} {'best':>8} {'cpu':>8}"
    print(header + "   (ms/face)")
    for c in cases:
        median, best, cpu = statistics.median(c.wall), min(c.wall), statistics.median(c.cpu)
        print(f"{c.backend:8} {c.mode:8} {c.batch:5d} {median:8.2f} {best:8.2f} {cpu:8.2f}")

    best = {(c.backend, c.mode): min(c.wall) for c in cases}
    onnx_ms = best[("onnx", "batched")]
    verdict = "met" if onnx_ms <= TARGET_MS else "NOT met"
    print(f"\nonnx batched: {onnx_ms:.2f} ms/face (target <= {TARGET_MS:.0f}): {verdict}")
    if not args.skip_dlib:
        for mode in ("single", "batched"):
            ratio = best[("dlib", mode)] / best[("onnx", mode)]
            verdict = "met" if ratio >= TARGET_RATIO else "NOT met"
            target = f"target >= {TARGET_RATIO:.0f}x"
            print(f"speed-up onnx vs dlib, {mode}: {ratio:.1f}x ({target}): {verdict}")
    print(f"load after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
