"""Who is in a picture: every face found in it, named by a group's classifier, called a
stranger, or marked unsure with the two members it is closest to.

Django-free: it takes RGB pixels, a classifier and the embedder the classifier's gallery was
encoded with, and returns values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.classifier.model import FaceClassifier, Prediction
from core.faces import embed

# A picture is answered at once, inside the request: at most this many faces are named, the
# largest first (about 10 ms of ArcFace each on one core); smaller ones are counted, not named.
MAX_FACES = 20

# A face named within this share of the classifier's distance gate is unsure: the gate let it
# through, but only just. On the fixture faces (classifiers of four people trained on three or
# five photos each), unseen photos of known people were named at 0.93 of the gate or closer
# (mostly under 0.88), and the strangers a gate let through came at 0.92 of it or farther.
UNSURE_BAND = 0.10

NAMED, UNSURE, STRANGER = "named", "unsure", "stranger"


@dataclass(frozen=True)
class Answer:
    """One face of a picture: where it is and who the classifier says it is."""

    box: tuple[float, float, float, float]  # left, top, right, bottom in the picture's pixels
    member: str | None  # the classifier's decision: a member, or None (not named)
    confidence: float  # the classifier's score for its most likely member
    verdict: str  # NAMED, UNSURE or STRANGER
    # The two members it is closest to: the classifier's most likely one, then the member
    # with the nearest gallery face among the others; each with its score and that distance.
    candidates: tuple[tuple[str, float, float], ...]


def verdict(prediction: Prediction, distances: np.ndarray, clf: FaceClassifier) -> str:
    """NAMED, UNSURE or STRANGER for one face, from its prediction and its distance to each
    member's nearest gallery face."""
    gate = clf.look_alike_distance
    if prediction.label is None:
        # Near a member's faces but below the probability gate: torn between members.
        return UNSURE if prediction.distance <= gate else STRANGER
    others = np.delete(distances, clf.members.index(prediction.label))
    # Another member's gallery holds a face as near as the gate allows for one person: to
    # this model the two look alike here.
    look_alike = others.size > 0 and others.min() <= gate
    near_gate = prediction.distance >= gate * (1 - UNSURE_BAND)
    return UNSURE if look_alike or near_gate else NAMED


def identify(
    pixels: np.ndarray, *, classifier: FaceClassifier, embedder, max_faces: int = MAX_FACES
) -> tuple[list[Answer], int]:
    """The answers for the picture's faces, left to right, and how many more faces were found
    than `max_faces` (the smallest, left unnamed)."""
    found = embed.find_faces_in_photo(pixels)
    found.sort(key=lambda f: -(f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
    kept, skipped = found[:max_faces], max(0, len(found) - max_faces)
    kept.sort(key=lambda f: (f.box[0], f.box[1]))
    if not kept:
        return [], skipped
    chips = embedder.chips(pixels, [f.box for f in kept], keypoints=[f.keypoints for f in kept])
    vectors = embedder.embed_chips(chips)
    predictions = classifier.predict(vectors)
    scores = classifier.scores(vectors)
    distances = classifier.distances(vectors)
    members = classifier.members
    answers = []
    for face, prediction, row, near in zip(kept, predictions, scores, distances, strict=True):
        first = members.index(prediction.candidate)
        order = [first] + [i for i in np.argsort(near, kind="stable") if i != first][:1]
        answers.append(
            Answer(
                box=tuple(float(v) for v in face.box),
                member=prediction.label,
                confidence=float(prediction.confidence),
                verdict=verdict(prediction, near, classifier),
                candidates=tuple((members[i], float(row[i]), float(near[i])) for i in order),
            )
        )
    return answers, skipped
