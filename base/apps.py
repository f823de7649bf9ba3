from django.apps import AppConfig


class BaseConfig(AppConfig):
    """The layer every app stands on: the Job row and its queue, roles, storage, JSON bodies."""

    name = "base"
    verbose_name = "base"

    def ready(self):
        from django.db.models.signals import post_migrate

        from base.roles import ensure_curators_group

        # Permissions appear app by app as migrate finishes each; the update is idempotent.
        post_migrate.connect(ensure_curators_group, dispatch_uid="curators-group")
