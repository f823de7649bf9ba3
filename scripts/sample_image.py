"""Make static/twicesite/sample.jpg, the home page's picture of what the site does: three of
the test fixtures' faces on a stage, each found by the site's detector (SCRFD) and tagged by
the site's own drawing code. Run: .venv/bin/python scripts/sample_image.py"""

import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.faces.detect import Detector  # noqa: E402
from core.media.draw import draw_label  # noqa: E402

FACES = ROOT / "tests" / "fixtures" / "faces"
PEOPLE = [  # (fixture folder, image, name shown, tag colour, left, top, side)
    ("halle-berry", 1, "Halle Berry", (255, 95, 162), 70, 110, 170),
    ("keanu-reeves", 0, "Keanu Reeves", (86, 156, 255), 330, 80, 190),
    ("jennifer-aniston", 2, "Jennifer Aniston", (255, 178, 64), 600, 120, 160),
]


def stage(width=840, height=340) -> np.ndarray:
    """A dark stage: a purple gradient with a lighter floor."""
    y = np.linspace(0, 1, height)[:, None, None]
    top, floor = np.array([36, 18, 64]), np.array([120, 60, 150])
    image = (top + (floor - top) * y**1.5) * np.ones((1, width, 1))
    return image.astype(np.uint8)


def main() -> None:
    frame = stage()
    canvas = Image.fromarray(frame)
    for folder, index, _, _, left, top, side in PEOPLE:
        face = Image.open(FACES / folder / f"{index:03d}.png").convert("RGB").resize((side, side))
        canvas.paste(face, (left, top))
    frame = np.asarray(canvas).copy()
    faces = Detector().detect(frame)
    for _, _, name, color, left, top, side in PEOPLE:
        centre = (left + side / 2, top + side / 2)
        found = [
            f
            for f in faces
            if f.box[0] <= centre[0] <= f.box[2] and f.box[1] <= centre[1] <= f.box[3]
        ]
        if not found:
            raise SystemExit(f"the detector found no face for {name}")
        draw_label(frame, found[0].box, name, color)
    out = ROOT / "static" / "twicesite" / "sample.jpg"
    Image.fromarray(frame).save(out, quality=82, optimize=True, progressive=True)
    print(f"{out.relative_to(ROOT)}: {out.stat().st_size // 1024} kB")


if __name__ == "__main__":
    main()
