from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from gallery import services
from gallery.models import GalleryImage

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff"}


class Command(BaseCommand):
    help = (
        "Import a folder of face images: one sub-folder per member, named by the member's slug. "
        "Images with one clear face are approved; the rest wait in admin with their flags."
    )

    def add_arguments(self, parser):
        parser.add_argument("directory", type=Path)
        parser.add_argument("--group", required=True, help="group slug (created if missing)")
        parser.add_argument("--group-name", help="display name for a new group")
        parser.add_argument(
            "--first", type=int, default=0, help="take only the first N files (sorted) per member"
        )
        parser.add_argument(
            "--pending", action="store_true", help="leave every image pending for a curator"
        )

    def handle(self, *args, directory, group, group_name, first, pending, **options):
        if not directory.is_dir():
            raise CommandError(f"{directory} is not a directory")
        folders = sorted(
            p for p in directory.iterdir() if p.is_dir() and not p.name.startswith(".")
        )
        if not folders:
            raise CommandError(f"{directory} has no member sub-folders")
        group_row = services.group_get_or_create(slug=group, name=group_name)
        totals = {"added": 0, "duplicate": 0, "rejected": 0, "flagged": 0}
        with services.flags_refreshed_once() as refreshed:
            for folder in folders:
                member = services.member_get_or_create(group=group_row, slug=folder.name)
                files = sorted(
                    p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
                )
                if first:
                    files = files[:first]
                for path in files:
                    result = services.image_ingest(
                        member=member,
                        data=path.read_bytes(),
                        name=path.name,
                        source=GalleryImage.Source.IMPORT,
                        approve=not pending,
                    )
                    totals[result.outcome] += 1
                    if result.outcome == "rejected":
                        self.stderr.write(f"rejected {folder.name}/{path.name}: {result.reason}")
                    elif result.outcome == "added" and result.image.flags():
                        totals["flagged"] += 1
                        self.stdout.write(
                            f"flagged {folder.name}/{path.name}: {', '.join(result.image.flags())}"
                        )
        stats = refreshed.get(group_row.pk) or services.group_refresh_flags(group=group_row)
        approved = GalleryImage.objects.filter(
            member__group=group_row, status=GalleryImage.Status.APPROVED
        ).count()
        self.stdout.write(
            self.style.SUCCESS(
                f"{group_row.slug}: {totals['added']} imported, {totals['duplicate']} already "
                f"there, {totals['rejected']} rejected, {totals['flagged']} flagged; "
                f"{approved} approved in all; {stats['duplicates']} duplicates and "
                f"{stats['lookalikes']} suspected mislabels in the group."
            )
        )
