"""Stage clips made here from the fixture faces, a classifier of them, and process helpers."""

import subprocess
from pathlib import Path

import numpy as np
from PIL import Image

from core.classifier.training import fit
from core.faces import embed
from core.media.probe import ffmpeg_exe

FACES = Path(__file__).resolve().parents[1] / "fixtures" / "faces"
SIZE = (480, 270)
FPS = 25


def face(person, index, side):
    return Image.open(FACES / person / f"{index:03d}.png").convert("RGB").resize((side, side))


def scene(people, frames, background):
    """Faces moving slowly over a flat background; returns frames and the true boxes."""
    out, truth = [], []
    for f in range(frames):
        canvas = Image.new("RGB", SIZE, background)
        boxes = {}
        for k, (person, index) in enumerate(people):
            x, y = 40 + 220 * k + 2 * f, 60 + f
            canvas.paste(face(person, index, 120), (x, y))
            boxes[person] = (x, y, x + 120, y + 120)
        out.append(np.asarray(canvas))
        truth.append(boxes)
    return out, truth


def encode(frames, path, fps):
    """RGB frames (all one size) into an H.264 MP4 of near-lossless quality."""
    height, width = frames[0].shape[:2]
    command = [
        ffmpeg_exe(), "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
        "-s", f"{width}x{height}", "-r", str(fps), "-i", "-",
        "-c:v", "libx264", "-crf", "12", "-pix_fmt", "yuv420p", str(path),
    ]  # fmt: skip
    subprocess.run(command, input=np.stack(frames).tobytes(), check=True)


def make_clip(folder):
    """Two shots of 30 frames: Tom and Halle, then Keanu and a stranger (Will Smith)."""
    one, truth1 = scene([("tom-hanks", 1), ("halle-berry", 1)], 30, (70, 90, 140))
    two, truth2 = scene([("keanu-reeves", 1), ("will-smith", 1)], 30, (150, 120, 60))
    path = folder / "stage.mp4"
    encode(one + two, path, FPS)
    return path, truth1 + truth2


def chip(person, index):
    """The face's ArcFace chip, as the analysis cuts it."""
    image = np.asarray(Image.open(FACES / person / f"{index:03d}.png").convert("RGB"))
    face = embed.find_faces_in_photo(image)[0]
    return embed.embedder().chips(image, [face.box], keypoints=[face.keypoints])[0]


def make_model():
    """A classifier fit on other pictures of the same people (images 2-4), strangers left out."""
    embedder = embed.embedder()
    X, labels = [], []
    for person in ("tom-hanks", "halle-berry", "keanu-reeves", "miley-cyrus"):
        for index in (2, 3, 4):
            X.append(embedder.embed_chips(chip(person, index)[None])[0])
            labels.append(person)
    return fit(np.stack(X), labels, folds=3, default_max_distance=embedder.same_person_distance)


def children(pid):
    found = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found.update(int(p) for p in (task / "children").read_text().split())
        except FileNotFoundError:
            continue
    return found


def alive(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def frame_hashes(path) -> list[str]:
    """The MD5 of every decoded video frame, in order (ffmpeg's framemd5)."""
    out = subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-i", str(path), "-map", "0:v", "-f", "framemd5", "-"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return [line.rsplit(",", 1)[1].strip() for line in out.splitlines() if not line.startswith("#")]
