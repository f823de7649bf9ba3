"""Reads for the jobs page: every job row of every kind, and what the queues and workers do."""

from __future__ import annotations

from django.conf import settings
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from base.jobs import ACTIVE, REDIS_ERRORS, job_models
from base.models import Job
from base.names import time_ago

# Rows shown per kind: every active one, and this many of the latest finished ones.
RECENT_PER_KIND = 25


def job_key(row: Job) -> str:
    """A row's name on the page and in its URLs: "gallery.scraperun.12"."""
    return f"{row._meta.label_lower}.{row.pk}"


def job_by_key(key: str) -> Job | None:
    label, _, pk = key.rpartition(".")
    for model in job_models():
        if model._meta.label_lower == label and pk.isdigit():
            return model.objects.filter(pk=int(pk)).first()
    return None


def duration_label(row: Job, now=None) -> str:
    """How long the job ran, or has been running: "4 s", "2 min 5 s", "1 h 3 min"."""
    if row.started is None:
        return "—"
    seconds = int(((row.finished or now or timezone.now()) - row.started).total_seconds())
    if seconds < 60:
        return f"{max(0, seconds)} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def jobs_overview(*, state: str = "", kind: str = "") -> list[dict]:
    """The rows of every job model, newest first, as the page shows them."""
    now = timezone.now()
    rows: list[Job] = []
    for model in job_models():
        if kind and model._meta.label_lower != kind:
            continue
        recent = model.objects.order_by("-created")
        if state:
            recent = recent.filter(state=state)
        found = {row.pk: row for row in recent[:RECENT_PER_KIND]}
        if not state:
            found |= {row.pk: row for row in model.objects.filter(state__in=ACTIVE)}
        rows += found.values()
    rows.sort(key=lambda row: row.created, reverse=True)
    return [_row_json(row, now) for row in rows]


def _row_json(row: Job, now) -> dict:
    opts = row._meta
    try:
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[row.pk])
    except NoReverseMatch:
        url = ""
    return {
        "key": job_key(row),
        "kind": str(opts.verbose_name).capitalize(),
        "title": str(row),
        "url": url,
        "state": row.state,
        # A finished row's stage often just repeats its state ("done"): said once is enough.
        "stage": "" if row.stage.strip().lower() == row.state else row.stage,
        "progress": round(row.progress, 1),
        "error": row.error,
        "created": time_ago(row.created, now=now),
        "duration": duration_label(row, now),
        "can_retry": row.can_retry(),
        "can_cancel": row.is_active(),
    }


def kinds() -> list[tuple[str, str]]:
    return [(m._meta.label_lower, str(m._meta.verbose_name_plural)) for m in job_models()]


def queues_overview() -> dict:
    """Jobs waiting, running and failed per queue, and each worker: what it listens to and
    does. {"error": ...} when Redis does not answer."""
    import django_rq
    from rq.registry import FailedJobRegistry, StartedJobRegistry
    from rq.worker import Worker

    try:
        queues = []
        for name in settings.QUEUE_NAMES:
            queue = django_rq.get_queue(name)
            queues.append(
                {
                    "name": name,
                    "waiting": queue.count,
                    "running": StartedJobRegistry(queue=queue).count,
                    "failed": FailedJobRegistry(queue=queue).count,
                }
            )
        conn = django_rq.get_connection("default")
        workers = []
        for worker in Worker.all(connection=conn):
            job = worker.get_current_job_id()
            workers.append(
                {
                    "name": worker.name,
                    "state": str(getattr(worker.get_state(), "value", worker.get_state())),
                    "queues": worker.queue_names(),
                    "job": job or "",
                    "done": worker.successful_job_count,
                    "failed": worker.failed_job_count,
                }
            )
    except REDIS_ERRORS as exc:
        return {"error": f"the queue (Redis) is not answering: {exc}", "queues": [], "workers": []}
    return {"error": "", "queues": queues, "workers": workers}
