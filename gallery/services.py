"""Writes to galleries: ingestion and cleaning (one path for uploads, scraping and imports),
face choice, approval, and the duplicate and look-alike flags."""

import contextvars
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils.text import slugify

from base.jobs import job_enqueue, running
from base.units import size_label
from core.faces import embed
from core.images import (
    NEAR_DUPLICATE_BITS,
    ImageRejected,
    encode_jpeg,
    encode_png,
    hash_distance,
    open_image,
    perceptual_hash,
)
from gallery.models import PALETTE, GalleryImage, Group, ImageUpload, Member

log = logging.getLogger(__name__)

LOSSLESS_FORMATS = {"PNG", "GIF", "BMP", "TIFF", "WEBP"}


@dataclass
class IngestResult:
    outcome: str  # "added", "duplicate" or "rejected"
    name: str
    reason: str = ""
    image: GalleryImage | None = None

    def __str__(self):
        return f"{self.name}: {self.outcome}" + (f" ({self.reason})" if self.reason else "")


def group_get_or_create(*, slug: str, name: str | None = None) -> Group:
    group, _ = Group.objects.get_or_create(slug=slug, defaults={"name": name or slug.title()})
    return group


def member_get_or_create(*, group: Group, slug: str, name: str | None = None) -> Member:
    """The group's member with this slug, created with the next palette colour if new."""
    member = group.members.filter(slug=slug).first()
    if member:
        return member
    count = group.members.count()
    return Member.objects.create(
        group=group,
        slug=slugify(slug),
        name=name or slug.replace("-", " ").title(),
        color=next_colour(group),
        order=count,
    )


def next_colour(group: Group | None, *, offset: int = 0) -> str:
    """The palette colour a new member of `group` gets: the first one no member has yet."""
    taken = set(group.members.values_list("color", flat=True)) if group and group.pk else set()
    free = [c for c in PALETTE if c not in taken] or PALETTE
    return free[offset % len(free)]


def image_ingest(
    *,
    member: Member,
    data: bytes,
    name: str,
    source: str = GalleryImage.Source.UPLOAD,
    source_url: str = "",
    uploaded_by=None,
    approve: bool = False,
    skip_near_duplicates: bool = False,
) -> IngestResult:
    """Clean one image file and add it to `member`'s gallery, or say why not."""
    try:
        clean = open_image(
            data, max_pixels=settings.GALLERY_MAX_PIXELS, max_bytes=settings.GALLERY_MAX_BYTES
        )
    except ImageRejected as exc:
        return IngestResult("rejected", name, str(exc))

    in_group = GalleryImage.objects.filter(member__group_id=member.group_id)
    same = in_group.filter(sha256=clean.sha256).select_related("member").first()
    if same:
        return IngestResult("duplicate", name, f"same file as {same}", same)
    phash = perceptual_hash(clean.pixels)
    if skip_near_duplicates:
        near = _near_duplicate(in_group, phash)
        if near:
            return IngestResult("duplicate", name, f"near duplicate of {near}", near)

    lossless = clean.format in LOSSLESS_FORMATS
    encoded = encode_png(clean.pixels) if lossless else encode_jpeg(clean.pixels)
    image = GalleryImage(
        member=member,
        original_name=name[:255],
        source=source,
        source_url=source_url[:1000],
        width=clean.width,
        height=clean.height,
        sha256=clean.sha256,
        phash=phash,
        uploaded_by=uploaded_by,
        reason="; ".join(clean.notes)[:255],
    )
    image.file.save(f"x{'.png' if lossless else '.jpg'}", ContentFile(encoded), save=False)
    _detect(image, clean.pixels)
    if approve and image.face_box is not None and not image.is_small:
        image.status = GalleryImage.Status.APPROVED
    image.save()
    _flags_changed(member.group)
    image.refresh_from_db()
    return IngestResult("added", name, ", ".join(image.flags()), image)


def _near_duplicate(images, phash: str) -> GalleryImage | None:
    for other in images.exclude(phash="").only("pk", "phash", "original_name", "uuid", "member"):
        if hash_distance(phash, other.phash) <= NEAR_DUPLICATE_BITS:
            return other
    return None


def _detect(image: GalleryImage, pixels: np.ndarray) -> None:
    found = embed.find_faces_in_photo(pixels)  # the photo's subject first
    image.detected_boxes = [list(embed.box_of(face)) for face in found]
    image.face_count = len(found)
    image.face_box = None
    image.embedding = None
    image.embedding_model = ""
    small_image = min(image.width, image.height) < settings.GALLERY_MIN_IMAGE_SIDE
    image.is_small = small_image
    if len(found) == 1:
        _set_face(image, pixels, image.detected_boxes[0], keypoints=found[0].keypoints)


def _set_face(image: GalleryImage, pixels: np.ndarray, box: list[int], keypoints=None) -> None:
    image.face_box = [int(v) for v in box]
    face_side = min(box[2] - box[0], box[3] - box[1])
    image.is_small = image.is_small or face_side < settings.GALLERY_MIN_FACE_SIDE
    embedder = embed.embedder(image.member.group.embedding_model)
    chips = embedder.chips(pixels, [box], keypoints=None if keypoints is None else [keypoints])
    image.embedding = np.asarray(embedder.embed_chips(chips)[0], dtype=np.float32).tobytes()
    image.embedding_model = embedder.model_id


def image_pixels(image: GalleryImage) -> np.ndarray:
    with image.file.open("rb") as handle:
        return open_image(handle.read(), max_pixels=settings.GALLERY_MAX_PIXELS).pixels


def image_redetect(*, image: GalleryImage) -> GalleryImage:
    """Run face detection again on a stored image (its chosen face is reset)."""
    if not image.file:
        return image
    _detect(image, image_pixels(image))
    image.save()
    _flags_changed(image.member.group)
    return image


def image_choose_face(*, image: GalleryImage, index: int | None = None) -> GalleryImage:
    """Use detected face number `index` as the image's face, or the whole image when None."""
    pixels = image_pixels(image)
    if index is None:
        box = [0, 0, image.width, image.height]
    else:
        boxes = image.detected_boxes or []
        if not 0 <= index < len(boxes):
            raise ValueError(f"no detected face number {index}")
        box = boxes[index]
    image.is_small = min(image.width, image.height) < settings.GALLERY_MIN_IMAGE_SIDE
    _set_face(image, pixels, box)
    image.save()
    _flags_changed(image.member.group)
    return image


def images_approve(*, images) -> tuple[int, int]:
    """Approve the images that have a chosen face; return (approved, skipped)."""
    ready = [image for image in images if image.face_box is not None]
    ids = [image.pk for image in ready]
    GalleryImage.objects.filter(pk__in=ids).update(status=GalleryImage.Status.APPROVED, reason="")
    return len(ids), len(images) - len(ids)


def images_approve_unless_duplicate(*, images) -> int:
    """Approve the images that have a usable face and are no duplicate of another (read
    after the flags were refreshed): a duplicate adds nothing, so it waits for a curator."""
    rows = GalleryImage.objects.filter(pk__in=[image.pk for image in images])
    rows = rows.filter(face_box__isnull=False, is_small=False, duplicate_of__isnull=True)
    return rows.update(status=GalleryImage.Status.APPROVED)


def images_reject(*, images, reason: str = "rejected by a curator") -> int:
    ids = [image.pk for image in images]
    count = GalleryImage.objects.filter(pk__in=ids).update(
        status=GalleryImage.Status.REJECTED, reason=reason[:255]
    )
    with flags_refreshed_once():
        for group in Group.objects.filter(members__images__in=ids).distinct():
            _flags_changed(group)
    return count


# Groups whose flags are to be refreshed when the outermost flags_refreshed_once() block ends;
# None outside any block (each write refreshes at once).
_stale_groups: contextvars.ContextVar[dict | None] = contextvars.ContextVar(
    "stale_groups", default=None
)


@contextmanager
def flags_refreshed_once() -> Iterator[dict[int, dict[str, int]]]:
    """Writes inside the block refresh each group's flags once, when it ends, instead of after
    every image (an import, a scrape). Yields {group pk: the refresh's counts}, filled at the
    end."""
    outer = _stale_groups.get()
    if outer is not None:  # nested: the outermost block refreshes
        yield {}
        return
    stale: dict[int, Group] = {}
    token = _stale_groups.set(stale)
    stats: dict[int, dict[str, int]] = {}
    try:
        yield stats
    finally:
        _stale_groups.reset(token)
    for pk, group in stale.items():
        stats[pk] = group_refresh_flags(group=group)


def _flags_changed(group: Group) -> None:
    """A write changed the group's images: its duplicate and look-alike flags are stale."""
    stale = _stale_groups.get()
    if stale is None:
        group_refresh_flags(group=group)
    else:
        stale[group.pk] = group


@transaction.atomic
def group_refresh_flags(*, group: Group) -> dict[str, int]:
    """Recompute the duplicate and look-alike flags of every live image in `group`."""
    images = list(
        GalleryImage.objects.filter(member__group=group)
        .exclude(status=GalleryImage.Status.REJECTED)
        .order_by("pk")
    )
    duplicate_of: dict[int, int | None] = {image.pk: None for image in images}
    looks_like: dict[int, int | None] = {image.pk: None for image in images}

    # Perceptual hashes: the older image of a near-identical pair is the original.
    for i, image in enumerate(images):
        for earlier in images[:i]:
            if (
                image.phash
                and earlier.phash
                and hash_distance(image.phash, earlier.phash) <= (NEAR_DUPLICATE_BITS)
            ):
                duplicate_of[image.pk] = earlier.pk
                break

    # Embedding flags compare faces of the group's current model only; the others wait for
    # their re-encoding.
    current = embed.embedder(group.embedding_model)
    with_vectors = [
        (image, image.vector())
        for image in images
        if image.embedding is not None and image.embedding_model == current.model_id
    ]
    if with_vectors:
        vectors = np.stack([vector for _, vector in with_vectors])
        members = np.array([image.member_id for image, _ in with_vectors])
        distances = np.linalg.norm(vectors[:, None, :] - vectors[None, :, :], axis=-1)
        np.fill_diagonal(distances, np.inf)
        for i, (image, _) in enumerate(with_vectors):
            earlier = np.flatnonzero(distances[i, :i] < current.duplicate_distance)
            if duplicate_of[image.pk] is None and earlier.size:
                duplicate_of[image.pk] = with_vectors[int(earlier[0])][0].pk
            looks_like[image.pk] = _lookalike(
                distances[i], members, image.member_id, current.same_person_distance
            )

    changed = []
    for image in images:
        if (image.duplicate_of_id, image.looks_like_id) != (
            duplicate_of[image.pk],
            looks_like[image.pk],
        ):
            image.duplicate_of_id = duplicate_of[image.pk]
            image.looks_like_id = looks_like[image.pk]
            changed.append(image)
    GalleryImage.objects.bulk_update(changed, ["duplicate_of", "looks_like"], batch_size=500)
    return {
        "images": len(images),
        "duplicates": sum(v is not None for v in duplicate_of.values()),
        "lookalikes": sum(v is not None for v in looks_like.values()),
    }


def _lookalike(row: np.ndarray, members: np.ndarray, own: int, plausible: float) -> int | None:
    """The member whose faces are nearer than the image's own member's, if any (and nearer
    than `plausible`: beyond the model's same-person bound it is nobody's look-alike)."""
    # Medians, not nearest neighbours: one mislabelled image must not pull its look-alikes in
    # the right member into suspicion too.
    own_distances = row[(members == own) & np.isfinite(row)]
    if own_distances.size == 0:
        return None  # nothing of its own to compare with
    best, best_score = None, float(np.median(own_distances))
    for other in np.unique(members):
        if other == own:
            continue
        score = float(np.median(row[members == other]))
        if score < best_score and score < plausible:
            best, best_score = int(other), score
    return best


def upload_start(*, member: Member, upload, uploaded_by=None) -> ImageUpload:
    """Store an uploaded file as it came and queue its ingestion; a file over the size limit
    is refused at once, without being stored."""
    with transaction.atomic():
        row = ImageUpload(member=member, original_name=upload.name[:255], uploaded_by=uploaded_by)
        if upload.size > settings.GALLERY_MAX_BYTES:
            limit = size_label(settings.GALLERY_MAX_BYTES)
            row.state, row.outcome = ImageUpload.State.DONE, "rejected"
            row.reason = f"file too large ({size_label(upload.size)}, limit {limit})"
            row.progress, row.stage = 100.0, "done"
            row.save()
            return row
        row.file.save(upload.name, upload, save=False)
        row.stage = "waiting for a worker"
        row.save()
        job_enqueue(row)
    return row


def upload_ingest(*, upload: ImageUpload, attempt: int | None = None) -> ImageUpload:
    """Clean and add one uploaded file (the job); the file as sent is deleted afterwards."""
    with running(upload, attempt=attempt) as progress:
        progress(10, "cleaning and finding faces", force=True)
        with upload.file.open("rb") as handle:
            data = handle.read()
        result = image_ingest(
            member=upload.member,
            data=data,
            name=upload.original_name,
            uploaded_by=upload.uploaded_by,
        )
        progress.update(
            outcome=result.outcome,
            reason=result.reason[:255],
            image=result.image,
        )
    name = upload.file.name
    ImageUpload.objects.filter(pk=upload.pk).update(file="")
    upload.file.storage.delete(name)
    upload.refresh_from_db()
    return upload
