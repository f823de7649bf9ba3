"""A refused CSRF check, answered as JSON on the JSON endpoints and as Django's page elsewhere."""

from django.http import JsonResponse
from django.views.csrf import csrf_failure as page


def csrf_failure(request, reason=""):
    if request.path.startswith("/api/"):
        return JsonResponse(
            {"error": "the request has no valid CSRF token: send the csrftoken cookie's value "
             "in the X-CSRFToken header"},
            status=403,
        )  # fmt: skip
    return page(request, reason=reason)
