"""Background jobs whose state lives on a model row (see base.models.Job).

One helper queues every job (`job_enqueue`), and one sweep (`jobs_sweep`) keeps the promise the
row makes: a job that Redis forgot (a restart empties it), or whose worker was killed under any
name, is queued again up to MAX_LOSSES times, then ends failed with a reason and a Retry.
A job writes to its row only while its attempt is current (`running`, `Progress`,
`job_fence`): a row deleted, cancelled or queued again makes the old job stop (`JobGone`).
"""

from __future__ import annotations

import logging
import socket
import time
import traceback
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

import django_rq
import redis
from django.apps import apps
from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from redis.exceptions import RedisError
from rq.command import send_stop_job_command
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job as RQJob
from rq.job import JobStatus
from rq.registry import StartedJobRegistry
from rq.worker import Worker

from base.models import Job
from core.processes import pid_alive, process_token, token_process_gone

log = logging.getLogger(__name__)

# Times the sweep queues a lost job again before it fails for good (a person can still retry).
MAX_LOSSES = 3
# A row queued this recently may still be on its way to Redis (sent when its transaction
# commits): the sweep leaves it alone.
SEND_GRACE = timedelta(seconds=10)
ACTIVE = (Job.State.QUEUED, Job.State.RUNNING)
REDIS_ERRORS = (redis.RedisError, OSError)
# Marks a row processed by a command in this process rather than by an RQ job.
LOCAL_PREFIX = "local:"


class JobGone(Exception):
    """The row was deleted, cancelled or queued again: this run of its job must stop."""


class JobFailed(Exception):
    """The work cannot be done, for a reason its message says in plain words; the row shows
    the message as it is (other exceptions show with their type, for whoever debugs them)."""


def job_models() -> list[type[Job]]:
    """Every concrete model whose rows are jobs."""
    return [m for m in apps.get_models() if issubclass(m, Job)]


# --- queueing -------------------------------------------------------------------------------


def job_enqueue(row: Job, *, expect_attempt: int | None = None, reason: str = "") -> bool:
    """Queue the row's job once the surrounding transaction commits.

    If Redis cannot take it then, the row stays queued and the sweep sends it when Redis is
    back, so a row once saved is never lost. With `expect_attempt` (the sweep's re-enqueue),
    nothing happens unless the row is still at that attempt; returns whether it was queued.
    """
    model = type(row)
    fence = Q(pk=row.pk) if expect_attempt is None else Q(pk=row.pk, attempt=expect_attempt)
    fields = {
        "attempt": F("attempt") + 1,
        "state": Job.State.QUEUED,
        "stage": f"waiting for a worker ({reason})" if reason else "waiting for a worker",
        "progress": 0.0,
        "error": "",
        "enqueued": timezone.now(),
        "started": None,
        "finished": None,
    }
    if expect_attempt is None:
        fields["losses"] = 0  # a person (or a first submit) queued it
    with transaction.atomic():
        if not model.objects.filter(fence).update(**fields):
            return False
        row.refresh_from_db(fields=[*fields, "losses"])
        row.rq_job_id = f"{model._meta.app_label}-{model._meta.model_name}-{row.pk}-{row.attempt}"
        model.objects.filter(pk=row.pk).update(rq_job_id=row.rq_job_id)
        pk, attempt, job_id = row.pk, row.attempt, row.rq_job_id
        transaction.on_commit(
            lambda: job_send(model, model.job_function, (pk, attempt), job_id=job_id, row_pk=pk)
        )
    return True


def job_send(
    model: type[Job],
    function: str | Callable,
    args: tuple,
    *,
    job_id: str,
    row_pk: int,
    depends_on: list | None = None,
):
    """Put one RQ job for a row of `model` on its queue now; None when Redis cannot take it."""

    try:
        queue = django_rq.get_queue(model.job_queue, commit_mode="auto")
        return queue.enqueue(
            function,
            *args,
            job_id=job_id,
            job_timeout=model.job_timeout,
            depends_on=depends_on,
            # A failure is read by the sweep within seconds; a day is plenty to debug it.
            failure_ttl=24 * 3600,
            result_ttl=3600,
        )
    except REDIS_ERRORS as exc:
        log.warning("%s %s: not queued yet, Redis did not answer (%s)", model.__name__, row_pk, exc)
        model.objects.filter(pk=row_pk, state=Job.State.QUEUED).update(
            stage="waiting for the queue: it is not answering; this will be retried"
        )
        return None


@dataclass(frozen=True)
class JobCall:
    """One RQ job of a row's work: the job function, its arguments, and the end of its id."""

    function: Callable
    args: tuple
    name: str


def job_fan_out(row: Job, attempt: int, parts: list[JobCall], then: JobCall) -> None:
    """Queue `parts` to run side by side on any worker, and `then` to run once all of them
    are done; the row follows `then` from here on (pages, the sweep). The jobs are named
    after the row's attempt ("videos-video-7-1-seg0"), so a retry never mixes with them.
    Raises if the queue stops answering meanwhile: the job fanning out fails, and the sweep
    queues it again."""
    model = type(row)
    base = f"{model._meta.app_label}-{model._meta.model_name}-{row.pk}-{attempt}"

    def send(call: JobCall, depends_on=None):
        job_id = f"{base}-{call.name}"
        job = job_send(
            model, call.function, call.args, job_id=job_id, row_pk=row.pk, depends_on=depends_on
        )
        if job is None:
            raise RuntimeError(f"the queue stopped answering while {call.name} was queued")
        return job

    queued = [send(call) for call in parts]
    last = send(then, depends_on=queued)
    Progress(row, attempt=attempt).update(rq_job_id=last.id)


def job_retry(row: Job) -> bool:
    """Queue a failed row's job again, as a person's Retry does; returns whether it was."""
    if not row.can_retry():
        return False
    return job_enqueue(row)


def job_cancel(row: Job, *, by: str = "") -> bool:
    """Stop a queued or running job for good; returns whether it was active.

    The row's attempt is bumped with the state, so the run that holds the old attempt cannot
    write again: it stops at its next progress report (`JobGone`), and its RQ job is taken off
    the queue, or its work horse stopped, at once. Retry queues it again from the start."""
    model = type(row)
    who = f" by {by}" if by else ""
    changed = model.objects.filter(pk=row.pk, state__in=ACTIVE).update(
        attempt=F("attempt") + 1,
        state=Job.State.FAILED,
        stage="cancelled",
        error=f"Cancelled{who}.",
        finished=timezone.now(),
    )
    if changed and row.rq_job_id and not row.rq_job_id.startswith(LOCAL_PREFIX):
        _stop_rq_job(row.rq_job_id)
    row.refresh_from_db()
    return bool(changed)


def _stop_rq_job(job_id: str) -> None:
    """Take an RQ job off its queue, or stop the work horse running it."""

    try:
        conn = django_rq.get_connection("default")
        job = RQJob.fetch(job_id, connection=conn)
        if job.get_status() == JobStatus.STARTED:
            send_stop_job_command(conn, job_id)
        else:
            job.cancel()
    except (NoSuchJobError, InvalidJobOperation):
        pass  # already gone or finished: the fence stops what is left
    except REDIS_ERRORS as exc:
        log.warning("job %s: not taken off the queue, Redis did not answer (%s)", job_id, exc)


def job_run_locally(row: Job) -> int:
    """Claim a row for work done in this process (a command), not by an RQ job; the sweep
    fails it if this process dies. Returns the attempt to run as."""
    model = type(row)
    model.objects.filter(pk=row.pk).update(
        attempt=F("attempt") + 1,
        rq_job_id=f"{LOCAL_PREFIX}{process_token()}",
        enqueued=timezone.now(),
    )
    row.refresh_from_db(fields=["attempt", "rq_job_id", "enqueued"])
    return row.attempt


# --- running --------------------------------------------------------------------------------


def job_entry(model: type[Job], pk: int, work, *, related: tuple[str, ...] = ()):
    """Load the row and return work(row); a row deleted or queued again ends the job quietly.

    RQ entry points are this and nothing more, so they stay thin."""
    row = model.objects.select_related(*related).filter(pk=pk).first()
    if row is None:
        return f"{model._meta.verbose_name} {pk} is gone"
    try:
        return work(row)
    except JobGone as exc:
        log.info("%s %s: stopped: %s", model.__name__, pk, exc)
        return f"stopped: {exc}"


def job_fence(model: type[Job], pk: int, attempt: int, *, lock: bool = False) -> Job:
    """The row if `attempt` is still its current one; raise JobGone otherwise.

    With `lock` (inside a transaction) the row stays locked until it commits, so the row
    cannot be deleted between this check and the writes that follow."""
    rows = model.objects.filter(pk=pk)
    if lock:
        rows = rows.select_for_update()
    row = rows.first()
    if row is None:
        raise JobGone(f"{model._meta.verbose_name} {pk} was deleted")
    if row.attempt != attempt:
        raise JobGone(f"{model._meta.verbose_name} {pk} was queued again (attempt {row.attempt})")
    return row


class Progress:
    """Write stage and percentage to a Job row, at most every `interval` seconds."""

    def __init__(self, row, *, attempt: int, interval: float = 0.5, echo=None):
        self.row = row
        self.attempt = attempt
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
        self.update(**fields)
        for name, value in fields.items():
            setattr(self.row, name, value)
        if self.echo is not None:
            self.echo(self.row)

    def update(self, **fields) -> None:
        """Write fields of the row, or raise JobGone if this run no longer owns it."""
        model = type(self.row)
        if not model.objects.filter(pk=self.row.pk, attempt=self.attempt).update(**fields):
            raise JobGone(f"{model._meta.verbose_name} {self.row.pk} was deleted or queued again")


@contextmanager
def running(row, *, attempt: int | None = None, echo=None, start: bool = True, finish: bool = True):
    """Mark `row` running; done on success; failed with the error on an exception (re-raised).

    Every write is fenced by `attempt` (the row's current one when None): JobGone passes
    through untouched, since the row belongs to someone else now. Yields a Progress.

    Work that several jobs do one after another: `start=False` for the jobs after the first
    (the row stays as it is: running since the first began, its progress kept), and
    `finish=False` for those before the last (success leaves the row running)."""
    if not connection.in_atomic_block:
        close_old_connections()  # a long-lived worker may hold a connection the server dropped
    model = type(row)
    attempt = row.attempt if attempt is None else attempt
    progress = Progress(row, attempt=attempt, echo=echo)
    if start:
        progress.update(state=Job.State.RUNNING, started=timezone.now(), error="", progress=0.0)
    else:
        progress.update(state=Job.State.RUNNING)  # fenced like every write
    row.refresh_from_db()
    try:
        yield progress
    except JobGone:
        raise
    except BaseException as exc:
        message = str(exc) if isinstance(exc, JobFailed) else f"{type(exc).__name__}: {exc}"
        log.error("%s %s failed: %s\n%s", model.__name__, row.pk, message, traceback.format_exc())
        model.objects.filter(pk=row.pk, attempt=attempt).update(
            state=Job.State.FAILED, error=message, finished=timezone.now()
        )
        raise
    if not finish:
        return
    progress.update(state=Job.State.DONE, progress=100.0, stage="done", finished=timezone.now())
    row.refresh_from_db()
    if echo is not None:
        echo(row)


# --- the sweep ------------------------------------------------------------------------------

LOST, FAILED = "lost", "failed"


def jobs_sweep() -> dict[str, int]:
    """Queue again every active row whose job is gone; fail those lost too often.

    Run by every worker every few seconds (one at a time) and at its start, so a Redis restart
    or a worker killed under any name costs a job a few seconds, not the job."""

    counts = {"checked": 0, "requeued": 0, "failed": 0}
    conn = django_rq.get_connection("default")
    try:
        # Jobs whose worker stopped sending heartbeats (another machine died) are failed by
        # RQ's own registry cleanup; the rows are then queued again below.
        for name in settings.QUEUE_NAMES:
            StartedJobRegistry(name, connection=conn).cleanup()
        cutoff = timezone.now() - SEND_GRACE
        for model in job_models():
            rows = model.objects.filter(state__in=ACTIVE).filter(
                Q(enqueued__lt=cutoff) | Q(enqueued=None)
            )
            for row in rows.exclude(rq_job_id=""):
                counts["checked"] += 1
                outcome = _settle(row, conn)
                if outcome:
                    counts[outcome] += 1
    except REDIS_ERRORS as exc:
        log.warning("job sweep stopped: Redis did not answer (%s)", exc)
    return counts


def job_reconcile(row: Job) -> bool:
    """Settle one row whose page is being looked at; returns whether the row changed.

    Pages call this, so a lost job shows as queued again or failed without waiting for a
    worker's sweep. With Redis down it changes nothing: the row says it is waiting."""
    if not row.is_active() or not row.rq_job_id:
        return False
    if row.enqueued and timezone.now() - row.enqueued < SEND_GRACE:
        return False

    try:
        changed = _settle(row, django_rq.get_connection("default")) is not None
    except REDIS_ERRORS:
        return False
    row.refresh_from_db()
    return changed


def job_alive(row: Job) -> bool:
    """Whether the row's job is queued or running somewhere that is still alive."""

    if not row.is_active():
        return False
    if row.rq_job_id.startswith(LOCAL_PREFIX):
        return _local_verdict(row) is None
    return _rq_verdict(row.rq_job_id, django_rq.get_connection("default")) is None


def _settle(row: Job, conn) -> str | None:
    if row.rq_job_id.startswith(LOCAL_PREFIX):
        verdict = _local_verdict(row)
    else:
        verdict = _rq_verdict(row.rq_job_id, conn)
    if verdict is None:
        return None
    kind, reason = verdict
    model = type(row)
    if kind == LOST and row.job_function and row.losses < MAX_LOSSES:
        model.objects.filter(pk=row.pk, attempt=row.attempt).update(losses=F("losses") + 1)
        _discard(row.rq_job_id, conn)
        if job_enqueue(row, expect_attempt=row.attempt, reason=f"queued again: {reason}"):
            log.warning("%s %s: %s; queued again", model.__name__, row.pk, reason)
            return "requeued"
        return None
    if kind == LOST:
        tries = row.losses + 1
        reason = f"{reason}. It was tried {tries} time{'s' if tries > 1 else ''}; press Retry"
    changed = model.objects.filter(pk=row.pk, attempt=row.attempt, state__in=ACTIVE).update(
        state=Job.State.FAILED, error=reason[:2000], finished=timezone.now()
    )
    if changed:
        log.warning("%s %s failed: %s", model.__name__, row.pk, reason)
        for tidy in _ON_FAILED.get(model, ()):
            tidy(row)  # what its killed runs left behind
    return "failed" if changed else None


# model -> callables given a row the sweep has failed for good (see on_failed_for_good).
_ON_FAILED: dict[type, list] = {}


def on_failed_for_good(model: type[Job], tidy) -> None:
    """Have `tidy(row)` called when the sweep fails a row of `model` for good: its killed
    runs could not clean up after themselves."""
    _ON_FAILED.setdefault(model, []).append(tidy)


def _local_verdict(row: Job) -> tuple[str, str] | None:
    if not token_process_gone(row.rq_job_id[len(LOCAL_PREFIX) :]):
        return None  # alive, or another machine's command: nothing here can tell
    return FAILED, "the command that was processing it stopped"


def _rq_verdict(job_id: str, conn, *, dependency: bool = False) -> tuple[str, str] | None:
    """None while the RQ job is on its way; (LOST, why) or (FAILED, why) when it is not."""

    try:
        job = RQJob.fetch(job_id, connection=conn)
        status = job.get_status()
    except NoSuchJobError:
        return LOST, "the queue lost it (Redis was restarted or emptied)"
    if status in (JobStatus.QUEUED, JobStatus.SCHEDULED):
        return None
    if status == JobStatus.STARTED:
        if _worker_alive(job.worker_name, conn):
            return None
        return LOST, "its worker stopped while running it"
    if status == JobStatus.DEFERRED:
        for dependency_id in job._dependency_ids:
            verdict = _rq_verdict(dependency_id, conn, dependency=True)
            if verdict is not None:
                return verdict
        return None
    if status == JobStatus.FINISHED:
        return None if dependency else (LOST, "its job ended without finishing the work")
    if status == JobStatus.FAILED:
        result = job.latest_result()
        text = (result.exc_string or "") if result else ""
        if "Work-horse terminated" in text or "AbandonedJobError" in text or not text:
            return LOST, "its worker was killed while running it"
        lines = text.strip().splitlines()
        return FAILED, lines[-1] if lines else "its job failed"
    if status == JobStatus.CANCELED:
        return FAILED, "it was cancelled"
    return FAILED, f"its job ended as {status}"


def workers_listening(queue_name: str) -> int:
    """How many live workers, on any machine, take jobs from this queue (0 when the queue
    does not answer)."""

    queue = django_rq.get_queue(queue_name)
    try:
        return sum(1 for w in Worker.all(queue=queue) if w.death_date is None)
    except RedisError:
        return 0


def _worker_alive(name: str | None, conn) -> bool:
    """Whether the worker named is still there: gone from Redis or, on this machine, its
    process is gone. A worker on another machine that dies stops its job's heartbeat, and
    RQ's registry cleanup fails the job within about 90 seconds."""

    if not name:
        return True  # nothing to go on; the heartbeat decides
    worker = Worker.find_by_key(Worker.redis_worker_namespace_prefix + name, connection=conn)
    if worker is None or worker.death_date is not None:
        return False
    if worker.hostname == socket.gethostname() and worker.pid:
        return pid_alive(worker.pid)
    return True


def _discard(job_id: str, conn) -> None:
    """Remove a lost RQ job and its registry entries, so nothing runs it later."""

    try:
        RQJob.fetch(job_id, connection=conn).delete(delete_dependents=True)
    except NoSuchJobError:
        pass
