from django.core.management.base import BaseCommand, CommandError

from gallery.models import Member
from gallery.scraping import ENGINES, scrape_run, scrape_start


class Command(BaseCommand):
    help = (
        "Scrape image search for a member's images; they arrive pending, cleaned and de-duplicated."
    )

    def add_arguments(self, parser):
        parser.add_argument("--member", required=True, help="member slug")
        parser.add_argument("--group", help="group slug, when the member slug is in several groups")
        parser.add_argument("--count", type=int, default=50)
        parser.add_argument("--keyword", default="")
        parser.add_argument("--engine", default="bing", choices=sorted(ENGINES))
        parser.add_argument(
            "--queue", action="store_true", help="enqueue for a worker instead of running here"
        )

    def handle(self, *args, member, group, count, keyword, engine, queue, **options):
        members = Member.objects.filter(slug=member).select_related("group")
        if group:
            members = members.filter(group__slug=group)
        if members.count() != 1:
            raise CommandError(
                f"{members.count()} members have slug {member!r}"
                + ("" if group else "; add --group")
            )
        try:
            run = scrape_start(
                member=members[0], keyword=keyword, count=count, engine=engine, enqueue=queue
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if queue:
            self.stdout.write(f"queued scrape run {run.pk}")
            return
        run = scrape_run(run=run)
        self.stdout.write(
            f"{run.downloaded} downloaded: {run.added} added, {run.duplicates} duplicates, "
            f"{run.rejected} rejected"
        )
