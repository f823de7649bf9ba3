"""Scraping runs icrawler for real against a local image-search server, never the internet."""

import html
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest
from django.core.management import call_command
from rq import SimpleWorker

from core.images import encode_jpeg
from gallery.models import GalleryImage, ScrapeRun
from gallery.scraping import scrape_start
from tests import imagefactory as make


def search_results():
    tom1 = make.encode(make.face("tom-hanks", 1), "PNG")
    tom2 = make.encode(make.face("tom-hanks", 2), "PNG")
    return {
        "a.jpg": tom1,
        "b.jpg": tom2,
        "c.jpg": tom1,  # the same file again
        "d.jpg": encode_jpeg(np.asarray(make.face("tom-hanks", 2).resize((140, 140))), 75),
        "e.jpg": make.encode(make.face("tom-hanks", 3), "JPEG"),
        "f.jpg": make.encode(make.face("tom-hanks", 4), "JPEG"),
    }


@pytest.fixture
def image_search(settings):
    """A local stand-in for Bing's image search: a results page and the images it links."""
    files = search_results()
    queries = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            url = urlparse(self.path)
            if url.path == "/images/async":
                query = parse_qs(url.query)
                queries.append(query["q"][0])
                first = int(query.get("first", ["0"])[0])
                names = sorted(files) if first == 0 else []
                base = f"http://127.0.0.1:{self.server.server_port}/img/"
                divs = "".join(
                    f'<div class="imgpt"><a class="iusc" m="{html.escape(json.dumps({"murl": base + n}, separators=(",", ":")))}">'
                    f"</a></div>"
                    for n in names
                )
                self.reply(200, f"<html><body>{divs}</body></html>".encode(), "text/html")
            elif url.path.startswith("/img/") and url.path[5:] in files:
                self.reply(200, files[url.path[5:]], "image/jpeg")
            else:
                self.reply(404, b"not found", "text/plain")

        def reply(self, status, body, kind):
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_port
    settings.SCRAPE_SEARCH_URLS = {
        "bing": f"http://127.0.0.1:{port}/images/async?q={{keyword}}&first={{offset}}",
        "baidu": f"http://127.0.0.1:{port}/nothing?q={{keyword}}&pn={{offset}}",
    }
    yield queries
    server.shutdown()
    server.server_close()


@pytest.mark.django_db(transaction=True)
def test_a_scrape_job_imports_new_images_and_skips_duplicates(image_search, rq_queue, tom):
    run = scrape_start(member=tom, count=6, engine="bing")
    assert run.keyword == "Celebs Tom Hanks"
    assert rq_queue.count == 1

    SimpleWorker([rq_queue], connection=rq_queue.connection).work(burst=True)

    run.refresh_from_db()
    assert run.state == ScrapeRun.State.DONE, run.error
    assert image_search == ["Celebs Tom Hanks"]
    assert run.downloaded == 6
    assert (run.added, run.duplicates, run.rejected) == (4, 2, 0)
    assert run.progress == 100
    images = GalleryImage.objects.filter(member=tom)
    assert images.count() == 4
    assert set(images.values_list("status", flat=True)) == {GalleryImage.Status.PENDING}
    assert set(images.values_list("source", flat=True)) == {GalleryImage.Source.SCRAPE}
    assert all(
        url.startswith("http://127.0.0.1:") for url in images.values_list("source_url", flat=True)
    )


@pytest.mark.django_db(transaction=True)
def test_scraping_again_finds_only_duplicates(image_search, tom, capsys):
    call_command("scrape", "--member", "tom-hanks", "--count", "6", "--keyword", "tom hanks")
    assert "4 added, 2 duplicates" in capsys.readouterr().out
    call_command("scrape", "--member", "tom-hanks", "--count", "6", "--keyword", "tom hanks")
    assert "0 added, 6 duplicates" in capsys.readouterr().out
    assert image_search == ["tom hanks", "tom hanks"]


def run_scrape(run):
    """The scrape as its job runs it: a failure is on the row, then raised."""
    from gallery.scraping import scrape_run

    with pytest.raises(Exception) as raised:
        scrape_run(run=run)
    run.refresh_from_db()
    return run, raised.value


@pytest.mark.django_db(transaction=True)
def test_a_search_that_fails_ends_failed_with_the_answer_it_got(image_search, tom):
    run = scrape_start(member=tom, count=3, engine="baidu", enqueue=False)
    run, _ = run_scrape(run)
    assert run.state == ScrapeRun.State.FAILED
    assert run.error == "could not reach the search engine (127.0.0.1): it answered HTTP 404"
    assert run.added == 0
    assert GalleryImage.objects.count() == 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("http://www.bing.invalid/images/async", "www.bing.invalid): no network (its name"),
        ("http://127.0.0.1:9/images/async", "127.0.0.1): the connection was refused"),
    ],
    ids=["name-not-resolved", "connection-refused"],
)
def test_a_search_engine_that_cannot_be_reached_fails_the_run_saying_why(
    settings, tom, address, reason
):
    settings.SCRAPE_SEARCH_URLS = {"bing": address + "?q={keyword}&first={offset}"}
    run = scrape_start(member=tom, count=3, engine="bing", enqueue=False)
    run, raised = run_scrape(run)
    assert run.state == ScrapeRun.State.FAILED
    assert run.error.startswith("could not reach the search engine (") and reason in run.error
    assert str(raised) == run.error  # in plain words, not an exception's type and repr
    assert run.stage != "done"


@pytest.mark.django_db
def test_an_unknown_engine_is_refused(tom):
    with pytest.raises(ValueError, match="unknown engine 'altavista'"):
        scrape_start(member=tom, count=3, engine="altavista")
