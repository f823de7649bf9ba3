"""The admin's jobs page: every job of every kind, live, with Retry and Cancel that really act."""

import threading
import time

import pytest
from django.urls import reverse

from base.jobs import JobGone, job_cancel, job_enqueue, running
from gallery.models import ScrapeRun
from gallery.scraping import scrape_run, scrape_start
from tests.conftest import wait_for

pytestmark = pytest.mark.django_db


def action(key, name):
    return reverse("admin-job-action", args=[key, name])


def test_the_page_lists_every_kind_and_is_for_curators_only(
    client, curator, tom, django_user_model
):
    run = ScrapeRun.objects.create(member=tom, keyword="tom", engine="bing", requested=3)
    staff = django_user_model.objects.create_user("intern", password="pw-intern-1", is_staff=True)
    client.force_login(staff)
    assert client.get(reverse("admin-jobs")).status_code == 404
    client.force_login(curator)
    page = client.get(reverse("admin-jobs")).content.decode()
    for kind in ("scrape runs", "training runs", "videos", "fancams", "image uploads"):
        assert kind in page, kind
    assert f'data-key="gallery.scraperun.{run.pk}"' in page
    assert "No worker is running" in page
    data = client.get(reverse("admin-jobs-data")).json()
    assert [q["name"] for q in data["queues"]] == ["default", "video"]
    assert data["jobs"][0]["key"] == f"gallery.scraperun.{run.pk}"
    assert f'href="{reverse("admin-jobs")}"' in client.get(reverse("admin:index")).content.decode()


def test_retry_and_cancel_need_post_and_a_curator(client, curator, tom, other_staff):
    run = ScrapeRun.objects.create(member=tom, keyword="tom", engine="bing", requested=3)
    key = f"gallery.scraperun.{run.pk}"
    client.force_login(curator)
    assert client.get(action(key, "cancel")).status_code == 405
    client.force_login(other_staff)
    assert client.post(action(key, "cancel")).status_code == 404
    run.refresh_from_db()
    assert run.state == ScrapeRun.State.QUEUED


@pytest.fixture
def other_staff(django_user_model):
    return django_user_model.objects.create_user("intern", password="pw-intern-1", is_staff=True)


def test_cancel_takes_a_queued_job_off_the_queue_and_retry_puts_it_back(
    client, curator, tom, rq_queue, django_capture_on_commit_callbacks
):
    from rq.job import Job as RQJob

    with django_capture_on_commit_callbacks(execute=True):
        run = scrape_start(member=tom, count=3, engine="bing")
    run.refresh_from_db()
    first_job = run.rq_job_id
    assert rq_queue.count == 1
    client.force_login(curator)
    client.post(action(f"gallery.scraperun.{run.pk}", "cancel"))
    run.refresh_from_db()
    assert (run.state, run.error) == (ScrapeRun.State.FAILED, "Cancelled by curie.")
    assert RQJob.fetch(first_job, connection=rq_queue.connection).get_status() == "canceled"
    assert rq_queue.count == 0
    with django_capture_on_commit_callbacks(execute=True):
        client.post(action(f"gallery.scraperun.{run.pk}", "retry"))
    run.refresh_from_db()
    assert run.state == ScrapeRun.State.QUEUED and run.rq_job_id != first_job
    assert rq_queue.count == 1


@pytest.mark.django_db(transaction=True)
def test_a_cancelled_run_stops_at_its_next_progress_report(tom):
    """The attempt fence: the run that was working cannot write, or finish, after a cancel."""
    run = ScrapeRun.objects.create(member=tom, keyword="tom", engine="bing", requested=3)
    job_enqueue(run)
    run.refresh_from_db()
    with pytest.raises(JobGone):
        with running(run) as progress:
            progress(10, "downloading", force=True)
            assert job_cancel(ScrapeRun.objects.get(pk=run.pk), by="curie")
            progress(20, "still going?", force=True)
    run.refresh_from_db()
    assert (run.state, run.stage, run.progress) == (ScrapeRun.State.FAILED, "cancelled", 10.0)


@pytest.mark.django_db(transaction=True)
def test_a_cancelled_scrape_stops_even_while_icrawler_downloads(image_search, tom):
    run = scrape_start(member=tom, count=6, engine="bing", enqueue=False)
    job_enqueue(run)
    run.refresh_from_db()

    def cancel_when_running():
        running = ScrapeRun.objects.filter(pk=run.pk, state="running")
        wait_for(running.exists, 20, "the scrape to run", every=0.01)
        job_cancel(ScrapeRun.objects.get(pk=run.pk), by="curie")

    canceller = threading.Thread(target=cancel_when_running)
    canceller.start()
    with pytest.raises(JobGone):
        scrape_run(run=run)
    canceller.join()
    run.refresh_from_db()
    assert run.state == ScrapeRun.State.FAILED and run.added == 0


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_jobs_page_follows_progress_live_shows_why_a_scrape_failed_and_acts(
    page, admin_login, curator, tom, settings, rq_queue, shots
):
    from django.utils import timezone

    settings.SCRAPE_SEARCH_URLS = {
        "bing": "http://127.0.0.1:9/images/async?q={keyword}&first={offset}"
    }
    failed = scrape_start(member=tom, count=3, engine="bing", enqueue=False)
    with pytest.raises(Exception, match="could not reach the search engine"):
        scrape_run(run=failed)
    live = ScrapeRun.objects.create(member=tom, keyword="tom hanks", engine="bing", requested=9)
    job_enqueue(live)
    ScrapeRun.objects.filter(pk=live.pk).update(
        state="running", progress=10, stage="searching and downloading", started=timezone.now()
    )

    admin_login("curie", "pw-curator-1")
    page.get_by_role("link", name="Jobs").click()
    page.wait_for_url("**/admin/jobs/")
    assert page.locator("#no-worker").is_visible()
    failed_row = page.locator(f'tr[data-key="gallery.scraperun.{failed.pk}"]')
    assert "could not reach the search engine (127.0.0.1): the connection was refused" in (
        failed_row.locator(".detail").inner_text()
    )
    assert failed_row.locator(".state").inner_text() == "failed"
    shots(page, "admin-jobs-failed-scrape-laptop")

    # The page polls: progress written by the job shows without a reload.
    ScrapeRun.objects.filter(pk=live.pk).update(progress=60, stage="cleaning 3 images")
    live_row = f'tr[data-key="gallery.scraperun.{live.pk}"]'
    page.wait_for_function(
        f"() => document.querySelector('{live_row} .percent').textContent === '60%'", timeout=10_000
    )
    assert page.locator(f"{live_row} .detail").inner_text() == "cleaning 3 images"

    page.locator(live_row).get_by_role("button", name="Cancel").click()
    page.wait_for_selector(".messagelist")
    live.refresh_from_db()
    assert (live.state, live.error) == ("failed", "Cancelled by curie.")
    page.locator(f'tr[data-key="gallery.scraperun.{failed.pk}"]').get_by_role(
        "button", name="Retry"
    ).click()
    page.wait_for_selector(".messagelist")
    failed.refresh_from_db()
    assert failed.state == "queued" and failed.error == ""
    assert "Queued scrape run" in page.locator(".messagelist").inner_text()


@pytest.mark.django_db(transaction=True)
def test_a_running_worker_is_listed_with_its_queues_and_the_banner_goes(client, curator, rq_queue):
    import subprocess
    import sys

    from rq.worker import Worker

    from tests.conftest import ROOT, worker_env

    name = f"jobs-page-{time.monotonic_ns()}"
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "rqworker", "default", "video", "--name", name],
        cwd=ROOT, env=worker_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        listening = lambda: any(w.name == name for w in Worker.all(connection=rq_queue.connection))  # noqa: E731
        wait_for(listening, 60, f"worker {name} to listen", every=0.2)
        client.force_login(curator)
        data = client.get(reverse("admin-jobs-data")).json()
        listed = [w for w in data["workers"] if w["name"] == name]
        assert listed and listed[0]["queues"] == ["default", "video"]
        assert listed[0]["state"] in ("idle", "busy", "started")
        page = client.get(reverse("admin-jobs")).content.decode()
        assert 'id="no-worker" class="jobs-banner" role="alert" hidden' in page
    finally:
        worker.terminate()  # a warm shutdown; one still warming up is killed after a while
        try:
            worker.wait(timeout=10)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(timeout=10)
