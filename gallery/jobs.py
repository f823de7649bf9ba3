"""RQ entry points for galleries: take ids, load rows, call one service."""

from base.jobs import job_entry
from gallery import services
from gallery.models import ImageUpload, ScrapeRun
from gallery.scraping import scrape_run


def scrape_job(run_id: int, attempt: int):
    def work(run):
        run = scrape_run(run=run, attempt=attempt)
        return {"added": run.added, "duplicates": run.duplicates, "rejected": run.rejected}

    return job_entry(ScrapeRun, run_id, work, related=("member__group",))


def ingest_upload_job(upload_id: int, attempt: int):
    return job_entry(
        ImageUpload,
        upload_id,
        lambda upload: services.upload_ingest(upload=upload, attempt=attempt).outcome,
        related=("member__group",),
    )
