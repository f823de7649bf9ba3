from django.apps import AppConfig
from django.conf import settings


class TwicesiteConfig(AppConfig):
    name = "twicesite"
    verbose_name = "twicesite"

    def ready(self):
        from twicesite import checks  # noqa: F401  registers the system checks

        if settings.EMBEDDED_REDIS:
            from twicesite import embedded_redis

            try:
                embedded_redis.ensure_running(settings.VAR_DIR)
            except embedded_redis.EmbeddedRedisError:
                pass  # the Redis system check reports it with the reason
