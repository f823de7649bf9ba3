"""Serving private media with HTTP range support, so browsers can seek in videos."""

import os
import re

from django.http import FileResponse, HttpResponse, StreamingHttpResponse
from django.utils.http import content_disposition_header

from base.serving import accel_response
from base.storage import open_for_reading

RANGE = re.compile(r"bytes=(\d*)-(\d*)$")
CHUNK = 256 * 1024


def ranged_file_response(request, field, content_type: str, filename: str | None = None):
    """A FileResponse for `field` (a FieldFile), answering Range requests with 206.

    The bytes are streamed from the storage (ranged GETs on S3), so every request passes the
    view's access check and gets this response's headers; no URL to the file is handed out.
    Behind nginx with MEDIA_ACCEL_REDIRECT, nginx sends a file on the local disk instead."""
    accel = accel_response(field, content_type, filename)
    if accel is not None:
        return accel
    handle = open_for_reading(field.name, field.storage)
    size = handle.seek(0, os.SEEK_END)
    handle.seek(0)
    match = RANGE.match(request.headers.get("Range", "").strip())
    if not match or not any(match.groups()):
        response = FileResponse(handle, content_type=content_type, filename=filename)
        response["Accept-Ranges"] = "bytes"
        return response
    first, last = match.groups()
    if first == "":  # a suffix range: the last N bytes
        start, end = max(0, size - int(last)), size - 1
    else:
        start, end = int(first), min(int(last) if last else size - 1, size - 1)
    if start >= size or start > end:
        handle.close()
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
        return response
    handle.seek(start)

    def body(remaining=end - start + 1):
        try:
            while remaining > 0:
                chunk = handle.read(min(CHUNK, remaining))
                if not chunk:
                    break
                remaining -= len(chunk)
                yield chunk
        finally:
            handle.close()

    response = StreamingHttpResponse(body(), status=206, content_type=content_type)
    response["Content-Range"] = f"bytes {start}-{end}/{size}"
    response["Content-Length"] = str(end - start + 1)
    response["Accept-Ranges"] = "bytes"
    if filename:
        # The same header FileResponse sends for a whole file: quoted, with RFC 5987 for
        # names that are not plain ASCII.
        response["Content-Disposition"] = content_disposition_header(
            False, os.path.basename(filename)
        )
    return response
