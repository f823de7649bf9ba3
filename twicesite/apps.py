import sys

from django.apps import AppConfig
from django.conf import settings


class TwicesiteConfig(AppConfig):
    """The project shell: system checks over the whole site, and the bundled Redis server."""

    name = "twicesite"
    verbose_name = "twicesite"

    def ready(self):
        from twicesite import checks  # noqa: F401  registers the system checks

        # The first process that needs the queue (the site, a worker, a command) starts the
        # bundled server, and the last one using it stops it when it exits; asking about it
        # (`embedded_redis status`) must not start it.
        if settings.EMBEDDED_REDIS and sys.argv[1:2] != ["embedded_redis"]:
            from twicesite import embedded_redis

            try:
                embedded_redis.use(settings.VAR_DIR)
            except embedded_redis.EmbeddedRedisError:
                pass  # the Redis system check reports it with the reason
