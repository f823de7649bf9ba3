"""The jobs page of the admin: every job of every kind, live, with Retry and Cancel."""

from django.contrib import admin, messages
from django.http import Http404, JsonResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.views.decorators.http import require_GET, require_POST

from base import board
from base.jobs import job_cancel, job_reconcile, job_retry
from base.models import Job
from base.roles import is_curator


def _allowed(request) -> None:
    # admin_view has checked staff; these act on work, so curators and superusers only.
    if not is_curator(request.user):
        raise Http404("no such page")


@require_GET
def jobs_page(request):
    _allowed(request)
    context = {
        **admin.site.each_context(request),
        "title": "Jobs",
        "kinds": board.kinds(),
        "states": Job.State.choices,
        "state": request.GET.get("state", ""),
        "kind": request.GET.get("kind", ""),
        "overview": board.queues_overview(),
        "jobs": board.jobs_overview(
            state=request.GET.get("state", ""), kind=request.GET.get("kind", "")
        ),
    }
    return TemplateResponse(request, "admin/jobs.html", context)


@require_GET
def jobs_data(request):
    """What the page polls: the rows, the queues and the workers."""
    _allowed(request)
    state, kind = request.GET.get("state", ""), request.GET.get("kind", "")
    return JsonResponse(
        {"jobs": board.jobs_overview(state=state, kind=kind), **board.queues_overview()}
    )


@require_POST
def job_action(request, key, action):
    _allowed(request)
    row = board.job_by_key(key)
    if row is None:
        raise Http404("no such job")
    job_reconcile(row)
    name = f"{row._meta.verbose_name} “{row}”"
    if action == "retry":
        if job_retry(row):
            messages.success(request, f"Queued {name} again.")
        else:
            messages.warning(request, f"{name.capitalize()} has not failed: nothing to retry.")
    elif action == "cancel":
        if job_cancel(row, by=request.user.get_username()):
            messages.success(request, f"Cancelled {name}.")
        else:
            messages.warning(request, f"{name.capitalize()} was not running or queued.")
    else:
        raise Http404("no such action")
    back = request.POST.get("next", "")
    return redirect(back if back.startswith("/admin/") else "admin-jobs")
