"""What recognition tells the apps above it. A notice, never a question: recognition never
needs an answer from an app above it."""

from django.dispatch import Signal

# Sent with `version` when a model version becomes its group's active one, inside the
# transaction that activates it. Videos names its stored tracks again.
model_version_activated = Signal()

# Sent with the group's active `version` when a curator moves the group's operating point
# (how sure it must be to name a face), inside that transaction. Videos names its stored
# tracks again, as for a new version.
group_naming_changed = Signal()
