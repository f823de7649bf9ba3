"""RQ entry points for recognition: take ids, load rows, call one service."""

from base.jobs import job_entry
from recognition.models import TrainingRun
from recognition.services import training_run


def train_job(run_id: int, attempt: int):
    return job_entry(
        TrainingRun,
        run_id,
        lambda run: training_run(run=run, attempt=attempt).number,
        related=("group",),
    )
