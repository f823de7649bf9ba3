"""What recognition tells the apps above it."""

from django.dispatch import Signal

# Sent with `version` when a model version becomes its group's active one, inside the
# transaction that activates it. Videos names its stored tracks again.
model_version_activated = Signal()

# Sent with `run` (a TrainingRun) inside its job, before the gallery is encoded: apps above
# add what they have for the gallery (videos: faces from approved corrections).
training_started = Signal()

# Sent with `group` and `classifier` (a FaceClassifier just trained) before its version is
# saved: receivers return a dict of counts that join the version's metrics (videos: how many
# "not this member" corrections it would break).
model_version_measuring = Signal()
