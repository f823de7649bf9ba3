"""Scraping image search with icrawler: downloads land in the gallery through image_ingest."""

import logging
import tempfile
import threading
from pathlib import Path
from urllib.parse import quote_plus, urlsplit

import requests
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from icrawler import ImageDownloader
from icrawler.builtin import BaiduImageCrawler, BingImageCrawler
from icrawler.builtin.baidu import BaiduFeeder
from icrawler.builtin.bing import BingFeeder
from icrawler.utils import Session

from base.jobs import JobFailed, job_enqueue, running
from gallery import services
from gallery.models import GalleryImage, Member, ScrapeRun

log = logging.getLogger(__name__)


def _search_url(engine: str) -> str:
    return settings.SCRAPE_SEARCH_URLS[engine]


class _BingFeeder(BingFeeder):
    # The same feed as icrawler's, with the search address from settings (tests use a local one).
    def feed(self, keyword, offset, max_num, filters=None):
        for first in range(offset, offset + max_num, 20):
            self.out_queue.put(
                _search_url("bing").format(keyword=quote_plus(keyword), offset=first)
            )


class _BaiduFeeder(BaiduFeeder):
    def feed(self, keyword, offset, max_num, filters=None):
        for first in range(offset, offset + max_num, 30):
            self.out_queue.put(
                _search_url("baidu").format(keyword=quote_plus(keyword), offset=first)
            )


class _CountingDownloader(ImageDownloader):
    """Records where each file came from and reports download progress on the run."""

    run_id: int
    requested: int
    sources: dict[str, str]

    def process_meta(self, task):
        if not task.get("success"):
            return
        self.sources[task["filename"]] = task["file_url"]
        try:
            ScrapeRun.objects.filter(pk=self.run_id).update(
                downloaded=len(self.sources),
                progress=min(50.0, 50.0 * len(self.sources) / max(self.requested, 1)),
            )
        except DatabaseError as exc:  # progress is worth less than the download itself
            log.warning("scrape run %s: progress not saved: %s", self.run_id, exc)
        finally:
            connection.close()  # this is icrawler's thread; don't leave its connection open


class _RecordingSession(Session):
    """icrawler's session, remembering what went wrong: icrawler logs a failed request and
    goes on, so without this a search engine that cannot be reached looks like one that
    found nothing."""

    def __init__(self, proxy_pool, *, search_prefix: str):
        super().__init__(proxy_pool)
        self.search_prefix = search_prefix
        self.lock = threading.Lock()
        self.page_problems: list[str] = []
        self.image_problems: list[str] = []
        self.pages_answered = 0

    def get(self, url, **kwargs):
        is_page = url.startswith(self.search_prefix)
        try:
            response = super().get(url, **kwargs)
        except requests.RequestException as exc:
            self._note(is_page, request_problem(exc))
            raise
        if response.status_code != 200:
            self._note(is_page, f"it answered HTTP {response.status_code}")
        elif is_page:
            with self.lock:
                self.pages_answered += 1
        return response

    def _note(self, is_page: bool, problem: str) -> None:
        with self.lock:
            (self.page_problems if is_page else self.image_problems).append(problem)


def request_problem(exc: requests.RequestException) -> str:
    """Why a request failed, as a curator would say it."""
    text = str(exc)
    if isinstance(exc, requests.Timeout):
        return "it did not answer in time"
    if isinstance(exc, requests.exceptions.SSLError):
        return "a secure connection could not be made"
    if isinstance(exc, requests.ConnectionError):
        if "NameResolution" in text or "Name or service not known" in text or "resolve" in text:
            return "no network (its name could not be looked up)"
        if "Connection refused" in text or "Errno 111" in text:
            return "the connection was refused"
        if "Network is unreachable" in text:
            return "no network"
        return "the connection failed"
    return type(exc).__name__


def _failure(session: _RecordingSession, *, engine: str, keyword: str) -> str:
    """Why a scrape stored no file at all."""
    host = urlsplit(session.search_prefix).hostname or engine
    if session.page_problems and not session.pages_answered:
        return f"could not reach the search engine ({host}): {session.page_problems[0]}"
    if session.image_problems:
        return (
            f"could not download the images the search engine ({host}) listed: "
            f"{session.image_problems[0]}"
        )
    return f"the search engine ({host}) listed no images for “{keyword}”"


ENGINES = {
    "bing": (BingImageCrawler, _BingFeeder),
    "baidu": (BaiduImageCrawler, _BaiduFeeder),
}


def scrape_start(
    *,
    member: Member,
    keyword: str = "",
    count: int,
    engine: str,
    requested_by=None,
    enqueue: bool = True,
) -> ScrapeRun:
    """Create a scrape run and, unless told not to, enqueue its job once the transaction commits."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if count < 1:
        raise ValueError("count must be at least 1")
    keyword = keyword.strip() or f"{member.group.name} {member.name}"
    with transaction.atomic():
        run = ScrapeRun.objects.create(
            member=member,
            keyword=keyword,
            engine=engine,
            requested=count,
            requested_by=requested_by,
            stage="queued",
        )
        if enqueue:
            job_enqueue(run)
    return run


def scrape_run(*, run: ScrapeRun, attempt: int | None = None) -> ScrapeRun:
    """Download up to `run.requested` images and ingest them as pending images of the member."""
    crawler_cls, feeder_cls = ENGINES[run.engine]
    member = run.member
    with (
        running(run, attempt=attempt) as progress,
        tempfile.TemporaryDirectory(prefix="scrape-") as tmp,
    ):
        progress(0, "searching and downloading", force=True)
        crawler = crawler_cls(
            feeder_cls=feeder_cls,
            downloader_cls=_CountingDownloader,
            downloader_threads=2,
            storage={"root_dir": tmp},
            log_level=logging.WARNING,
        )
        session = _RecordingSession(
            crawler.proxy_pool, search_prefix=_search_url(run.engine).split("{", 1)[0]
        )
        session.headers.update(crawler.session.headers)
        for part in (crawler, crawler.feeder, crawler.parser, crawler.downloader):
            part.session = session
        crawler.downloader.run_id = run.pk
        crawler.downloader.requested = run.requested
        crawler.downloader.sources = sources = {}
        crawler.crawl(keyword=run.keyword, max_num=run.requested, max_idle_time=30)
        files = sorted(Path(tmp).iterdir())
        if not files:
            raise JobFailed(_failure(session, engine=run.engine, keyword=run.keyword))
        progress(50, f"cleaning {len(files)} images", force=True)
        counts = {"added": 0, "duplicate": 0, "rejected": 0}
        with services.flags_refreshed_once():
            for done, path in enumerate(files, start=1):
                result = services.image_ingest(
                    member=member,
                    data=path.read_bytes(),
                    name=Path(sources.get(path.name, path.name)).name,
                    source=GalleryImage.Source.SCRAPE,
                    source_url=sources.get(path.name, ""),
                    uploaded_by=run.requested_by,
                    skip_near_duplicates=True,
                )
                counts[result.outcome] += 1
                ScrapeRun.objects.filter(pk=run.pk).update(
                    added=counts["added"],
                    duplicates=counts["duplicate"],
                    rejected=counts["rejected"],
                )
                progress(50 + 45 * done / max(len(files), 1))
            progress(95, "recomputing flags", force=True)
        ScrapeRun.objects.filter(pk=run.pk).update(downloaded=len(files), stage="done")
    run.refresh_from_db()
    return run
