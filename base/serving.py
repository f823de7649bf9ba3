"""Handing a stored file to the web server in front once a view has checked who may read it.

Behind nginx, a view that sends a video streams it for as long as the download lasts, holding
a web process for minutes. With MEDIA_ACCEL_REDIRECT set, the view answers with an empty
response naming the file in `X-Accel-Redirect`; nginx then sends the bytes (ranges included)
from an `internal` location that no URL reaches by itself (docs/deploy.md)."""

import mimetypes
import os
from urllib.parse import quote

from django.conf import settings
from django.http import HttpResponse
from django.utils.http import content_disposition_header

from base.storage import local_path


def accel_response(field, content_type: str | None, filename: str | None = None):
    """The response that has the proxy send `field`'s file, or None where it cannot: no
    MEDIA_ACCEL_REDIRECT, or media not on a disk (S3, which the view streams itself)."""
    prefix = settings.MEDIA_ACCEL_REDIRECT
    if not prefix or local_path(field.name, field.storage) is None:
        return None
    guessed = mimetypes.guess_type(field.name)[0]
    response = HttpResponse(content_type=content_type or guessed or "application/octet-stream")
    response["X-Accel-Redirect"] = prefix + quote(field.name)
    if filename:
        # The header FileResponse sends: quoted, RFC 5987 for names that are not plain ASCII.
        response["Content-Disposition"] = content_disposition_header(
            False, os.path.basename(filename)
        )
    return response
