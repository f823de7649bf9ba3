"""The curators group: staff who build galleries and keep the model right, and nothing more."""

from django.contrib.auth.models import Group, Permission

CURATORS = "curators"

# (app label, model, actions). Curators never manage users or site settings.
CURATOR_PERMISSIONS = [
    ("gallery", "group", ("view", "add", "change")),
    ("gallery", "member", ("view", "add", "change")),
    ("gallery", "galleryimage", ("view", "add", "change", "delete")),
    ("gallery", "scraperun", ("view",)),
    ("recognition", "modelversion", ("view", "change")),
    ("recognition", "trainingrun", ("view",)),
    ("videos", "video", ("view",)),
    ("videos", "correction", ("view", "change")),
    ("videos", "suggestion", ("view",)),
]


def ensure_curators_group(**kwargs) -> Group:
    """Create the curators group or bring its permissions up to date (run after migrate)."""
    group, _ = Group.objects.get_or_create(name=CURATORS)
    wanted = []
    for app_label, model, actions in CURATOR_PERMISSIONS:
        codenames = [f"{action}_{model}" for action in actions]
        wanted += Permission.objects.filter(
            content_type__app_label=app_label, codename__in=codenames
        )
    group.permissions.set(wanted)
    return group


def is_curator(user) -> bool:
    return bool(
        user.is_authenticated
        and user.is_staff
        and (user.is_superuser or user.groups.filter(name=CURATORS).exists())
    )
