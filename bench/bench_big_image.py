"""A small file that decodes huge: the 131 kB PNG of 6300x6300 pixels of one colour (#11).

Run with `.venv/bin/python -m bench.bench_big_image`. Each case runs in a fresh process, so
its peak memory is its own: the script prints seconds and the extra peak resident memory
(VmHWM after, less VmRSS before) of cleaning the image as a gallery upload is cleaned
(decode, shrink, find faces), for a PNG and a JPEG of that size. Targets: under 2 s and under
300 MB extra.
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import time

TARGET_SECONDS = 2.0
TARGET_MB = 300.0


def make(kind: str, side: int) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (side, side), (200, 30, 40)).save(out, format=kind)
    return out.getvalue()


def _status(field: str) -> float:
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(field)


def one(kind: str, side: int) -> dict:
    """Clean one image in this process; returns seconds and extra peak memory."""
    from core.faces import embed
    from core.images import open_image

    data = make(kind, side)
    embed.find_faces_in_photo(open_image(make("PNG", 64)).pixels)  # load the detector first
    before = _status("VmRSS")
    start = time.perf_counter()
    clean = open_image(data)
    found = embed.find_faces_in_photo(clean.pixels)
    seconds = time.perf_counter() - start
    return {
        "kind": kind,
        "file_kB": round(len(data) / 1e3),
        "side": side,
        "kept": f"{clean.width}x{clean.height}",
        "faces": len(found),
        "seconds": round(seconds, 3),
        "extra_MB": round(_status("VmHWM") - before, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=6300)
    parser.add_argument("--one", choices=["PNG", "JPEG"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.side)))
        return
    print(f"{'file':>6} {'size':>8} {'kept':>10} {'faces':>5} {'seconds':>8} {'extra MB':>9}")
    ok = True
    for kind in ("PNG", "JPEG"):
        result = subprocess.run(
            [sys.executable, "-m", "bench.bench_big_image", "--one", kind, "--side", str(args.side)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        r = json.loads(result.stdout.strip().splitlines()[-1])
        print(
            f"{kind:>6} {r['file_kB']:>6}kB {r['kept']:>10} {r['faces']:>5} {r['seconds']:>8.2f} "
            f"{r['extra_MB']:>9.1f}"
        )
        ok &= r["seconds"] < TARGET_SECONDS and r["extra_MB"] < TARGET_MB
    print(
        f"targets: under {TARGET_SECONDS:g} s and {TARGET_MB:g} MB extra: {'met' if ok else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
