"""RQ entry points for galleries: take ids, load rows, call one service."""

from gallery.models import ScrapeRun
from gallery.scraping import scrape_run


def scrape_job(run_id: int) -> dict:
    run = scrape_run(run=ScrapeRun.objects.select_related("member__group").get(pk=run_id))
    return {"added": run.added, "duplicates": run.duplicates, "rejected": run.rejected}
