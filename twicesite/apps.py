import sys

from django.apps import AppConfig
from django.conf import settings


class TwicesiteConfig(AppConfig):
    name = "twicesite"
    verbose_name = "twicesite"

    def ready(self):
        from django.db.models.signals import post_migrate

        from twicesite import checks  # noqa: F401  registers the system checks
        from twicesite.roles import ensure_curators_group

        # Permissions appear app by app as migrate finishes each; the update is idempotent.
        post_migrate.connect(ensure_curators_group, dispatch_uid="curators-group")

        # The first process that needs the queue starts the bundled server; asking about it
        # (`embedded_redis status`) must not.
        if settings.EMBEDDED_REDIS and sys.argv[1:2] != ["embedded_redis"]:
            from twicesite import embedded_redis

            try:
                embedded_redis.ensure_running(settings.VAR_DIR)
            except embedded_redis.EmbeddedRedisError:
                pass  # the Redis system check reports it with the reason
