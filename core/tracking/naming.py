"""Naming tracks: a classifier's decision on each track's samples, then the one clash rule,
a member is named at most once in any frame. The same code names a fresh analysis and
relabels stored tracks, which come as arrays of samples and frame numbers."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from core.tracking.tracks import Settings, Track, bridge_hidden


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
    kin: Sequence[int | None] | None = None,
) -> list[Name]:
    """Name each track from its (n, D) samples, then settle clashes.

    `frames[i]` are the frame numbers track i has a box in. Two tracks on screen together
    with one name: the one with the higher confidence keeps it, the other becomes unknown;
    a `fixed` track of that name beats both. `excluded[i]`: members a person said track i
    is not; it is never named one of them. `kin[i]`: tracks split from one track share it
    (None: never split); neighbouring parts with one candidate are named together."""
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
    if kin is not None:
        _name_kin_together(names, samples, frames, classifier, kin, excluded)
    losers = clash_losers(
        [n.label for n in names], [n.confidence for n in names], frames, fixed=fixed
    )
    return [
        Name(None, n.candidate, n.confidence) if i in losers else n for i, n in enumerate(names)
    ]


def _name_kin_together(names, samples, frames, classifier, kin, excluded) -> None:
    """Parts of a split track next to each other with the same candidate are one face whose
    looks changed (it turned, a hand covered it, the light changed), not two people crossing:
    named together on all their samples, when that names them. On three harsh stage videos
    a track split so lost its name in one part in 6 of 10 such splits."""
    groups: dict[int, list[int]] = {}
    for i, key in enumerate(kin):
        usable = samples[i] is not None and len(samples[i]) and not (excluded and excluded[i])
        if key is not None and usable:
            groups.setdefault(key, []).append(i)
    for parts in groups.values():
        parts.sort(key=lambda i: int(frames[i].min()) if len(frames[i]) else 0)
        runs = [[parts[0]]]
        for i in parts[1:]:
            if (
                names[i].candidate is not None
                and names[i].candidate == names[runs[-1][-1]].candidate
            ):
                runs[-1].append(i)
            else:
                runs.append([i])
        for run in runs:
            if len(run) < 2:
                continue
            joint = classifier.predict_track(np.concatenate([samples[i] for i in run]))
            if joint.label is not None:
                for i in run:
                    names[i] = Name(joint.label, joint.candidate or None, float(joint.confidence))


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


def name_tracks(
    tracks: list[Track],
    classifier,
    *,
    cuts: list[int] | None = None,
    settings: Settings | None = None,
) -> None:
    """Name freshly analysed tracks in place; given the video's `cuts`, a member's face lost
    behind another for a while is boxed through it (tracks.bridge_hidden).

    On one BLAS thread: the products are small (a track's samples against the gallery), and
    while analysis processes keep every core busy a second BLAS thread only waits for a core;
    it cost 2.7 of the 13 CPU-s a 10-minute video's job spent outside its analysis processes."""
    frames = [np.fromiter(t.boxes, dtype=np.int64, count=len(t.boxes)) for t in tracks]
    with threadpool_limits(limits=1, user_api="blas"):
        names = name_samples(
            [t.samples for t in tracks], frames, classifier, kin=[t.kin for t in tracks]
        )
    for track, name in zip(tracks, names, strict=True):
        track.label, track.candidate, track.confidence = name.label, name.candidate, name.confidence
    if cuts is not None:
        bridge_hidden(tracks, cuts, settings or Settings())
