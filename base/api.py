"""Strict input for the JSON endpoints: bounded bodies, bounded whole numbers, errors as JSON in
plain words (never a stack trace, never an HTML page)."""

import functools
import json
import logging

from django.core.exceptions import RequestDataTooBig
from django.http import Http404, JsonResponse

log = logging.getLogger(__name__)

# The largest JSON body an endpoint reads; a correction is under 200 bytes.
MAX_BODY_BYTES = 64 * 1024
# The largest whole number taken: a database id or a frame number fits well inside it.
MAX_INT = 2**31 - 1


class BadRequest(Exception):
    """The request cannot be taken; the message says why, for the person who sent it."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def read_json(request, *, max_bytes: int = MAX_BODY_BYTES) -> dict:
    """The request's JSON object, or BadRequest saying what is wrong with it."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > max_bytes:
        raise BadRequest(f"the request is too large: at most {max_bytes // 1024} kB of JSON", 413)
    try:
        raw = request.body
    except RequestDataTooBig:
        raise BadRequest(
            f"the request is too large: at most {max_bytes // 1024} kB of JSON", 413
        ) from None
    if len(raw) > max_bytes:
        raise BadRequest(f"the request is too large: at most {max_bytes // 1024} kB of JSON", 413)
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: arrays nested thousands deep
        raise BadRequest("the request is not valid JSON") from None
    if not isinstance(data, dict):
        raise BadRequest("the request must be a JSON object")
    return data


def whole_number(data: dict, key: str, *, default: int | None = None, minimum: int = 0) -> int:
    """data[key] as a whole number in [minimum, MAX_INT]; digits in a string count too (form
    fields send them), floats, booleans and anything huge do not."""
    value = data.get(key, default)
    if value is None:
        raise BadRequest(f"{key} is missing")
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 10:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"{key} must be a whole number")
    if not minimum <= value <= MAX_INT:
        raise BadRequest(f"{key} must be between {minimum} and {MAX_INT}")
    return value


def json_endpoint(view):
    """Answer a view's BadRequest, Http404 and unexpected errors as JSON."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except BadRequest as exc:
            return JsonResponse({"error": str(exc)}, status=exc.status)
        except Http404 as exc:
            return JsonResponse({"error": str(exc) or "not found"}, status=404)
        except Exception:
            log.exception("%s failed", request.path)
            return JsonResponse(
                {"error": "something went wrong on our side; try again"}, status=500
            )

    return wrapper
