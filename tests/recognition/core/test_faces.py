"""Tests for recognition.core.faces: detection, alignment and the onnx/dlib embedders.

tests/fixtures/dlib_descriptors.npz holds dlib's own descriptors for every fixture face,
computed once by dlib.face_recognition_model_v1.compute_face_descriptor on the chips that
faces.face_chips cuts from the stored box. The box is the best HOG box at upsample 0, or the
whole image when HOG finds none (5 of the 50 crops; column "detected" is False for those), so
every fixture face is checked. Regenerate it (after a dlib or model upgrade) with:

    .venv/bin/python -m tests.recognition.core.test_faces
"""

from __future__ import annotations

import itertools
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from recognition.core import faces
from recognition.core.dlib_resnet import read_dlib_resnet, serialized_onnx
from recognition.core.faces import Embedder, ModelLoadError

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
DESCRIPTORS = FIXTURES / "dlib_descriptors.npz"
TOLERANCE = 1e-4  # max abs difference per element allowed between onnx and dlib


def load_rgb(relative: str) -> np.ndarray:
    return np.asarray(Image.open(FIXTURES / relative).convert("RGB"))


def fixture_faces() -> list[str]:
    return sorted(str(p.relative_to(FIXTURES)) for p in (FIXTURES / "faces").glob("*/*.png"))


@pytest.fixture(scope="module")
def stored():
    with np.load(DESCRIPTORS) as data:
        paths = [str(p) for p in data["paths"]]
        return {
            "paths": paths,
            "boxes": data["boxes"],
            "detected": data["detected"],
            "descriptors": data["descriptors"],
        }


@pytest.fixture(scope="module")
def chips(stored):
    return np.concatenate(
        [
            faces.face_chips(load_rgb(path), [tuple(box)])
            for path, box in zip(stored["paths"], stored["boxes"], strict=True)
        ]
    )


def test_it_covers_every_fixture_face_in_the_descriptor_file(stored):
    assert stored["paths"] == fixture_faces()
    assert stored["descriptors"].shape == (len(stored["paths"]), 128)
    # HOG at upsample 0 finds most of the 112 px crops; the rest use the whole image.
    assert stored["detected"].mean() > 0.8


def test_it_matches_dlib_descriptors_with_onnx_on_every_fixture_face(stored, chips):
    embeddings = Embedder(backend="onnx").embed_chips(chips)

    assert embeddings.dtype == np.float32
    assert embeddings.shape == (len(chips), 128)
    worst = np.abs(embeddings - stored["descriptors"]).max(axis=1)
    off = [path for path, err in zip(stored["paths"], worst, strict=True) if err > TOLERANCE]
    assert off == [], f"max error {worst.max():.2e}"


def test_it_gives_the_same_embeddings_with_affine_layers_unfolded(chips):
    import onnxruntime

    model = serialized_onnx(read_dlib_resnet(faces.default_model_path()), fold_affine=False)
    session = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])

    unfolded = session.run(None, {"chips": chips[:8]})[0]

    np.testing.assert_allclose(unfolded, Embedder().embed_chips(chips[:8]), rtol=0, atol=1e-5)


def test_it_reproduces_stored_descriptors_with_the_dlib_backend(stored, chips):
    # dlib takes ~150 ms a face, so check one face per person.
    picks = [i for i, path in enumerate(stored["paths"]) if path.endswith("000.png")]
    embeddings = Embedder(backend="dlib").embed_chips(chips[picks])

    np.testing.assert_allclose(embeddings, stored["descriptors"][picks], rtol=0, atol=1e-6)


def test_it_gives_the_same_embeddings_batched_and_one_by_one(chips):
    embedder = Embedder(batch_size=16)  # 50 chips: batches of 16, 16, 16 and 2

    batched = embedder.embed_chips(chips)
    single = np.concatenate([embedder.embed_chips(chips[i : i + 1]) for i in range(len(chips))])

    np.testing.assert_allclose(batched, single, rtol=0, atol=1e-6)


def test_it_embeds_faces_straight_from_an_image_and_boxes(stored):
    path, box = stored["paths"][0], tuple(stored["boxes"][0])

    embeddings = faces.embed(load_rgb(path), [box])

    assert embeddings.shape == (1, 128)
    assert np.abs(embeddings[0] - stored["descriptors"][0]).max() <= TOLERANCE


def test_it_returns_empty_arrays_when_there_are_no_faces():
    blank = np.zeros((80, 80, 3), np.uint8)

    assert faces.face_chips(blank, []).shape == (0, 150, 150, 3)
    assert faces.embed(blank, []).shape == (0, 128)
    assert Embedder().embed_chips(np.empty((0, 150, 150, 3), np.uint8)).shape == (0, 128)


def test_it_rejects_chips_of_the_wrong_size():
    with pytest.raises(ValueError, match="150, 150, 3"):
        Embedder().embed_chips(np.zeros((2, 112, 112, 3), np.uint8))


def test_it_finds_exactly_one_face_on_a_fixture_face():
    image = load_rgb("faces/barack-obama/002.png")

    found = faces.detect_scored(image)

    assert len(found) == 1
    left, top, right, bottom = found[0].box
    assert 0 <= left < right < image.shape[1] and 0 <= top < bottom < image.shape[0]
    assert found[0].score > 0
    assert faces.detect(image) == [found[0].box]


def test_it_finds_no_face_on_a_blank_image():
    assert faces.detect(np.full((200, 200, 3), 128, np.uint8)) == []


def test_it_finds_two_faces_pasted_side_by_side_on_a_larger_canvas():
    canvas = np.full((200, 360, 3), 128, np.uint8)
    canvas[40:152, 30:142] = load_rgb("faces/barack-obama/002.png")
    canvas[50:162, 210:322] = load_rgb("faces/drew-barrymore/000.png")

    boxes = sorted(faces.detect(canvas))

    assert len(boxes) == 2
    (l1, t1, r1, b1), (l2, t2, r2, b2) = boxes
    assert 30 <= l1 < r1 < 160 and 40 <= t1 < b1 < 170  # the left face, not spanning both
    assert 200 <= l2 < r2 < 330 and 40 <= t2 < b2 < 170


def test_hog_finds_the_same_faces_in_the_grey_image():
    canvas = np.full((200, 360, 3), 128, np.uint8)
    canvas[40:152, 30:142] = load_rgb("faces/barack-obama/002.png")
    canvas[50:162, 210:322] = load_rgb("faces/drew-barrymore/000.png")
    grey = cv2.cvtColor(canvas, cv2.COLOR_RGB2GRAY)

    colour_boxes, grey_boxes = sorted(faces.detect(canvas)), sorted(faces.detect(grey))

    assert len(grey_boxes) == len(colour_boxes) == 2
    pairs = zip(grey_boxes, colour_boxes, strict=True)
    assert all(abs(a - b) <= 12 for g, c in pairs for a, b in zip(g, c, strict=True))


def test_only_hog_takes_a_grey_image():
    grey = cv2.cvtColor(load_rgb("faces/barack-obama/002.png"), cv2.COLOR_RGB2GRAY)
    with pytest.raises(ValueError, match="RGB"):
        faces.detect_scored(grey, model="cnn")
    with pytest.raises(ValueError, match="grey"):
        faces.detect_scored(grey[None], model="hog")


def test_it_finds_the_faces_with_the_cnn_detector_too():
    image = load_rgb("faces/barack-obama/002.png")

    found = faces.detect_scored(image, model="cnn")

    assert len(found) == 1
    assert found[0].score > 0


def test_it_gives_five_landmarks_inside_the_box():
    image = load_rgb("faces/barack-obama/002.png")
    box = faces.detect(image)[0]

    points = faces.landmarks(image, [box])

    assert points.shape == (1, 5, 2)
    assert (points[0, :, 0] >= box[0]).all() and (points[0, :, 0] <= box[2]).all()
    assert (points[0, :, 1] >= box[1]).all() and (points[0, :, 1] <= box[3]).all()


def test_it_places_the_same_person_closer_than_different_people(stored, chips):
    embeddings = Embedder().embed_chips(chips)
    people = [path.split("/")[1] for path in stored["paths"]]
    same, different = [], []
    for i, j in itertools.combinations(range(len(people)), 2):
        distance = float(np.linalg.norm(embeddings[i] - embeddings[j]))
        (same if people[i] == people[j] else different).append((people[i], people[j], distance))

    # dlib's model is trained so that 0.6 separates same from different people.
    assert np.mean([d for *_, d in same]) < 0.6 < np.mean([d for *_, d in different])
    for person in set(people):
        own = np.mean([d for a, _, d in same if a == person])
        others = np.mean([d for a, b, d in different if person in (a, b)])
        assert own < others, person


def test_both_backends_share_a_model_id_derived_from_the_file_contents(tmp_path):
    copy = tmp_path / "renamed.dat"
    copy.write_bytes(Path(faces.default_model_path()).read_bytes())

    onnx_id = Embedder(backend="onnx").model_id

    assert onnx_id == Embedder(backend="dlib").model_id
    assert onnx_id == Embedder(model_path=str(copy)).model_id
    assert onnx_id.startswith("dlib-resnet-v1-")


@pytest.mark.parametrize("backend", ["onnx", "dlib"])
def test_it_names_the_file_when_the_model_file_is_truncated(tmp_path, backend):
    truncated = tmp_path / "truncated.dat"
    truncated.write_bytes(Path(faces.default_model_path()).read_bytes()[:1_000_000])

    with pytest.raises(ModelLoadError, match="truncated.dat"):
        Embedder(backend=backend, model_path=str(truncated)).load()


@pytest.mark.parametrize("backend", ["onnx", "dlib"])
def test_it_names_the_file_when_the_model_file_is_garbage(tmp_path, backend):
    garbage = tmp_path / "garbage.dat"
    garbage.write_bytes(b"this is not a dlib model" * 100)

    with pytest.raises(ModelLoadError, match="garbage.dat"):
        Embedder(backend=backend, model_path=str(garbage)).embed_chips(
            np.zeros((1, 150, 150, 3), np.uint8)
        )


def test_it_names_the_file_when_the_model_file_is_missing(tmp_path):
    missing = tmp_path / "missing.dat"

    with pytest.raises(ModelLoadError, match="missing.dat"):
        Embedder(model_path=str(missing)).load()
    with pytest.raises(ModelLoadError, match="missing.dat"):
        _ = Embedder(model_path=str(missing)).model_id


def write_descriptor_fixture() -> None:
    """Compute dlib's descriptors for every fixture face and store them with their boxes."""
    paths, boxes, detected, chips = [], [], [], []
    for path in fixture_faces():
        image = load_rgb(path)
        found = faces.detect(image)
        height, width = image.shape[:2]
        box = found[0] if found else (0, 0, width - 1, height - 1)
        paths.append(path)
        boxes.append(box)
        detected.append(bool(found))
        chips.append(faces.face_chips(image, [box])[0])
    descriptors = Embedder(backend="dlib").embed_chips(np.stack(chips))
    np.savez_compressed(
        DESCRIPTORS,
        paths=np.array(paths),
        boxes=np.array(boxes, dtype=np.int32),
        detected=np.array(detected),
        descriptors=descriptors.astype(np.float32),
        model_id=np.array(Embedder(backend="dlib").model_id),
    )
    print(f"wrote {len(paths)} descriptors ({sum(detected)} HOG boxes) to {DESCRIPTORS}")


if __name__ == "__main__":
    write_descriptor_fixture()
