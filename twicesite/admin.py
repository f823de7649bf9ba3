"""Admin pieces shared by the apps."""

from django.contrib import admin
from django.utils.html import format_html


class JobAdminMixin:
    """A progress column for models with twicesite.models.Job state; rows are reconciled with
    their RQ job first, so a worker that died shows as failed."""

    @admin.display(description="progress")
    def progress_bar(self, row):
        from twicesite.jobs import reconcile

        reconcile(row)
        detail = row.error if row.state == row.State.FAILED else row.stage
        return format_html(
            '<progress max="100" value="{}"></progress> {}% {}',
            int(row.progress),
            int(row.progress),
            detail,
        )
