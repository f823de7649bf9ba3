import json

from django.core.management.base import BaseCommand, CommandError

from core.classifier.model import ClassifierError
from recognition.management.commands._common import get_group
from recognition.models import TrainingRun
from recognition.services import training_run


class Command(BaseCommand):
    help = (
        "Train a new model version for a group here (not on a worker) and print its "
        "cross-validated metrics, with the original method's, as one JSON line."
    )

    def add_arguments(self, parser):
        parser.add_argument("--group", required=True)
        parser.add_argument("--cv", type=int, default=5, help="cross-validation folds")

    def handle(self, *args, group, cv, **options):
        run = TrainingRun.objects.create(group=get_group(group), folds=cv, reason="train command")
        try:
            version = training_run(run=run)
        except ClassifierError as exc:
            raise CommandError(f"training failed: {exc}") from None
        self.stdout.write(
            json.dumps(
                {
                    "group": group,
                    "version": version.number,
                    "active": version.is_active,
                    "note": version.note,
                    **version.metrics,
                }
            )
        )
