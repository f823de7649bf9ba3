from django.db import models
from django.utils import timezone


class Job(models.Model):
    """What a background job is doing, kept on the row it works for so pages read the database."""

    class State(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    state = models.CharField(max_length=8, choices=State, default=State.QUEUED, db_index=True)
    stage = models.CharField(max_length=100, blank=True)
    progress = models.FloatField(default=0.0, help_text="0 to 100")
    error = models.TextField(blank=True)
    rq_job_id = models.CharField(max_length=64, blank=True)
    created = models.DateTimeField(default=timezone.now, editable=False)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    def is_active(self) -> bool:
        return self.state in (self.State.QUEUED, self.State.RUNNING)

    def job_progress(self) -> dict:
        """The small JSON document that pages poll."""
        return {
            "state": self.state,
            "stage": self.stage,
            "progress": round(self.progress, 1),
            "error": self.error,
        }
