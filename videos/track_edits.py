"""Edits of a track's extent that keep its label: split it, merge two, fix one frame's box.
Also the rule a label change follows, which a correction and a suggestion share."""

import io

import numpy as np
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Max, Min
from PIL import Image

from core.images import encode_jpeg
from gallery.models import Member
from videos.models import Correction, Detection, Track


class CorrectionError(ValueError):
    """The correction cannot be made; the message says why."""


# Kinds that change a track's label (the others: split).
LABEL_KINDS = (
    Correction.Kind.CONFIRM,
    Correction.Kind.MEMBER,
    Correction.Kind.UNKNOWN,
    Correction.Kind.NOT_FACE,
    Correction.Kind.NOT_MEMBER,
)


def unchanged_text(track: Track) -> str:
    label = "not a face" if not track.is_face else (track.member.name if track.member else None)
    return f"it is already {label or 'unknown'}: nothing to change"


def label_after(track: Track, kind: str, member: Member | None):
    """(member, is_face) the track has after a label change of `kind`, or None when the change
    would change nothing a person said before (so it is not recorded)."""
    if kind not in LABEL_KINDS:
        raise CorrectionError(f"unknown correction {kind!r}")
    if kind == Correction.Kind.MEMBER and member is None:
        raise CorrectionError("choose the member this face is")
    if member is not None and member.group_id != track.video.group_id:
        raise CorrectionError(f"{member} is not in {track.video.group}")
    if kind == Correction.Kind.NOT_MEMBER and track.member is None:
        raise CorrectionError("the track names no member to say it is not")
    after = {
        Correction.Kind.CONFIRM: (track.member, True),
        Correction.Kind.MEMBER: (member, True),
        Correction.Kind.UNKNOWN: (None, True),
        Correction.Kind.NOT_FACE: (None, False),
        Correction.Kind.NOT_MEMBER: (None, True),
    }[kind]
    same = after == (track.member, track.is_face)
    if kind == Correction.Kind.NOT_MEMBER or not same:
        return after
    if track.corrected or track.member is None:
        # Said before (or unknown stays unknown): nothing new. A model-named member named
        # again is a confirmation, which is news.
        return None
    return after


def label_kept(track: Track, user, kind: str, **details) -> Correction:
    """Record a change that keeps the track's label (a split, a merge, a box): approved as it
    is made, since no label changes and there is nothing to vet."""
    return Correction.objects.create(
        video=track.video,
        track=track,
        user=user,
        kind=kind,
        before_member=track.member,
        after_member=track.member,
        before_corrected=track.corrected,
        before_is_face=track.is_face,
        review=Correction.Review.APPROVED,
        **details,
    )


@transaction.atomic
def track_split(*, track: Track, user, frame: int) -> Correction:
    """Cut a track in two at `frame`. The second part keeps the label, confidence and
    negatives, and takes the samples (and their faces in the strip) from its own frames."""
    if not track.first_frame < frame <= track.last_frame:
        raise CorrectionError(
            f"split inside the track: after frame {track.first_frame}, up to {track.last_frame}"
        )
    number = (Track.objects.filter(video=track.video).order_by("-number").first().number) + 1
    head_at = [k for k, s in enumerate(track.sample_boxes) if s[0] < frame]
    tail_at = [k for k, s in enumerate(track.sample_boxes) if s[0] >= frame]
    vectors = track.sample_vectors()
    tail = Track.objects.create(
        video=track.video,
        number=number,
        member=track.member,
        candidate=track.candidate,
        confidence=track.confidence,
        corrected=track.corrected,
        is_face=track.is_face,
        first_frame=frame,
        last_frame=track.last_frame,
        embedding_model=track.embedding_model,
        **_samples_of(vectors, track.sample_boxes, tail_at),
    )
    tail.not_members.set(track.not_members.all())
    if track.thumbnail:
        # A strip of its own (deleted with its track), of its own faces where they are known.
        tail.thumbnail.save("strip.jpg", ContentFile(_strip_part(track, tail_at)), save=True)
        if head_at and tail_at:
            track.thumbnail.save("strip.jpg", ContentFile(_strip_part(track, head_at)), save=False)
    Detection.objects.filter(track=track, frame__gte=frame).update(track=tail)
    track.last_frame = frame - 1
    for name, value in _samples_of(vectors, track.sample_boxes, head_at).items():
        setattr(track, name, value)
    track.save()
    return label_kept(track, user, Correction.Kind.SPLIT, split_frame=frame, new_track=tail)


def _samples_of(vectors: np.ndarray, boxes: list, keep: list[int]) -> dict:
    """The fields of a part of a track that keeps samples `keep`; a part with no sample of
    its own keeps them all (something to name it by) but no boxes to crop faces from."""
    if len(vectors) != len(boxes) or not keep:
        chosen, kept_boxes = vectors, [boxes[k] for k in keep] if len(vectors) == len(boxes) else []
    else:
        chosen, kept_boxes = vectors[keep], [boxes[k] for k in keep]
    chosen = np.ascontiguousarray(chosen, dtype=np.float32)
    mean = chosen.mean(axis=0) if len(chosen) else np.zeros(vectors.shape[1], np.float32)
    return {
        "samples": chosen.tobytes(),
        "embedding": mean.astype(np.float32).tobytes(),
        "sample_boxes": kept_boxes,
    }


def _strip_part(track: Track, keep: list[int]) -> bytes:
    """The track's strip cut to the faces of samples `keep` (one square slot per sample, in
    sample order); the whole strip when it does not have that layout."""
    with track.thumbnail.open("rb") as handle:
        data = handle.read()
    picture = Image.open(io.BytesIO(data)).convert("RGB")
    side = picture.height
    if (
        not keep
        or picture.width < side * len(track.sample_boxes)
        or max(keep) >= picture.width // side
    ):
        return data
    pixels = np.asarray(picture)
    slots = [pixels[:, k * side : (k + 1) * side] for k in keep]
    return encode_jpeg(np.concatenate(slots, axis=1), quality=88)


def _join_strips(head: Track, tail: Track) -> bytes | None:
    """Head's strip then tail's, as one (undoing a split puts the faces back together)."""
    if not head.thumbnail or not tail.thumbnail:
        return None
    parts = []
    for track in (head, tail):
        with track.thumbnail.open("rb") as handle:
            parts.append(np.asarray(Image.open(handle).convert("RGB")))
    if parts[0].shape[0] != parts[1].shape[0]:
        return None
    return encode_jpeg(np.concatenate(parts, axis=1), quality=88)


def track_unsplit(track: Track, tail: Track) -> None:
    joined = _join_strips(track, tail)
    Detection.objects.filter(track=tail).update(track=track)
    track.last_frame = max(track.last_frame, tail.last_frame)
    # Samples and their boxes stay in step (the head's first, as the strips are joined).
    vectors = np.concatenate([track.sample_vectors(), tail.sample_vectors()])
    if len(track.sample_boxes) == len(track.sample_vectors()) and tail.sample_boxes:
        track.samples = np.ascontiguousarray(vectors, dtype=np.float32).tobytes()
        track.embedding = vectors.mean(axis=0).astype(np.float32).tobytes()
        track.sample_boxes = track.sample_boxes + tail.sample_boxes
    if joined is not None:
        track.thumbnail.save("strip.jpg", ContentFile(joined), save=False)
    tail.delete()


@transaction.atomic
def track_merge(*, track: Track, other: Track, user) -> Correction:
    """Join `other` into `track`: one person the tracker lost and found again. Both must name
    the same member (or both nobody) and never be on screen at once. Undoable: `other` is
    kept, empty, until then."""
    if other is None or other.pk == track.pk or other.video_id != track.video_id:
        raise CorrectionError("choose another track of this video to merge with")
    if other.merged_into_id is not None:
        raise CorrectionError(f"track {other.number} was merged already")
    if (track.member_id, track.is_face) != (other.member_id, other.is_face):
        raise CorrectionError(
            f"track {track.number} and track {other.number} name different people: "
            "name them the same first"
        )
    if track.first_frame <= other.last_frame and other.first_frame <= track.last_frame:
        raise CorrectionError(
            f"track {track.number} and track {other.number} are on screen at the same time, "
            "so they are two faces"
        )
    correction = label_kept(track, user, Correction.Kind.MERGE, new_track=other)
    joined = _join_strips(track, other)
    Detection.objects.filter(track=other).update(track=track)
    vectors = np.concatenate([track.sample_vectors(), other.sample_vectors()])
    track.samples = np.ascontiguousarray(vectors, dtype=np.float32).tobytes()
    track.embedding = vectors.mean(axis=0).astype(np.float32).tobytes()
    track.sample_boxes = track.sample_boxes + other.sample_boxes
    track.first_frame = min(track.first_frame, other.first_frame)
    track.last_frame = max(track.last_frame, other.last_frame)
    track.corrected = track.corrected or other.corrected
    if joined is not None:
        track.thumbnail.save("strip.jpg", ContentFile(joined), save=False)
    track.save()
    track.not_members.add(*other.not_members.all())
    other.merged_into = track
    other.save(update_fields=["merged_into"])
    return correction


def track_unmerge(track: Track, other: Track | None) -> None:
    """Give `other` its boxes and samples back (they are the ones in its frames)."""
    if other is None:
        raise CorrectionError("the merged track is gone: this merge cannot be undone")
    span = (other.first_frame, other.last_frame)
    Detection.objects.filter(track=track, frame__gte=span[0], frame__lte=span[1]).update(
        track=other
    )
    own = [k for k, s in enumerate(track.sample_boxes) if not span[0] <= s[0] <= span[1]]
    vectors = track.sample_vectors()
    if track.thumbnail:
        track.thumbnail.save("strip.jpg", ContentFile(_strip_part(track, own)), save=False)
    for name, value in _samples_of(vectors, track.sample_boxes, own).items():
        setattr(track, name, value)
    frames = track.detections.exclude(frame__gte=span[0], frame__lte=span[1]).aggregate(
        first=Min("frame"), last=Max("frame")
    )
    track.first_frame, track.last_frame = frames["first"], frames["last"]
    other.merged_into = None
    other.save(update_fields=["merged_into"])


@transaction.atomic
def track_box(*, track: Track, user, frame: int, box: list[int] | None) -> Correction | None:
    """Fix the track's box in one frame where the tracker went wrong: move or resize it, draw
    it where the tracker lost the face, or remove it (`box` None) where it followed something
    else. None when that changes nothing."""
    video = track.video
    if track.merged_into_id is not None:
        raise CorrectionError(f"track {track.number} was merged into another track")
    if not track.is_face:
        raise CorrectionError(f"track {track.number} is not a face: it has no boxes to fix")
    if not video.frames or not video.width or not video.height:
        raise CorrectionError("the video's size and length are not known yet: process it first")
    if not 0 <= frame < video.frames:
        raise CorrectionError(f"the frame must be inside the video: 0 to {video.frames - 1}")
    if box is not None:
        _check_box(video, box)
    here = track.detections.filter(frame=frame).first()
    before = here.box() if here else None
    if before == box:
        return None
    if box is None and not track.detections.exclude(frame=frame).exists():
        raise CorrectionError("this is the track's only box: mark the track not a face instead")
    correction = label_kept(
        track, user, Correction.Kind.BOX, box_frame=frame, before_box=before, after_box=box
    )
    box_set(track, frame, box)
    track.save(update_fields=["first_frame", "last_frame"])
    return correction


def _check_box(video, box: list[int]) -> None:
    left, top, right, bottom = box
    if not (right > left and bottom > top):
        raise CorrectionError("the box is empty: right must be past left, and bottom below top")
    if not (0 <= left and right <= video.width and 0 <= top and bottom <= video.height):
        raise CorrectionError(f"the box must lie inside the {video.width}×{video.height} picture")


def box_set(track: Track, frame: int, box: list[int] | None) -> None:
    """Make `box` the track's box at `frame` (None: no box there), and its first and last
    frame those of its boxes again (a box added or removed at an end moves them)."""
    if box is None:
        track.detections.filter(frame=frame).delete()
    else:
        left, top, right, bottom = box
        Detection.objects.update_or_create(
            track=track,
            frame=frame,
            defaults={
                "video_id": track.video_id,
                "time": track.video.clock().time(frame),  # as the analysis stores it
                "left": left,
                "top": top,
                "right": right,
                "bottom": bottom,
            },
        )
    span = track.detections.aggregate(first=Min("frame"), last=Max("frame"))
    track.first_frame, track.last_frame = span["first"], span["last"]
