"""The RQ worker twicesite runs (`manage.py rqworker`, set as RQ["WORKER_CLASS"]).

It is RQ's forking worker plus three duties: it keeps the queue's promises (the job sweep runs
when it starts and every few seconds after, one worker at a time); its work horses die with it,
so a worker killed outright leaves nothing running on that nobody watches; and it is warm
before a job arrives: `worker_warm` is sent when it starts and at every sweep, and the apps
load what their jobs need (face models, active classifiers, heavy modules) into this process,
so every work horse forked from it starts with them in memory.
"""

import logging

from django.db import connections
from django.dispatch import Signal
from redis.exceptions import LockError
from rq import Worker as RQWorker
from rq.exceptions import StopRequested

from base import jobs
from base.storage import clean_work_dirs
from core.processes import die_with_parent

log = logging.getLogger(__name__)

# Sent in the worker process (never in a work horse) when it starts and at every sweep.
worker_warm = Signal()


class _StoppingIsNoError(logging.Filter):
    """A worker asked to stop (Ctrl-C, SIGTERM) while a warm-up receiver still loads raises
    StopRequested inside that receiver; Worker.warm stops on it, but Django's send_robust
    first logs it as the receiver's error, with a traceback (seen when the demo was stopped
    two seconds after it began serving, on a loaded machine)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], StopRequested))


logging.getLogger("django.dispatch").addFilter(_StoppingIsNoError())

# Seconds between sweeps: a lost job waits about this long before it is queued again.
SWEEP_INTERVAL = 10


class Worker(RQWorker):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("maintenance_interval", SWEEP_INTERVAL)
        super().__init__(*args, **kwargs)

    def warm(self) -> None:
        try:
            for receiver, outcome in worker_warm.send_robust(sender=type(self)):
                if isinstance(outcome, StopRequested):
                    raise outcome  # stopped (Ctrl-C) while loading: stop, not "failed"
                if isinstance(outcome, Exception):  # a job that needs it fails with the reason
                    log.error("warming up with %s failed: %s", receiver.__name__, outcome)
        finally:
            # Forked horses must not share this process's database connection.
            connections.close_all()

    @property
    def dequeue_timeout(self) -> int:
        # Wake up between jobs often enough to sweep; RQ's default waits 405 s.
        return min(super().dequeue_timeout, SWEEP_INTERVAL)

    def run_maintenance_tasks(self):
        super().run_maintenance_tasks()
        lock = self.connection.lock("twicesite:sweep", timeout=60, blocking=False)
        if lock.acquire():
            try:
                counts = jobs.jobs_sweep()
                if counts["requeued"] or counts["failed"]:
                    log.warning("job sweep: %s", counts)
                clean_work_dirs()  # what killed horses left in the local scratch space
            except StopRequested:
                raise  # stopped mid-sweep: the loop ends, the next worker sweeps again
            except Exception:  # the sweep must never take the worker down
                log.exception("job sweep failed")
            finally:
                try:
                    lock.release()
                except LockError:
                    pass  # it expired: another worker may sweep now
                # The next job runs in a forked horse; it must not share this connection.
                connections.close_all()
        # RQ runs these tasks when the worker starts, before its first job, and every sweep
        # after: the models are loaded at start, and a version activated since is loaded
        # before the jobs that need it.
        self.warm()

    def main_work_horse(self, job, queue):
        die_with_parent()
        return super().main_work_horse(job, queue)
