from django.conf import settings
from django.contrib.staticfiles import finders
from django.http import FileResponse, Http404
from django.shortcuts import render
from django.views.decorators.http import require_GET

from base.units import size_label


def home(request):
    return render(
        request, "twicesite/home.html", {"max_size": size_label(settings.VIDEO_MAX_BYTES)}
    )


@require_GET
def favicon(request):
    """/favicon.ico, which browsers ask for whatever the page says."""
    path = finders.find("twicesite/favicon.ico")
    if not path:
        raise Http404("no icon")
    response = FileResponse(open(path, "rb"), content_type="image/x-icon")
    response["Cache-Control"] = "public, max-age=86400"
    return response
