from django.conf import settings
from django.db import models
from django.db.models import Q

from base.models import Job


def classifier_upload_to(instance, filename):
    return f"models/{instance.group.slug}/v{instance.number}-{instance.sha256[:12]}.npz"


class ModelVersion(models.Model):
    """An immutable trained classifier for a group, with the quality it was measured at."""

    group = models.ForeignKey("gallery.Group", on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    file = models.FileField(upload_to=classifier_upload_to, max_length=200)
    sha256 = models.CharField(max_length=64)
    embedding_model = models.CharField(max_length=64)
    members = models.JSONField(help_text="member slugs, in the classifier's order")
    training_counts = models.JSONField(help_text="training faces per member slug")
    metrics = models.JSONField(help_text="cross-validated metrics, with the seed method's")
    is_active = models.BooleanField(default=False)
    # Set when a new version measured worse than the active one and waits for a curator.
    needs_review = models.BooleanField(default=False)
    note = models.CharField(max_length=255, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    activated = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["group", "-number"]
        get_latest_by = "number"
        constraints = [
            models.UniqueConstraint(fields=["group", "number"], name="version_number_unique"),
            models.UniqueConstraint(
                fields=["group"], condition=Q(is_active=True), name="one_active_version_per_group"
            ),
        ]

    def __str__(self):
        return f"{self.group} v{self.number}"

    def accuracy(self) -> float | None:
        return self.metrics.get("accuracy")


class TrainingRun(Job):
    """One request to encode and train a group; requests made while one waits join it."""

    job_function = "recognition.jobs.train_job"

    group = models.ForeignKey("gallery.Group", on_delete=models.CASCADE, related_name="trainings")
    folds = models.PositiveSmallIntegerField(default=5)
    requests = models.PositiveIntegerField(default=1, help_text="requests coalesced into this run")
    reason = models.CharField(max_length=200, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created"]

    def __str__(self):
        return f"training {self.group} #{self.pk}"
