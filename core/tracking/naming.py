"""Naming tracks: a classifier's decision on each track's samples, then the one clash rule,
a member is named at most once in any frame. The same code names a fresh analysis and
relabels stored tracks, which come as arrays of samples and frame numbers."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from core.tracking.tracks import Track


@dataclass(frozen=True)
class Name:
    label: str | None  # a member, or None: unknown
    candidate: str | None  # the most likely member, named or not
    confidence: float


@dataclass(frozen=True)
class Fixed:
    """A name a person gave a track: it wins every clash with the model."""

    label: str
    frames: np.ndarray


def name_samples(
    samples: Sequence[np.ndarray | None],
    frames: Sequence[np.ndarray],
    classifier,
    fixed: Sequence[Fixed] = (),
    excluded: Sequence[Collection[str]] | None = None,
) -> list[Name]:
    """Name each track from its (n, D) samples, then settle clashes.

    `frames[i]` are the frame numbers track i has a box in. Two tracks on screen together
    with one name: the one with the higher confidence keeps it, the other becomes unknown;
    a `fixed` track of that name beats both. `excluded[i]`: members a person said track i
    is not; it is never named one of them."""
    names = []
    for i, vectors in enumerate(samples):
        if vectors is None or not len(vectors):
            names.append(Name(None, None, 0.0))
            continue
        banned = excluded[i] if excluded else ()
        prediction = (
            classifier.predict_track(vectors, banned)
            if banned
            else classifier.predict_track(vectors)
        )
        candidate = prediction.candidate or None
        names.append(Name(prediction.label, candidate, float(prediction.confidence)))
    losers = clash_losers(
        [n.label for n in names], [n.confidence for n in names], frames, fixed=fixed
    )
    return [
        Name(None, n.candidate, n.confidence) if i in losers else n for i, n in enumerate(names)
    ]


def clash_losers(
    labels: Sequence[str | None],
    confidences: Sequence[float],
    frames: Sequence[np.ndarray],
    *,
    fixed: Sequence[Fixed] = (),
) -> set[int]:
    """Indices of the tracks that lose their name: named as a track of higher confidence (or a
    fixed one) that shares a frame with them."""
    spans = [(int(f.min()), int(f.max())) if len(f) else (0, -1) for f in frames]
    order = sorted(range(len(labels)), key=lambda i: -confidences[i])
    winners: list[tuple[str, tuple[int, int], np.ndarray]] = [
        (f.label, (int(f.frames.min()), int(f.frames.max())), f.frames)
        for f in fixed
        if len(f.frames)
    ]
    losers = set()
    for i in order:
        if labels[i] is None:
            continue
        lo, hi = spans[i]
        if any(
            label == labels[i]
            and span[0] <= hi
            and lo <= span[1]
            and np.intersect1d(frames[i], theirs, assume_unique=True).size
            for label, span, theirs in winners
        ):
            losers.add(i)
            continue
        winners.append((labels[i], spans[i], frames[i]))
    return losers


def name_tracks(tracks: list[Track], classifier) -> None:
    """Name freshly analysed tracks in place.

    On one BLAS thread: the products are small (a track's samples against the gallery), and
    while analysis processes keep every core busy a second BLAS thread only waits for a core;
    it cost 2.7 of the 13 CPU-s a 10-minute video's job spent outside its analysis processes."""
    frames = [np.fromiter(t.boxes, dtype=np.int64, count=len(t.boxes)) for t in tracks]
    with threadpool_limits(limits=1, user_api="blas"):
        names = name_samples([t.samples for t in tracks], frames, classifier)
    for track, name in zip(tracks, names, strict=True):
        track.label, track.candidate, track.confidence = name.label, name.candidate, name.confidence
