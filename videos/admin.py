from django.contrib import admin, messages

from base.admin import JobAdminMixin
from recognition.admin import ModelVersionAdmin
from recognition.models import ModelVersion
from recognition.services import model_version_load
from videos import harvest, relabel
from videos.models import Correction, Fancam, Suggestion, Video


@admin.register(Video)
class VideoAdmin(JobAdminMixin, admin.ModelAdmin):
    list_display = [
        "__str__",
        "owner",
        "group",
        "state",
        "progress_bar",
        "length",
        "created",
    ]
    list_filter = ["state", "group", "is_public"]
    search_fields = ["title", "original_name", "owner__username"]
    readonly_fields = [
        "uuid", "original", "labelled", "preview", "size", "model_version", "fps", "frames", "width", "height",
        "duration", "rotation", "has_audio", "state", "stage", "progress", "error", "rq_job_id",
        "segments", "segments_done", "timings", "created", "started", "finished",
    ]  # fmt: skip
    fields = ["title", "owner", "group", "is_public", *readonly_fields]

    def get_queryset(self, request):
        # The probe facts hold every frame's time when the rate varies; no admin page shows them.
        return super().get_queryset(request).defer("probe_facts")

    @admin.display(description="length", ordering="duration")
    def length(self, video):
        return video.duration_label()


@admin.register(Correction)
class CorrectionAdmin(admin.ModelAdmin):
    """The queue of corrections awaiting a curator: approved ones become training samples."""

    list_display = [
        "created", "video", "track_number", "change", "user", "suggested_by", "review",
        "samples_added",
    ]  # fmt: skip
    list_filter = ["review", "kind", "video__group"]
    list_select_related = [
        "video", "track", "user", "before_member", "after_member", "suggestion__user",
    ]  # fmt: skip
    actions = ["approve", "reject"]
    readonly_fields = [f.name for f in Correction._meta.fields]

    def has_add_permission(self, request):
        return False

    @admin.display(description="track")
    def track_number(self, correction):
        return correction.track.number

    @admin.display(description="suggested by")
    def suggested_by(self, correction):
        """Who proposed it, when it was a suggestion the owner or a curator accepted (`user`)."""
        suggestion = getattr(correction, "suggestion", None)
        return (suggestion.user or "—") if suggestion else "—"

    @admin.display(description="change")
    def change(self, correction):
        text = correction.describe()
        return f"{text} (undone)" if correction.undone else text

    @admin.action(
        description="Approve: add the faces to the gallery and retrain", permissions=["change"]
    )
    def approve(self, request, queryset):
        result = harvest.corrections_approve(
            corrections=list(queryset.select_related("track__member", "video__group")),
            by=request.user,
        )
        self.message_user(
            request,
            f"Approved {result['approved']} correction(s): their faces go to the gallery, then "
            f"the model is trained again ({result['retrains']} group(s)).",
            messages.SUCCESS,
        )

    @admin.action(description="Reject: keep them out of training", permissions=["change"])
    def reject(self, request, queryset):
        count = harvest.corrections_reject(corrections=list(queryset), by=request.user)
        self.message_user(request, f"Rejected {count} correction(s).", messages.SUCCESS)


@admin.register(Suggestion)
class SuggestionAdmin(admin.ModelAdmin):
    """Changes proposed by people who may see a video but not change it; its owner (or a
    curator, on the review page) accepts or rejects them."""

    list_display = ["created", "video", "track", "describe", "user", "state", "decided_by"]
    list_filter = ["state", "kind"]
    list_select_related = ["video", "track", "user", "decided_by", "before_member", "member"]
    readonly_fields = [f.name for f in Suggestion._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(Fancam)
class FancamAdmin(JobAdminMixin, admin.ModelAdmin):
    list_display = [
        "created",
        "video",
        "member",
        "aspect",
        "highlights",
        "labels",
        "state",
        "progress_bar",
    ]
    list_filter = ["state", "aspect", "highlights"]
    list_select_related = ["video", "member"]
    readonly_fields = [f.name for f in Fancam._meta.fields]

    def has_add_permission(self, request):
        return False  # fans ask for fancams on the watch page


class VersionAdmin(ModelVersionAdmin):
    """Recognition's model version page, with what the videos know of it: how the people who
    said "this is not her" fare under it."""

    fields = [*ModelVersionAdmin.fields, "negatives"]
    readonly_fields = fields

    @admin.display(description="“not this member” corrections")
    def negatives(self, version):
        counts = relabel.negatives_violated(
            group=version.group, classifier=model_version_load(version)
        )
        if not counts["negatives"]:
            return "None yet."
        return (
            f"People said {counts['negatives']} track(s) are not the member the model named. "
            f"Naming freely, this version would name {counts['negatives_violated']} of them "
            "that member again; relabelling never does (it takes the next best, or unknown)."
        )


admin.site.unregister(ModelVersion)
admin.site.register(ModelVersion, VersionAdmin)
