"""What recognition tells the apps above it. A notice, never a question: recognition never
needs an answer from an app above it."""

from django.dispatch import Signal

# Sent with `version` when a model version becomes its group's active one, inside the
# transaction that activates it. Videos names its stored tracks again.
model_version_activated = Signal()
