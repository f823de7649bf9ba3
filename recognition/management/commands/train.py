import json

from django.core.management.base import BaseCommand, CommandError

from core.classifier.model import ClassifierError
from recognition.management.commands._common import get_group
from recognition.models import TrainingRun
from recognition.services import SEED_AXES, margin_gate_words, training_run


class Command(BaseCommand):
    help = (
        "Train a new model version for a group here (not on a worker): say on stderr which "
        "naming rule won and why, then print its cross-validated metrics, with the original "
        "method's, as one JSON line."
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
        self.stderr.write(rule_summary(version))
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


def rule_summary(version) -> str:
    """Which rule the version names by and why, and its nested cross-validation beside the
    seed's rule, in a few lines."""
    m = version.metrics
    rule = m.get("rule") or {}
    lines = [f"{version}: rule {rule.get('rule', m.get('mode', '?'))}: {rule.get('why', '')}"]
    seed = m.get("seed")
    if seed:
        lines.append("nested cross-validation    this version   seed's rule")
        for key, (words, _) in SEED_AXES.items():
            lines.append(f"  {words:<26} {m[key]:>11.1%}   {seed[key]:>11.1%}")
    if rule.get("margin"):
        lines.append(margin_gate_words(rule["margin"]))
    lines.append(("active: " if version.is_active else "not active: ") + version.note)
    return "\n".join(lines)
