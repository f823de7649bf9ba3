import shutil
import sys
import uuid as uuids
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from base.jobs import job_run_locally
from videos import fancams
from videos.models import Fancam, Video


class Command(BaseCommand):
    help = (
        "Make a fancam of one member of a processed video exactly as the site's job makes it, "
        "and copy it to --out."
    )

    def add_arguments(self, parser):
        parser.add_argument("video", help="the video's id or UUID")
        parser.add_argument("--member", required=True, help="the member's slug")
        parser.add_argument("--out", type=Path, required=True, help="MP4 to write")
        parser.add_argument("--aspect", default="9:16", choices=list(Fancam.Aspect.values))
        parser.add_argument("--highlights", action="store_true", help="only the shots she is in")
        parser.add_argument("--labels", action="store_true", help="draw name tags and boxes")

    def handle(self, *args, video, member, out, aspect, highlights, labels, **options):
        row = _video(video)
        member_row = row.group.members.filter(slug=member).first()
        if member_row is None:
            raise CommandError(f"{row.group} has no member {member!r}")
        try:
            fancam = fancams.fancam_request(
                video=row,
                member=member_row,
                aspect=aspect,
                highlights=highlights,
                labels=labels,
                enqueue=False,
            )
        except fancams.FancamRefused as exc:
            raise CommandError(str(exc)) from None
        if fancam.state != Fancam.State.DONE:
            last = [-10.0]

            def report(job):
                if job.progress - last[0] >= 10 or job.state != Fancam.State.RUNNING:
                    last[0] = job.progress
                    self.stderr.write(f"{job.progress:5.1f}% {job.stage}")

            attempt = job_run_locally(fancam)
            fancam = fancams.fancam_make(fancam=fancam, attempt=attempt, echo=report)
        if fancam.state != Fancam.State.DONE:
            raise CommandError(f"the fancam failed: {fancam.error}")
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.tmp")
        with fancam.file.open("rb") as source, open(tmp, "wb") as target:
            shutil.copyfileobj(source, target, 1 << 20)
        tmp.replace(out)
        self.stdout.write(f"{out}: {fancam.frames} frames, {fancam.duration:.1f} s\n")
        sys.stdout.flush()


def _video(key: str) -> Video:
    try:
        lookup = {"uuid": uuids.UUID(key)} if not key.isdigit() else {"pk": int(key)}
    except ValueError:
        raise CommandError(f"{key!r} is neither a video id nor a UUID") from None
    row = Video.objects.select_related("group").filter(**lookup).first()
    if row is None:
        raise CommandError(f"no video {key}")
    return row
