"""Admin pieces shared by the apps."""

from django.contrib import admin, messages
from django.contrib.auth.models import Group as AuthGroup
from django.utils.html import format_html

from base.jobs import job_reconcile, job_retry


class JobAdminMixin:
    """A progress column and a Retry action for models with base.models.Job state; rows
    are reconciled with their RQ job first, so a lost job shows as queued again or failed."""

    actions = ["retry"]

    @admin.display(description="progress")
    def progress_bar(self, row):
        job_reconcile(row)
        detail = row.error if row.state == row.State.FAILED else row.stage
        return format_html(
            '<progress max="100" value="{}"></progress> {}% {}',
            int(row.progress),
            int(row.progress),
            detail,
        )

    @admin.action(description="Retry the selected failed jobs")
    def retry(self, request, queryset):
        queued = sum(job_retry(row) for row in queryset)
        skipped = queryset.count() - queued
        self.message_user(request, f"Queued {queued} job(s) again.", messages.SUCCESS)
        if skipped:
            self.message_user(request, f"Skipped {skipped} that had not failed.", messages.WARNING)


# The one group of users there is, the curators, gets its permissions from code after every
# migrate (base.roles): edits in the admin would be undone, and a second "Groups" beside the
# gallery's groups of members only confused. Users are still put in it from the user page.
if admin.site.is_registered(AuthGroup):
    admin.site.unregister(AuthGroup)

# The sidebar of every app took 300 px of a 1366 px screen, and the lists scrolled sideways
# under it: the index page and the breadcrumbs lead everywhere it did.
admin.site.enable_nav_sidebar = False
