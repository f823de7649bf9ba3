from typing import ClassVar

from django.db import models
from django.utils import timezone


class Job(models.Model):
    """What a background job is doing, kept on the row it works for so pages read the database.

    The row is the promise that the work gets done: it is queued through `jobs.job_enqueue`,
    and `jobs.jobs_sweep` queues it again when Redis or a worker loses its job. Every enqueue
    bumps `attempt`, and a job writes to its row only while its attempt is the current one, so
    a job whose row was deleted, cancelled or queued again stops at its next progress report.
    """

    class State(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    state = models.CharField(max_length=8, choices=State, default=State.QUEUED, db_index=True)
    stage = models.CharField(max_length=100, blank=True)
    progress = models.FloatField(default=0.0, help_text="0 to 100")
    error = models.TextField(blank=True)
    rq_job_id = models.CharField(max_length=100, blank=True)
    attempt = models.PositiveIntegerField(default=0, help_text="bumped at every enqueue")
    losses = models.PositiveSmallIntegerField(
        default=0, help_text="times the queue lost the job since a person last queued it"
    )
    created = models.DateTimeField(default=timezone.now, editable=False)
    enqueued = models.DateTimeField(null=True, blank=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)

    # The RQ entry point that does the row's work, called as function(pk, attempt).
    job_function: ClassVar[str] = ""
    job_queue: ClassVar[str] = "default"
    job_timeout: ClassVar[int] = 3600

    class Meta:
        abstract = True

    def is_active(self) -> bool:
        return self.state in (self.State.QUEUED, self.State.RUNNING)

    def can_retry(self) -> bool:
        return self.state == self.State.FAILED and bool(self.job_function)

    def job_progress(self) -> dict:
        """The small JSON document that pages poll."""
        return {
            "state": self.state,
            "stage": self.stage,
            "progress": round(self.progress, 1),
            "error": self.error,
        }
