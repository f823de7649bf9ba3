"""The open-set rule on galleries made realistically noisy from the shared faces (#24).

Run with `.venv/bin/python -m bench.bench_noisy_galleries [--model arcface|dlib]`. Nine of the
shared people are the members (images 0-29 are their gallery); will-smith is a stranger whose
faces stand for the wrong face of a photo with two. Each gallery is cross-validated as
`train --cv 5` does (nested: every outer fold chooses its rule by cross-validation of its own
training faces), and the table gives, per gallery, the old rule (the distance-gated SVM
alone), the seed scripts' rule (linear SVC, named above 0.7) and the rule chosen, on the four
axes of the issue: known faces called unknown, known faces named wrong, strangers kept out
(leave one member out), balanced accuracy.

Embeddings of every variant (clean, low resolution, blurred, dark) are cached under
bench/out/, so a second run only cross-validates.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from core.classifier.evaluation import cross_validate
from core.faces import embed

FACES = Path("/work/shared/data/faces")
OUT = Path(__file__).resolve().parent / "out"
STRANGER = "will-smith"
GALLERY = 30  # images 0-29 of each person
LOOKALIKE = (
    "miley-cyrus",
    "jessica-alba",
)  # a pair dlib confuses: faces of one mixed into the other's


def _degrade(image: Image.Image, how: str, rng: np.random.Generator) -> Image.Image:
    if how == "lowres":  # a thumbnail scaled back up: 24 px across
        return image.resize((24, 24), Image.BILINEAR).resize(image.size, Image.BILINEAR)
    if how == "blur":
        return image.filter(ImageFilter.GaussianBlur(2.5))
    if how == "dark":  # underexposed, with sensor noise
        a = np.asarray(image, dtype=np.float64) * 0.2
        a += rng.normal(0, 3, a.shape)
        return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))
    return image


def embeddings(model: str) -> dict:
    """{variant: (N, D)} for every shared face and variant, with names and indices."""
    cache = OUT / f"noisy-{model}.npz"
    if cache.exists():
        with np.load(cache) as z:
            return {k: z[k] for k in z.files}
    embedder = embed.embedder(model)
    names, index, chips = [], [], {v: [] for v in ("clean", "lowres", "blur", "dark")}
    rng = np.random.default_rng(0)
    for folder in sorted(p for p in FACES.iterdir() if p.is_dir()):
        for path in sorted(folder.glob("*.png"))[:60]:
            image = Image.open(path).convert("RGB")
            faces = embed.find_faces_in_photo(np.asarray(image))
            # The curator's box on the clean photo, kept for its degraded copies.
            box = faces[0].box if faces else (8, 8, 104, 104)
            points = [faces[0].keypoints] if faces and model == "arcface" else None
            for variant in chips:
                pixels = np.asarray(_degrade(image, variant, rng))
                chips[variant].append(embedder.chips(pixels, [box], keypoints=points)[0])
            names.append(folder.name)
            index.append(int(path.stem))
    out = {v: embedder.embed_chips(np.stack(c)) for v, c in chips.items()}
    out |= {"labels": np.array(names), "index": np.array(index)}
    OUT.mkdir(exist_ok=True)
    np.savez(cache, **out)
    return out


def galleries(e: dict, seed: int = 0) -> dict[str, tuple[np.ndarray, list[str]]]:
    """The noisy galleries: (embeddings, labels) each."""
    labels, index = e["labels"], e["index"]
    members = sorted(set(labels) - {STRANGER})
    rng = np.random.default_rng(seed)
    rows = {m: np.flatnonzero((labels == m) & (index < GALLERY)) for m in members}
    # Photos that stray into another's gallery are other photos of her than her gallery's own.
    spare = {m: np.flatnonzero((labels == m) & (index >= GALLERY)) for m in members}
    stranger = np.flatnonzero((labels == STRANGER) & (index < GALLERY))

    def build(noisy: dict[str, dict[int, np.ndarray]]) -> tuple[np.ndarray, list[str]]:
        X, y = [], []
        for m in members:
            for k, r in enumerate(rows[m]):
                X.append(noisy.get(m, {}).get(k, e["clean"][r]))
                y.append(m)
        return np.stack(X).astype(np.float64), y

    def mislabelled(per_member: int) -> dict:
        swap = {}
        for m in members:
            others = np.concatenate([spare[o] for o in members if o != m])
            for k in rng.choice(GALLERY, per_member, replace=False):
                swap.setdefault(m, {})[k] = e["clean"][rng.choice(others)]
        return swap

    def degraded(share: float) -> dict:
        out = {}
        for m in members:
            for k in rng.choice(GALLERY, round(share * GALLERY), replace=False):
                variant = rng.choice(["lowres", "blur", "dark"])
                out.setdefault(m, {})[k] = e[variant][rows[m][k]]
        return out

    def second_face(share: float) -> dict:
        out = {}
        for m in members:
            for k in rng.choice(GALLERY, round(share * GALLERY), replace=False):
                out.setdefault(m, {})[k] = e["clean"][rng.choice(stranger)]
        return out

    def lookalike(share: float) -> dict:
        a, b = LOOKALIKE
        picks = rng.choice(GALLERY, round(share * GALLERY), replace=False)
        return {b: {k: e["clean"][spare[a][k]] for k in picks}}

    def merged(*parts: dict) -> dict:
        out: dict = {}
        for part in parts:
            for m, faces in part.items():
                out.setdefault(m, {}).update(faces)
        return out

    return {
        "clean": build({}),
        "mislabelled (3 a member)": build(mislabelled(3)),
        "low-res, blurred, dark (20%)": build(degraded(0.2)),
        "second face (10%)": build(second_face(0.1)),
        "look-alikes (20% of one in another)": build(lookalike(0.2)),
        "all of these": build(
            merged(degraded(0.15), second_face(0.07), lookalike(0.2), mislabelled(2))
        ),
    }


AXES = (
    ("known_unknown", "known unknown", -1),
    ("known_wrong", "known wrong", -1),
    ("strangers_unknown", "strangers out", 1),
    ("balanced_accuracy", "balanced acc.", 1),
)


def row(name: str, figures: dict) -> str:
    return f"| {name} | " + " | ".join(f"{figures[k]:.2%}" for k, _, _ in AXES) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="arcface", choices=["arcface", "dlib"])
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()
    e = embeddings(args.model)
    gate = embed.embedder(args.model).same_person_distance
    report = {}
    print(f"| {args.model} gallery / rule | " + " | ".join(a for _, a, _ in AXES) + " |")
    print("|---|---|---|---|---|")
    for name, (X, y) in galleries(e).items():
        start = time.perf_counter()
        m = cross_validate(X, y, folds=args.folds, default_max_distance=gate)
        took = time.perf_counter() - start
        print(f"| **{name}** ({len(y)} faces, {took:.0f} s) | | | | |")
        print(row("old rule (distance-gated SVM)", m["gated"]))
        print(row("seed rule (SVC, p > 0.7)", m["seed"]))
        chosen = ", ".join(f"{r} {n}" for r, n in sorted(m["rule_choices"].items()))
        print(row(f"chosen ({chosen})", m))
        ok = all(sign * (m[k] - m["seed"][k]) >= -1e-12 for k, _, sign in AXES)
        print(f"| not worse than the seed on all four: {'yes' if ok else 'NO'} | | | | |")
        report[name] = {
            "faces": len(y),
            "seconds": took,
            **{r: {k: m[r][k] for k, _, _ in AXES} for r in ("gated", "seed")},
            "chosen": {k: m[k] for k, _, _ in AXES},
            "rule_choices": m["rule_choices"],
            "not_worse_on_all_four": ok,
        }
    OUT.mkdir(exist_ok=True)
    (OUT / f"noisy-{args.model}.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
