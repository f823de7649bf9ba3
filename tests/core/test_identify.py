"""Who is in a picture, with a real classifier of fixture faces (images 2-4 of four people)."""

import numpy as np
import pytest
from PIL import Image

from core.faces import embed
from core.faces.identify import NAMED, STRANGER, UNSURE, identify, verdict
from tests.core.stage import FACES, make_model


@pytest.fixture(scope="module")
def model():
    return make_model()


def group_photo(people, *, side=150, gap=40, size=None):
    """The fixture faces side by side on a grey canvas; returns it and each face's box."""
    width = gap + len(people) * (side + gap)
    canvas = Image.new("RGB", size or (width, side + 2 * gap), (96, 104, 120))
    boxes = []
    for k, (person, index) in enumerate(people):
        face = Image.open(FACES / person / f"{index:03d}.png").convert("RGB").resize((side, side))
        x = gap + k * (side + gap)
        canvas.paste(face, (x, gap))
        boxes.append((x, gap, x + side, gap + side))
    return np.asarray(canvas), boxes


def inside(box, pasted) -> bool:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return pasted[0] <= cx <= pasted[2] and pasted[1] <= cy <= pasted[3]


def test_every_face_of_a_group_photo_is_named_left_to_right_and_the_stranger_is_not(model):
    people = [("halle-berry", 1), ("will-smith", 0), ("keanu-reeves", 1), ("miley-cyrus", 1)]
    pixels, pasted = group_photo(people)
    answers, skipped = identify(pixels, classifier=model, embedder=embed.embedder())
    assert skipped == 0
    assert len(answers) == 4
    for answer, place in zip(answers, pasted, strict=True):
        assert inside(answer.box, place)
    assert [a.member for a in answers] == ["halle-berry", None, "keanu-reeves", "miley-cyrus"]
    assert [a.verdict for a in answers] == [NAMED, STRANGER, NAMED, NAMED]
    # Every face carries the two members it is closest to, the named one first.
    assert [a.candidates[0][0] for a in answers if a.member] == [
        "halle-berry",
        "keanu-reeves",
        "miley-cyrus",
    ]
    assert all(len({c[0] for c in a.candidates}) == 2 for a in answers)


def test_a_face_between_two_members_is_unsure_and_names_both(model):
    tom = model.gallery[model.gallery_members == model.members.index("tom-hanks")][0]
    halle = model.gallery[model.gallery_members == model.members.index("halle-berry")][0]
    between = (tom + halle) / np.linalg.norm(tom + halle)  # as like one as the other
    assert between.shape == (embed.embedder().dimensions,)
    prediction = model.predict(between)[0]
    distances = model.distances(between)[0]
    assert prediction.label in ("tom-hanks", "halle-berry")
    assert verdict(prediction, distances, model) == UNSURE
    nearest = {model.members[i] for i in np.argsort(distances)[:2]}
    assert nearest == {"tom-hanks", "halle-berry"}


def test_a_face_named_only_just_inside_the_gate_is_unsure(model):
    halle = model.gallery[model.gallery_members == model.members.index("halle-berry")][0]
    far = model.predict(halle)[0]
    assert far.label == "halle-berry" and verdict(far, model.distances(halle)[0], model) == NAMED
    # Walk the face away from her gallery until it sits just inside the distance gate.
    rng = np.random.default_rng(7)
    away = rng.normal(size=halle.shape)
    away -= away.dot(halle) * halle
    away /= np.linalg.norm(away)
    gate = model.thresholds.max_distance
    for angle in np.linspace(0, np.pi / 2, 400):
        moved = np.cos(angle) * halle + np.sin(angle) * away
        prediction = model.predict(moved)[0]
        if 0.95 * gate <= prediction.distance <= gate and prediction.label == "halle-berry":
            assert verdict(prediction, model.distances(moved)[0], model) == UNSURE
            return
    pytest.fail("no point just inside the gate was found")


def test_only_the_largest_faces_are_named_and_the_rest_counted(model):
    people = [("halle-berry", 1), ("keanu-reeves", 1), ("miley-cyrus", 1)]
    pixels, pasted = group_photo(people)
    answers, skipped = identify(pixels, classifier=model, embedder=embed.embedder(), max_faces=2)
    assert len(answers) == 2 and skipped == 1


def test_a_picture_without_faces_has_no_answers(model):
    gradient = np.tile(np.linspace(0, 255, 320, dtype=np.uint8), (240, 1))
    pixels = np.stack([gradient, gradient[::-1], gradient], axis=-1)
    assert identify(pixels, classifier=model, embedder=embed.embedder()) == ([], 0)
