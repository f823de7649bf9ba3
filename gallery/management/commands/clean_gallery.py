from django.core.management.base import BaseCommand, CommandError

from gallery import services
from gallery.models import GalleryImage, Group


class Command(BaseCommand):
    help = "Run cleaning again on a group's images: detect faces, then recompute all flags."

    def add_arguments(self, parser):
        parser.add_argument("--group", required=True)
        parser.add_argument(
            "--keep-faces",
            action="store_true",
            help="only recompute flags; keep the faces curators chose",
        )

    def handle(self, *args, group, keep_faces, **options):
        group_row = Group.objects.filter(slug=group).first()
        if group_row is None:
            raise CommandError(f"no group with slug {group!r}")
        images = GalleryImage.objects.filter(member__group=group_row).exclude(
            status=GalleryImage.Status.REJECTED
        )
        redetected = 0
        if not keep_faces:
            for image in images.filter(status=GalleryImage.Status.PENDING):
                services.image_redetect(image=image)
                redetected += 1
        stats = services.group_refresh_flags(group=group_row)
        self.stdout.write(
            f"{group_row.slug}: {redetected} pending images re-detected; {stats['images']} "
            f"images, {stats['duplicates']} duplicates, {stats['lookalikes']} suspected mislabels"
        )
