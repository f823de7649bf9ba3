import uuid
from pathlib import PurePosixPath

import numpy as np
from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.urls import reverse

from base.models import Job

COLOUR = RegexValidator(r"^#[0-9a-fA-F]{6}$", "Enter a colour as #rrggbb.")

# Colours handed to new members in order: bright enough for a tag on stage video, and far
# apart (CIE Lab distance 26 or more between any two), since telling look-alike members apart
# is the point. Curators can change a member's colour in admin.
PALETTE = [
    "#ff5fa2", "#4cc9f0", "#ffd166", "#06d6a0", "#f77f00",
    "#9b5de5", "#e63946", "#b5e550", "#3a5aff", "#ffffff",
]  # fmt: skip


class Group(models.Model):
    class Embedding(models.TextChoices):
        # The face models' names in core.faces.embed.EMBEDDINGS.
        ARCFACE = "arcface", "ArcFace MobileFaceNet (512-d)"
        DLIB = "dlib", "dlib ResNet (128-d, Boost licence)"

    name = models.CharField(max_length=100)
    slug = models.SlugField(unique=True)
    # The face model the group's gallery is encoded and trained with. Videos are analysed with
    # their active version's model, so a switch takes effect once its first version is active.
    embedding_model = models.CharField(
        "face model", max_length=16, choices=Embedding, default=Embedding.ARCFACE
    )

    class Naming(models.IntegerChoices):
        # core.classifier.model.POINTS: each version stores the gates of every point.
        SURE = -2, "name only when sure"
        STRICTER = -1, "stricter"
        CROSS_VALIDATED = 0, "as cross-validated (default)"
        LOOSER = 1, "looser"
        MORE = 2, "name more, risk mistakes"

    # The active version's operating point: how sure it must be to name a face. The default is
    # the gates its cross-validation chose; a video job names with the point set when it runs.
    operating_point = models.SmallIntegerField(
        "naming", choices=Naming, default=Naming.CROSS_VALIDATED
    )
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Member(models.Model):
    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="members")
    name = models.CharField(max_length=100)
    slug = models.SlugField()
    color = models.CharField("display colour", max_length=7, validators=[COLOUR])
    order = models.PositiveIntegerField(default=0)
    # The digit that names her on the review page: hers from creation, so adding a member
    # renumbers no one. None once the group has nine.
    hotkey = models.PositiveSmallIntegerField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["group", "order", "name"]
        constraints = [
            models.UniqueConstraint(fields=["group", "slug"], name="member_slug_unique_in_group"),
            models.UniqueConstraint(
                fields=["group", "hotkey"], name="member_hotkey_unique_in_group"
            ),
        ]

    def __str__(self):
        return self.name

    def save(self, *args, **kwargs):
        if self._state.adding and self.hotkey is None:
            self.hotkey = free_hotkey(self.group_id)
        super().save(*args, **kwargs)

    def color_rgb(self) -> tuple[int, int, int]:
        value = self.color.lstrip("#")
        return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


HOTKEYS = range(1, 10)


def free_hotkey(group_id) -> int | None:
    """The lowest digit no member of the group holds (1-9), or None when all are taken."""
    taken = set(
        Member.objects.filter(group_id=group_id, hotkey__isnull=False).values_list(
            "hotkey", flat=True
        )
    )
    return next((key for key in HOTKEYS if key not in taken), None)


def gallery_upload_to(instance, filename):
    suffix = PurePosixPath(filename).suffix.lower() or ".png"
    return f"gallery/{instance.uuid.hex[:2]}/{instance.uuid.hex}{suffix}"


class GalleryImage(models.Model):
    class Source(models.TextChoices):
        UPLOAD = "upload"
        SCRAPE = "scrape"
        IMPORT = "import"
        CORRECTION = "correction"

    class Status(models.TextChoices):
        PENDING = "pending"
        APPROVED = "approved"
        REJECTED = "rejected"

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="images")
    # Empty for embedding-only samples imported from the original scripts' pickles.
    file = models.ImageField(upload_to=gallery_upload_to, blank=True, max_length=200)
    original_name = models.CharField(max_length=255, blank=True)
    source = models.CharField(max_length=12, choices=Source, default=Source.UPLOAD)
    source_url = models.URLField(max_length=1000, blank=True)
    status = models.CharField(max_length=10, choices=Status, default=Status.PENDING, db_index=True)
    reason = models.CharField(max_length=255, blank=True)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True, db_index=True)
    phash = models.CharField("perceptual hash", max_length=64, blank=True)
    # Faces found by the detector, [[left, top, right, bottom], ...]; None until detection ran.
    detected_boxes = models.JSONField(null=True, blank=True)
    face_count = models.PositiveSmallIntegerField(null=True, blank=True)
    face_box = models.JSONField(null=True, blank=True)
    embedding = models.BinaryField(null=True, blank=True, editable=False)
    embedding_model = models.CharField(max_length=64, blank=True)
    # Flags, recomputed when the gallery changes.
    is_small = models.BooleanField("too small", default=False)
    duplicate_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="duplicates"
    )
    looks_like = models.ForeignKey(
        Member, null=True, blank=True, on_delete=models.SET_NULL, related_name="lookalike_images"
    )
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )

    class Meta:
        ordering = ["member", "-created"]
        indexes = [models.Index(fields=["member", "status"])]

    def __str__(self):
        return f"{self.member} · {self.original_name or self.uuid.hex[:8]}"

    def get_absolute_url(self):
        return reverse("admin:gallery_galleryimage_change", args=[self.pk])

    def vector(self) -> np.ndarray | None:
        """The stored face embedding as a float32 array, or None."""
        if self.embedding is None:
            return None
        return np.frombuffer(bytes(self.embedding), dtype=np.float32)

    def flags(self) -> list[str]:
        """Short words for what a curator should look at."""
        out = []
        if self.face_count == 0:
            out.append("no face")
        elif self.face_count is not None and self.face_count > 1 and self.face_box is None:
            out.append(f"{self.face_count} faces")
        if self.is_small:
            out.append("small")
        if self.duplicate_of_id:
            out.append("duplicate")
        if self.looks_like_id:
            out.append(f"looks like {self.looks_like}")
        return out

    def ready_for_approval(self) -> bool:
        return self.status == self.Status.PENDING and self.face_box is not None


class ScrapeRun(Job):
    """One image-search scrape for a member, run as a background job."""

    job_function = "gallery.jobs.scrape_job"

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="scrape_runs")
    keyword = models.CharField(max_length=200)
    engine = models.CharField(max_length=20)
    requested = models.PositiveIntegerField()
    downloaded = models.PositiveIntegerField(default=0)
    added = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )

    class Meta:
        ordering = ["-created"]

    def __str__(self):
        return f"{self.engine} “{self.keyword}” for {self.member}"


def incoming_upload_to(instance, filename):
    suffix = PurePosixPath(filename).suffix.lower()[:8]
    return f"gallery/incoming/{uuid.uuid4().hex}{suffix}"


class ImageUpload(Job):
    """One image file a curator uploaded, cleaned and added to the gallery by a job: decoding
    and face detection never run inside the web request."""

    job_function = "gallery.jobs.ingest_upload_job"

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="uploads")
    # The file as it was sent; deleted once it is ingested (the gallery keeps its clean copy).
    file = models.FileField(upload_to=incoming_upload_to, blank=True, max_length=200)
    original_name = models.CharField(max_length=255)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    outcome = models.CharField(max_length=12, blank=True)  # "added", "duplicate" or "rejected"
    reason = models.CharField(max_length=255, blank=True)
    image = models.ForeignKey(GalleryImage, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["-created"]

    def __str__(self):
        return f"{self.original_name} for {self.member}"
