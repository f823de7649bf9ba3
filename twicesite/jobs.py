"""Helpers for RQ jobs whose status lives on a model row (see twicesite.models.Job)."""

import logging
import time
import traceback
from contextlib import contextmanager

from django.db import close_old_connections, connection
from django.utils import timezone

log = logging.getLogger(__name__)


class Progress:
    """Write stage and percentage to a Job row, at most every `interval` seconds."""

    def __init__(self, row, *, interval: float = 0.5, echo=None):
        self.row = row
        self.interval = interval
        self.echo = echo  # called with the row after each write (a command's console line)
        self._last = 0.0

    def __call__(self, percent: float, stage: str | None = None, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and stage is None and now - self._last < self.interval:
            return
        self._last = now
        fields = {"progress": max(0.0, min(100.0, percent))}
        if stage is not None:
            fields["stage"] = stage
        type(self.row).objects.filter(pk=self.row.pk).update(**fields)
        for name, value in fields.items():
            setattr(self.row, name, value)
        if self.echo is not None:
            self.echo(self.row)


@contextmanager
def running(row, *, echo=None):
    """Mark `row` running; done on success; failed with the error on an exception (re-raised).

    Yields a Progress for the row; `echo` also receives the row at each progress write."""
    if not connection.in_atomic_block:
        close_old_connections()  # a long-lived worker may hold a connection the server dropped
    model = type(row)
    model.objects.filter(pk=row.pk).update(
        state=model.State.RUNNING, started=timezone.now(), error="", progress=0.0
    )
    row.refresh_from_db()
    try:
        yield Progress(row, echo=echo)
    except BaseException as exc:
        message = f"{type(exc).__name__}: {exc}"
        log.error("%s %s failed: %s\n%s", model.__name__, row.pk, message, traceback.format_exc())
        model.objects.filter(pk=row.pk).update(
            state=model.State.FAILED, error=message, finished=timezone.now()
        )
        raise
    else:
        model.objects.filter(pk=row.pk).update(
            state=model.State.DONE, progress=100.0, stage="done", finished=timezone.now()
        )
        row.refresh_from_db()
        if echo is not None:
            echo(row)


def reconcile(row) -> bool:
    """Mark `row` failed if its RQ job died without saying so (worker killed, job lost).

    A killed work-horse or machine cannot run our error handling, so pages that show a job's
    state call this first. Returns whether the row changed.
    """
    if not row.is_active() or not row.rq_job_id:
        return False
    import django_rq
    from rq.exceptions import NoSuchJobError
    from rq.job import Job as RQJob
    from rq.job import JobStatus

    connection = django_rq.get_connection("default")
    try:
        job = RQJob.fetch(row.rq_job_id, connection=connection)
        status = job.get_status()
    except NoSuchJobError:
        job, status = None, None
    if status in (JobStatus.QUEUED, JobStatus.STARTED, JobStatus.DEFERRED, JobStatus.SCHEDULED):
        return False
    if status == JobStatus.FINISHED:
        row.refresh_from_db()
        return False
    reason = "the job was lost (its queue was emptied)"
    if job is not None:
        result = job.latest_result()
        last = (result.exc_string or "").strip().splitlines() if result else []
        reason = last[-1] if last else f"the job ended as {status}"
    model = type(row)
    changed = model.objects.filter(
        pk=row.pk, state__in=[model.State.QUEUED, model.State.RUNNING]
    ).update(
        state=model.State.FAILED, error=f"worker stopped: {reason}"[:2000], finished=timezone.now()
    )
    row.refresh_from_db()
    return bool(changed)
