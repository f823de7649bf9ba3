"""RQ entry points for recognition: take ids, load rows, call one service."""

from recognition.models import TrainingRun
from recognition.services import training_run


def train_job(run_id: int) -> int:
    version = training_run(run=TrainingRun.objects.select_related("group").get(pk=run_id))
    return version.number
