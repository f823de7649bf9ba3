from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from twicesite import embedded_redis


class Command(BaseCommand):
    help = (
        "Show, start or stop this checkout's bundled Redis server (used when REDIS_URL is unset). "
        "Started here, it runs until stopped (or released: stopped once no process uses it) "
        "here; started by any other process, it stops when the last process using it ends."
    )
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument(
            "action", choices=["status", "start", "stop", "release"], nargs="?", default="status"
        )

    def handle(self, *args, action, **options):
        if not settings.EMBEDDED_REDIS:
            raise CommandError("REDIS_URL is set, so no bundled Redis server is used.")
        var_dir = settings.VAR_DIR
        if action == "start":
            embedded_redis.keep(var_dir)  # until `stop`, whoever else comes and goes
            embedded_redis.ensure_running(var_dir)
            if options["verbosity"] == 0:
                return
        elif action == "release":
            stopped = embedded_redis.release(var_dir)
            self.stdout.write("stopped" if stopped else "left to the processes using it")
            return
        elif action == "stop":
            embedded_redis.keep(var_dir, False)
            stopped = embedded_redis.stop(var_dir)
            self.stdout.write("stopped" if stopped else "not running")
            return
        if embedded_redis.is_running(var_dir):
            pid = embedded_redis.server_pid(var_dir)
            users = len(embedded_redis.users(var_dir))
            kept = ", kept until `embedded_redis stop`" if (var_dir / "redis.kept").exists() else ""
            self.stdout.write(
                f"running (pid {pid}) at {embedded_redis.url(var_dir)}, "
                f"used by {users} process{'es' if users != 1 else ''}{kept}"
            )
        else:
            self.stdout.write("not running")
