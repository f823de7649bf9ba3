"""Reads about galleries that admin pages and commands share."""

from django.db.models import Count, Q

from gallery.models import GalleryImage, Member

HEALTH_PARTS = [
    ("approved", "approved"),
    ("pending", "pending"),
    ("no face chosen", "no_face"),
    ("small", "small"),
    ("duplicates", "duplicates"),
    ("suspected mislabels", "lookalikes"),
]


def health_parts(counts: dict[str, int]) -> list[tuple[str, int]]:
    """The health line's (label, count) pairs, in the order pages show them."""
    return [(label, counts[key]) for label, key in HEALTH_PARTS]


def member_health(member: Member) -> dict[str, int]:
    """Counts a curator watches: approved, pending, flagged, duplicates, suspected mislabels."""
    return members_health(Member.objects.filter(pk=member.pk))[member.pk]


def members_health(members) -> dict[int, dict[str, int]]:
    live = ~Q(images__status=GalleryImage.Status.REJECTED)
    rows = members.annotate(
        approved=Count("images", filter=Q(images__status=GalleryImage.Status.APPROVED)),
        pending=Count("images", filter=Q(images__status=GalleryImage.Status.PENDING)),
        rejected=Count("images", filter=Q(images__status=GalleryImage.Status.REJECTED)),
        no_face=Count("images", filter=live & Q(images__face_box__isnull=True)),
        small=Count("images", filter=live & Q(images__is_small=True)),
        duplicates=Count("images", filter=live & Q(images__duplicate_of__isnull=False)),
        lookalikes=Count("images", filter=live & Q(images__looks_like__isnull=False)),
    ).values(
        "pk", "approved", "pending", "rejected", "no_face", "small", "duplicates", "lookalikes"
    )
    return {row.pop("pk"): row for row in rows}


def flagged(images):
    """Images that need a curator's eye."""
    return images.filter(
        Q(face_box__isnull=True)
        | Q(is_small=True)
        | Q(duplicate_of__isnull=False)
        | Q(looks_like__isnull=False)
    )


def members_with_photo(members) -> set[int]:
    """Ids of the members that gallery:member_photo has a photo of (an approved image with a
    chosen face)."""
    return set(
        GalleryImage.objects.filter(member__in=members, status=GalleryImage.Status.APPROVED)
        .exclude(file="")
        .exclude(face_box=None)
        .values_list("member_id", flat=True)
        .distinct()
    )
