"""What recognition tells the apps above it."""

from django.dispatch import Signal

# Sent with `version` when a model version becomes its group's active one, inside the
# transaction that activates it. Videos names its stored tracks again.
model_version_activated = Signal()

# Sent with `run` (a TrainingRun) inside its job, before the gallery is encoded: apps above
# add what they have for the gallery (videos: faces from approved corrections).
training_started = Signal()
