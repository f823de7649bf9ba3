import os
import secrets
import shutil
import tempfile
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

from gallery.models import Group

SHARED = settings.BASE_DIR.parent / "shared" / "data"
FIXTURES = settings.BASE_DIR / "tests" / "fixtures" / "faces"
# The eight people the dev video knows; the other two in the data are its strangers.
DEMO_MEMBERS = [
    "barack-obama",
    "tom-hanks",
    "keanu-reeves",
    "halle-berry",
    "jennifer-aniston",
    "hugh-laurie",
    "miley-cyrus",
    "drew-barrymore",
]


class Command(BaseCommand):
    help = (
        "Prepare a local demo: an admin account (its login is printed), a demo group with a "
        "trained model, and a sample video queued for processing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")
        parser.add_argument(
            "--no-sample", action="store_true", help="do not queue the sample video"
        )

    def handle(self, *args, username, no_sample, **options):
        admin = self._admin(username)
        if not Group.objects.filter(slug="demo").exists():
            self._demo_group()
            if not no_sample:
                self._sample_video(admin)

    def _admin(self, username):
        password_file = settings.VAR_DIR / "demo-admin-password.txt"
        User = get_user_model()
        user = User.objects.filter(username=username).first()
        if user is None or not password_file.exists():
            password = secrets.token_urlsafe(12)
            settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
            password_file.write_text(password + "\n")
            password_file.chmod(0o600)
            user = user or User(username=username, email=f"{username}@localhost")
            user.is_staff = user.is_superuser = True
            user.set_password(password)
            user.save()
        password = password_file.read_text().strip()
        self.stdout.write(
            self.style.SUCCESS(f"Admin login: {username} / {password}")
            + f"  (kept in {password_file})"
        )
        return user

    def _demo_group(self):
        source = SHARED / "faces" if (SHARED / "faces").is_dir() else FIXTURES
        self.stdout.write(f"Loading the demo gallery from {source} ...")
        with tempfile.TemporaryDirectory() as tmp:
            for slug in DEMO_MEMBERS:
                if (source / slug).is_dir():
                    (Path(tmp) / slug).symlink_to(source / slug)
            call_command(
                "import_gallery",
                tmp,
                "--group",
                "demo",
                "--group-name",
                "Demo (celebrities)",
                "--first",
                "30",
                stdout=self.stdout,
            )
        self.stdout.write("Training the demo model ...")
        call_command("train", "--group", "demo", "--cv", "5", stdout=open("/dev/null", "w"))

    def _sample_video(self, owner):
        from videos import services

        sample = SHARED / "stage-dev.mp4"
        if not sample.is_file():
            self.stdout.write("No sample video found (../shared/data/stage-dev.mp4); upload one.")
            return
        with tempfile.TemporaryDirectory() as tmp:
            copy = Path(tmp) / sample.name
            shutil.copyfile(sample, copy)
            video = services.video_submit(
                source=copy, name=sample.name, group=Group.objects.get(slug="demo"), owner=owner
            )
        self.stdout.write(
            "Queued the sample video; watch it at "
            f"http://127.0.0.1:{os.environ.get('PORT', '8000')}{video.get_absolute_url()}"
        )
