import json
import shutil
import sys
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from gallery.models import Group
from videos import exports, processing, services


class Command(BaseCommand):
    help = (
        "Process a video exactly as an upload is processed, without the site: find and name the "
        "faces, write the labelled MP4 (with the original audio) and the predictions."
    )

    def add_arguments(self, parser):
        parser.add_argument("input", type=Path)
        parser.add_argument("--group", required=True)
        parser.add_argument("--out", type=Path, required=True, help="labelled MP4 to write")
        parser.add_argument("--predictions", type=Path, help="predictions JSON to write")
        parser.add_argument("--owner", help="file the result as this user's private video")
        parser.add_argument(
            "--threshold",
            type=float,
            metavar="X",
            help=(
                "for this run only, name a face only when the model gives its most likely "
                "member a probability of at least X (0 to 1; higher names fewer faces, and "
                "fewer wrongly), instead of the group's operating point; the original scripts' "
                "-t, whose default was 0.7. The version's distance gate, if it has one, stays."
            ),
        )

    def handle(self, *args, input, group, out, predictions, owner, threshold=None, **options):
        group_row = Group.objects.filter(slug=group).first()
        if group_row is None:
            raise CommandError(f"no group with slug {group!r}")
        user = None
        if owner:
            user = get_user_model().objects.filter(username=owner).first()
            if user is None:
                raise CommandError(f"no user named {owner!r}")
        if not input.is_file():
            raise CommandError(f"{input} is not a file")
        if threshold is not None and not 0.0 <= threshold <= 1.0:
            raise CommandError(f"--threshold is a probability between 0 and 1, not {threshold}")
        try:
            video = services.video_submit(
                source=input, name=input.name, group=group_row, owner=user, enqueue=False
            )
        except services.VideoRejected as exc:
            raise CommandError(str(exc)) from None
        last = [-10.0, ""]

        def report(row):
            # A line per stage, and one per 10% within a stage.
            if row.stage != last[1] or row.progress - last[0] >= 10:
                last[:] = [row.progress, row.stage]
                self.stderr.write(f"{row.progress:5.1f}% {row.stage}")

        video = processing.video_process(video=video, echo=report, threshold=threshold)
        report(video)  # its last state, if not said yet
        if video.state != video.State.DONE:
            raise CommandError(f"processing failed: {video.error}")
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.tmp")
        with video.labelled.open("rb") as source, open(tmp, "wb") as target:
            shutil.copyfileobj(source, target)
        tmp.replace(out)
        if predictions:
            predictions.write_text(json.dumps(exports.predictions(video)))
        self.stdout.write(
            json.dumps(
                {
                    "video": str(video.uuid),
                    "tracks": video.tracks.count(),
                    "named_tracks": video.tracks.exclude(member=None).count(),
                    "out": str(out),
                    "timings": video.timings,
                }
            )
        )
        sys.stdout.flush()
