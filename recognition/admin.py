from django.contrib import admin, messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from base.admin import JobAdminMixin
from gallery.admin import GroupAdmin as GalleryGroupAdmin
from gallery.models import Group
from recognition import selectors, services
from recognition.charts import confusion_png
from recognition.models import ModelVersion, TrainingRun


def percent(value) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


class GroupAdmin(GalleryGroupAdmin):
    """The gallery's group page, with what recognition adds: the active model, training, and
    switching the face model."""

    list_display = [*GalleryGroupAdmin.list_display, "active_version"]
    actions = ["train", "switch_to_arcface", "switch_to_dlib"]

    @admin.display(description="active model")
    def active_version(self, group):
        version = selectors.active_version(group)
        if version is None:
            return "none yet"
        accuracy = version.metrics.get("accuracy")
        return format_html(
            '<a href="{}">v{}</a> ({})',
            reverse("admin:recognition_modelversion_change", args=[version.pk]),
            version.number,
            "accuracy —" if accuracy is None else f"accuracy {100 * accuracy:.1f}%",
        )

    @admin.action(description="Train a new model version", permissions=["change"])
    def train(self, request, queryset):
        for group in queryset:
            run = services.training_request(
                group=group, reason="requested in admin", requested_by=request.user
            )
            joined = f" (with {run.requests - 1} earlier request(s))" if run.requests > 1 else ""
            self.message_user(
                request, f"{group}: training queued as run {run.pk}{joined}.", messages.SUCCESS
            )

    @admin.action(description="Switch the face model to ArcFace", permissions=["change"])
    def switch_to_arcface(self, request, queryset):
        self._switch(request, queryset, "arcface")

    @admin.action(description="Switch the face model to dlib", permissions=["change"])
    def switch_to_dlib(self, request, queryset):
        self._switch(request, queryset, "dlib")

    def _switch(self, request, queryset, name):
        for group in queryset:
            if group.embedding_model == name:
                self.message_user(request, f"{group} already uses that face model.")
                continue
            run = services.group_switch_embedding(group=group, name=name, requested_by=request.user)
            self.message_user(
                request,
                f"{group}: switching to {group.get_embedding_model_display()} as training run "
                f"{run.pk}: the gallery is encoded again, a version trained, and the videos "
                "analysed again once it is active.",
                messages.SUCCESS,
            )


admin.site.unregister(Group)
admin.site.register(Group, GroupAdmin)


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = [
        "__str__",
        "is_active",
        "accuracy_col",
        "coverage",
        "seed_accuracy",
        "negatives",
        "faces",
        "needs_review",
        "created",
    ]
    list_filter = ["group", "is_active", "needs_review"]
    actions = ["activate"]
    fields = [
        "group",
        "number",
        "is_active",
        "needs_review",
        "note",
        "quality",
        "confusion",
        "videos_changed",
        "training_counts",
        "embedding_model",
        "sha256",
        "file",
        "created",
        "activated",
    ]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False  # versions come from training runs only

    def has_delete_permission(self, request, obj=None):
        return bool(obj is None or not obj.is_active) and super().has_delete_permission(
            request, obj
        )

    @admin.display(description="accuracy (CV)")
    def accuracy_col(self, version):
        return percent(version.metrics.get("accuracy"))

    @admin.display(description="coverage at 99% precision")
    def coverage(self, version):
        return percent(version.metrics.get("coverage_at_99_precision"))

    @admin.display(description="“not this member” broken")
    def negatives(self, version):
        """Corrections saying a track is not someone that this version, naming freely, would
        break (relabels never do: they name the next best)."""
        total = version.metrics.get("negatives")
        if total is None:
            return "—"
        return f"{version.metrics.get('negatives_violated', 0)} of {total}"

    @admin.display(description="seed method accuracy")
    def seed_accuracy(self, version):
        return percent(version.metrics.get("seed", {}).get("accuracy"))

    @admin.display(description="training faces")
    def faces(self, version):
        return sum(version.training_counts.values())

    @admin.display(description="cross-validated quality")
    def quality(self, version):
        m = version.metrics
        seed = m.get("seed", {})
        rows = [
            ("accuracy", m.get("accuracy"), seed.get("accuracy")),
            ("balanced accuracy", m.get("balanced_accuracy"), seed.get("balanced_accuracy")),
            (
                "coverage at 99% precision",
                m.get("coverage_at_99_precision"),
                seed.get("coverage_at_99_precision"),
            ),
            ("known faces left unknown", m.get("known_unknown"), seed.get("known_unknown")),
            ("strangers left unknown", m.get("strangers_unknown"), seed.get("strangers_unknown")),
        ]
        table = format_html_join(
            "",
            "<tr><th>{}</th><td>{}</td><td>{}</td></tr>",
            ((a, percent(b), percent(c)) for a, b, c in rows),
        )
        per_member = format_html_join(
            "",
            "<tr><th>{}</th><td>{}</td><td>{}</td></tr>",
            (
                (slug, percent(v.get("precision")), percent(v.get("recall")))
                for slug, v in (m.get("per_member") or {}).items()
            ),
        )
        return format_html(
            "<table><tr><th></th><th>this version</th><th>seed method</th></tr>{}</table>"
            '<table style="margin-top:1em"><tr><th>member</th><th>precision</th><th>recall</th></tr>{}</table>',
            table,
            per_member,
        )

    @admin.display(description="videos whose labels it changed")
    def videos_changed(self, version):
        relabels = version.relabels.select_related("video")[:50]
        if not relabels:
            return "none"
        return format_html_join(
            ", ",
            '<a href="{}">{}</a> ({} tracks)',
            (
                (reverse("videos:watch", args=[r.video.uuid]), str(r.video), r.tracks_changed)
                for r in relabels
            ),
        )

    @admin.display(description="confusion matrix")
    def confusion(self, version):
        if not version.metrics.get("confusion"):
            return "—"
        url = reverse("admin:recognition_modelversion_confusion", args=[version.pk])
        return format_html('<img src="{}" alt="confusion matrix" style="max-width:100%">', url)

    def get_urls(self):
        return [
            path(
                "<int:version_id>/confusion.png",
                self.admin_site.admin_view(self.confusion_view),
                name="recognition_modelversion_confusion",
            ),
            *super().get_urls(),
        ]

    def confusion_view(self, request, version_id):
        version = get_object_or_404(ModelVersion, pk=version_id)
        confusion = version.metrics["confusion"]
        columns = confusion["labels"]  # the members, then "unknown"
        rows = [*columns[:-1], "strangers (held out)"]
        png = confusion_png(
            rows, columns, [*confusion["matrix"], confusion["strangers"]], expected=columns
        )
        return HttpResponse(png, content_type="image/png")

    @admin.action(
        description="Activate this version (roll back or forward)", permissions=["change"]
    )
    def activate(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Choose exactly one version to activate.", messages.ERROR)
            return
        version = services.model_version_activate(version=queryset.get())
        self.message_user(request, f"{version} is now active.", messages.SUCCESS)


@admin.register(TrainingRun)
class TrainingRunAdmin(JobAdminMixin, admin.ModelAdmin):
    list_display = ["created", "group", "state", "progress_bar", "requests", "reason", "version"]
    list_filter = ["group", "state"]
    readonly_fields = [f.name for f in TrainingRun._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
