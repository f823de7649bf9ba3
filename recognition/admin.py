from django.contrib import admin, messages
from django.contrib.admin.widgets import AdminRadioSelect
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from base.admin import JobAdminMixin
from gallery.admin import GroupAdmin as GalleryGroupAdmin
from gallery.admin import MemberAdmin as GalleryMemberAdmin
from gallery.models import Group, Member
from recognition import selectors, services
from recognition.charts import confusion_png
from recognition.models import ModelVersion, TrainingRun


def percent(value) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def waiting_versions(groups=None):
    """Versions newer than their group's active one that wait for a curator."""
    versions = ModelVersion.objects.filter(needs_review=True, is_active=False).select_related(
        "group"
    )
    if groups is not None:
        versions = versions.filter(group__in=groups)
    return [
        v
        for v in versions
        if (a := selectors.active_version(v.group)) is None or v.number > a.number
    ]


def waiting_line(version):
    """ "v2 waits for review: <why>. Activate…", the link leading to a confirmation."""
    reason = version.note.removeprefix("waits for review: ")
    return format_html(
        '<span class="waits">{} v{} waits for review: {}</span> '
        '<a class="button activate-link" href="{}">Activate v{}…</a>',
        version.group,
        version.number,
        reason,
        reverse("admin:recognition_modelversion_activate", args=[version.pk]),
        version.number,
    )


def point_costs(version) -> dict:
    """{point: (members' faces left unnamed, strangers named)} from the version's
    cross-validation; empty for versions trained before operating points."""
    found = {}
    for key, p in ((version.metrics.get("operating_points") or {}) if version else {}).items():
        found[int(key)] = (p.get("known_unnamed"), p.get("strangers_named"))
    return found


def point_choices(version) -> list[tuple[int, str]]:
    """The operating points as a curator chooses them: each with what it costs."""
    costs = point_costs(version)
    choices = []
    for value, label in Group.Naming.choices:
        if value in costs:
            unnamed, named = costs[value]
            label = (
                f"{label}: {percent(unnamed)} of members' faces left unnamed, "
                f"{percent(named)} of strangers named"
            )
        choices.append((value, label))
    return choices


def point_help(version) -> str:
    if version is None:
        return "How sure the model must be to name a face; the costs show once it is trained."
    if not point_costs(version):
        return (
            f"v{version.number} was trained before operating points: it names at its "
            "cross-validated gates until a new version is trained."
        )
    return (
        f"How sure v{version.number} must be to name a face. The shares are from the "
        "cross-validation of its gallery (known faces seen anew; each member held out as a "
        "stranger). Moving it names the group's stored videos again."
    )


class GroupAdmin(GalleryGroupAdmin):
    """The gallery's group page, with what recognition adds: the active model, training, and
    switching the face model."""

    list_display = [*GalleryGroupAdmin.list_display, "active_version", "operating_point"]
    actions = ["train", "switch_to_arcface", "switch_to_dlib"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        field = form.base_fields.get("operating_point")
        if field is not None:
            version = selectors.active_version(obj) if obj is not None else None
            field.widget = AdminRadioSelect(attrs={"class": "radiolist"})
            field.choices = point_choices(version)
            field.help_text = point_help(version)
        return form

    def save_model(self, request, obj, form, change):
        point = obj.operating_point
        if change and "operating_point" in form.changed_data:
            # Saved by the service, which also names the group's stored videos again.
            obj.operating_point = form.initial.get("operating_point", 0)
            super().save_model(request, obj, form, change)
            services.group_operating_point_set(group=obj, point=point)
            self.message_user(
                request,
                f"{obj} now names at \u201c{obj.get_operating_point_display()}\u201d; its "
                "videos are being named again.",
                messages.SUCCESS,
            )
            return
        super().save_model(request, obj, form, change)

    @admin.display(description="active model")
    def active_version(self, group):
        version = selectors.active_version(group)
        waiting = format_html_join(
            "", "<br>{}", ((waiting_line(v),) for v in waiting_versions([group]))
        )
        if version is None:
            return format_html("none yet{}", waiting)
        accuracy = version.metrics.get("accuracy")
        return format_html(
            '<a href="{}">v{}</a> ({}){}',
            reverse("admin:recognition_modelversion_change", args=[version.pk]),
            version.number,
            "accuracy —" if accuracy is None else f"accuracy {100 * accuracy:.1f}%",
            waiting,
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


class MemberAdmin(GalleryMemberAdmin):
    """The gallery's member list, saying when a trained version waits for a curator."""

    def changelist_view(self, request, extra_context=None):
        if request.method == "GET":
            for version in waiting_versions():
                self.message_user(request, waiting_line(version), messages.WARNING)
        return super().changelist_view(request, extra_context)


admin.site.unregister(Member)
admin.site.register(Member, MemberAdmin)


class ActiveFilter(admin.SimpleListFilter):
    title = "use"
    parameter_name = "active"

    def lookups(self, request, model_admin):
        return [("yes", "the active version"), ("no", "the others")]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(is_active=self.value() == "yes")
        return queryset


class ReviewFilter(admin.SimpleListFilter):
    title = "review"
    parameter_name = "review"

    def lookups(self, request, model_admin):
        return [("waiting", "waiting for a curator"), ("no", "not waiting")]

    def queryset(self, request, queryset):
        if self.value() in ("waiting", "no"):
            return queryset.filter(needs_review=self.value() == "waiting")
        return queryset


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = [
        "__str__",
        "status",
        "accuracy_col",
        "coverage",
        "faces",
        "created",
    ]
    list_filter = ["group", ActiveFilter, ReviewFilter]
    actions = ["activate"]
    fields = [
        "group",
        "number",
        "is_active",
        "needs_review",
        "note",
        "naming_rule",
        "quality",
        "confusion",
        "videos_changed",
        "counts",
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

    @admin.display(description="status")
    def status(self, version):
        if version.is_active:
            return mark_safe('<strong class="active">active</strong>')  # fixed markup
        if version in waiting_versions([version.group]):
            return waiting_line(version)
        return "—"

    @admin.display(description="coverage @ 99% precision")
    def coverage(self, version):
        return percent(version.metrics.get("coverage_at_99_precision"))

    @admin.display(description="seed method accuracy")
    def seed_accuracy(self, version):
        return percent(version.metrics.get("seed", {}).get("accuracy"))

    @admin.display(description="training faces per member")
    def counts(self, version):
        rows = sorted(version.training_counts.items(), key=lambda item: -item[1])
        return format_html(
            '<table class="counts">{}</table>',
            format_html_join(
                "",
                "<tr><th>{}</th><td>{}</td></tr>",
                ((slug.replace("-", " ").title(), count) for slug, count in rows),
            ),
        )

    @admin.display(description="training faces")
    def faces(self, version):
        return sum(version.training_counts.values())

    @admin.display(description="naming rule")
    def naming_rule(self, version):
        rule = version.metrics.get("rule") or {}
        if not rule:
            return "calibrated SVM with a distance gate (trained before the rule was chosen)"
        rows = format_html_join(
            "",
            "<tr><th>{} ({})</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    c["rule"],
                    c["how"],
                    percent(c["known_unknown"]),
                    percent(c["known_wrong"]),
                    percent(c["strangers_unknown"]),
                    percent(c["balanced_accuracy"]),
                )
                for c in rule.get("candidates", [])
            ),
        )
        table = format_html(
            '<table class="rules"><tr><th>candidate (cross-validation of the gallery)</th>'
            "<th>known called unknown</th><th>known named wrong</th><th>strangers kept out</th>"
            "<th>balanced accuracy</th></tr>{}</table>",
            rows,
        )
        margin = rule.get("margin")
        return format_html(
            "<p>{}: {}</p>{}{}",
            rule.get("rule"),
            rule.get("why", ""),
            table,
            format_html("<p>{}</p>", services.margin_gate_words(margin)) if margin else "",
        )

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
            ("known faces named wrong", m.get("known_wrong"), seed.get("known_wrong")),
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
                "<int:version_id>/activate/",
                self.admin_site.admin_view(self.activate_view),
                name="recognition_modelversion_activate",
            ),
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

    def activate_view(self, request, version_id):
        """Asks, naming the reason it waited, then activates."""
        version = get_object_or_404(ModelVersion.objects.select_related("group"), pk=version_id)
        if not self.has_change_permission(request, version):
            raise PermissionDenied
        if request.method == "POST":
            services.model_version_activate(version=version, note="by a curator")
            self.message_user(request, f"{version} is now active.", messages.SUCCESS)
            return redirect("admin:recognition_modelversion_changelist")
        context = {
            **self.admin_site.each_context(request),
            "title": f"Activate {version}?",
            "version": version,
            "active": selectors.active_version(version.group),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/recognition/activate.html", context)

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
    list_display = ["created", "group", "state", "progress_bar", "reason", "result"]
    list_filter = ["group", "state"]
    readonly_fields = [f.name for f in TrainingRun._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="result")
    def result(self, run):
        version = run.version
        if version is None:
            return "—"
        link = format_html(
            '<a href="{}">v{}</a>',
            reverse("admin:recognition_modelversion_change", args=[version.pk]),
            version.number,
        )
        if version.is_active:
            return format_html("{} is active", link)
        if version in waiting_versions([version.group]):
            return waiting_line(version)
        return format_html("{} (not active)", link)
