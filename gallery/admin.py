import json

from django import forms
from django.contrib import admin, messages
from django.db.models import Q
from django.http import HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.views.decorators.http import require_POST

from gallery import selectors, services
from gallery.models import GalleryImage, Group, Member, ScrapeRun
from twicesite.admin import JobAdminMixin


def thumbnail(image: GalleryImage, size: int = 80):
    if not image.file:
        return format_html('<span class="gallery-nofile">embedding only</span>')
    url = reverse("gallery:thumbnail", args=[image.uuid])
    return format_html(
        '<img src="{}" width="{}" height="{}" style="object-fit:cover;border-radius:4px" alt="">',
        url,
        size,
        size,
    )


def health_line(counts: dict[str, int]):
    parts = [
        ("approved", counts["approved"]),
        ("pending", counts["pending"]),
        ("no face chosen", counts["no_face"]),
        ("small", counts["small"]),
        ("duplicates", counts["duplicates"]),
        ("suspected mislabels", counts["lookalikes"]),
    ]
    return format_html_join(
        " · ", '<span class="health-{}">{} {}</span>', ((n > 0, n, label) for label, n in parts)
    )


class MemberInline(admin.TabularInline):
    model = Member
    extra = 0
    fields = ["name", "slug", "color", "order"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(Group)
class GroupAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "member_count", "embedding_model", "active_version"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MemberInline]
    actions = ["train", "switch_to_arcface", "switch_to_dlib"]
    readonly_fields = ["embedding_model"]

    def _switch(self, request, queryset, name):
        from recognition.services import group_switch_embedding

        for group in queryset:
            if group.embedding_model == name:
                self.message_user(request, f"{group} already uses that face model.")
                continue
            run = group_switch_embedding(group=group, name=name, requested_by=request.user)
            self.message_user(
                request,
                f"{group}: switching to {group.get_embedding_model_display()} as training run "
                f"{run.pk}: the gallery is encoded again, a version trained, and the videos "
                "analysed again once it is active.",
                messages.SUCCESS,
            )

    @admin.action(description="Switch the face model to ArcFace", permissions=["change"])
    def switch_to_arcface(self, request, queryset):
        self._switch(request, queryset, "arcface")

    @admin.action(description="Switch the face model to dlib", permissions=["change"])
    def switch_to_dlib(self, request, queryset):
        self._switch(request, queryset, "dlib")

    @admin.display(description="members")
    def member_count(self, group):
        return group.members.count()

    @admin.display(description="active model")
    def active_version(self, group):
        version = group.versions.filter(is_active=True).first()
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
        from recognition.services import training_request

        for group in queryset:
            run = training_request(
                group=group, reason="requested in admin", requested_by=request.user
            )
            joined = f" (with {run.requests - 1} earlier request(s))" if run.requests > 1 else ""
            self.message_user(
                request, f"{group}: training queued as run {run.pk}{joined}.", messages.SUCCESS
            )


class GalleryImageInline(admin.TabularInline):
    model = GalleryImage
    fk_name = "member"
    extra = 0
    fields = ["preview", "status", "flag_list", "source", "original_name"]
    readonly_fields = ["preview", "flag_list", "source", "original_name"]
    show_change_link = True
    max_num = 0  # images are added through the upload page, which cleans them
    classes = ["collapse"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("looks_like")

    @admin.display(description="image")
    def preview(self, image):
        return thumbnail(image, 64)

    @admin.display(description="flags")
    def flag_list(self, image):
        return ", ".join(image.flags()) or "—"


class ScrapeForm(forms.Form):
    keyword = forms.CharField(required=False, help_text='Default: "<group> <member>".')
    count = forms.IntegerField(min_value=1, max_value=500, initial=50)
    engine = forms.ChoiceField(choices=[])

    def __init__(self, *args, **kwargs):
        from gallery.scraping import ENGINES

        super().__init__(*args, **kwargs)
        self.fields["engine"].choices = [(name, name) for name in ENGINES]


@admin.register(Member)
class MemberAdmin(admin.ModelAdmin):
    list_display = ["name", "group", "swatch", "health", "upload_link"]
    list_filter = ["group"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [GalleryImageInline]
    actions = ["scrape_images", "refresh_flags"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("group")

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        if hasattr(response, "context_data") and "cl" in response.context_data:
            members = response.context_data["cl"].result_list
            self._health = selectors.members_health(Member.objects.filter(pk__in=members))
        return response

    @admin.display(description="colour")
    def swatch(self, member):
        return format_html(
            '<span style="display:inline-block;width:1.2em;height:1.2em;border-radius:50%;'
            'background:{}" title="{}"></span>',
            member.color,
            member.color,
        )

    @admin.display(description="gallery health")
    def health(self, member):
        counts = getattr(self, "_health", {}).get(member.pk) or selectors.member_health(member)
        return health_line(counts)

    @admin.display(description="")
    def upload_link(self, member):
        return format_html(
            '<a class="button" href="{}">Upload images</a>',
            reverse("admin:gallery_member_upload", args=[member.pk]),
        )

    def get_urls(self):
        return [
            path(
                "<int:member_id>/upload/",
                self.admin_site.admin_view(self.upload_view),
                name="gallery_member_upload",
            ),
            *super().get_urls(),
        ]

    def upload_view(self, request, member_id):
        member = get_object_or_404(Member.objects.select_related("group"), pk=member_id)
        if not self.has_change_permission(request, member):
            return HttpResponseRedirect(reverse("admin:index"))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Upload images of {member.name}",
            "member": member,
            "opts": self.model._meta,
            "health": health_line(selectors.member_health(member)),
            "upload_url": reverse("gallery:upload_create", args=[member.pk]),
            "images_url": reverse("admin:gallery_galleryimage_changelist")
            + f"?member__id__exact={member.pk}",
        }
        return TemplateResponse(request, "admin/gallery/member/upload.html", context)

    @admin.action(description="Scrape images from image search", permissions=["change"])
    def scrape_images(self, request, queryset):
        if "apply" in request.POST:
            form = ScrapeForm(request.POST)
            if form.is_valid():
                runs = [
                    services_scrape_start(member, form.cleaned_data, request.user)
                    for member in queryset
                ]
                self.message_user(
                    request,
                    f"Started {len(runs)} scrape job(s); progress shows under Scrape runs.",
                    messages.SUCCESS,
                )
                return redirect("admin:gallery_scraperun_changelist")
        else:
            form = ScrapeForm()
        context = {
            **self.admin_site.each_context(request),
            "title": "Scrape images",
            "members": queryset,
            "form": form,
            "opts": self.model._meta,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            "runs": ScrapeRun.objects.filter(member__in=queryset)[:5],
        }
        return TemplateResponse(request, "admin/gallery/member/scrape.html", context)

    @admin.action(description="Recompute duplicate and look-alike flags", permissions=["change"])
    def refresh_flags(self, request, queryset):
        groups = Group.objects.filter(members__in=queryset).distinct()
        for group in groups:
            stats = services.group_refresh_flags(group=group)
            self.message_user(
                request,
                f"{group}: {stats['images']} images, {stats['duplicates']} duplicates, "
                f"{stats['lookalikes']} suspected mislabels.",
            )


def services_scrape_start(member, data, user):
    from gallery.scraping import scrape_start

    return scrape_start(
        member=member,
        keyword=data["keyword"],
        count=data["count"],
        engine=data["engine"],
        requested_by=user,
    )


class FlagFilter(admin.SimpleListFilter):
    title = "flag"
    parameter_name = "flag"

    def lookups(self, request, model_admin):
        return [
            ("any", "any flag"),
            ("noface", "no face chosen"),
            ("small", "too small"),
            ("duplicate", "duplicate"),
            ("lookalike", "looks like another member"),
            ("none", "no flag"),
        ]

    def queryset(self, request, queryset):
        conditions = {
            "noface": Q(face_box__isnull=True),
            "small": Q(is_small=True),
            "duplicate": Q(duplicate_of__isnull=False),
            "lookalike": Q(looks_like__isnull=False),
        }
        value = self.value()
        if value == "any":
            return selectors.flagged(queryset)
        if value == "none":
            return queryset.exclude(pk__in=selectors.flagged(queryset).values("pk"))
        if value in conditions:
            return queryset.filter(conditions[value])
        return queryset


class FaceCountFilter(admin.SimpleListFilter):
    title = "faces found"
    parameter_name = "faces"

    def lookups(self, request, model_admin):
        return [("0", "none"), ("1", "one"), ("2+", "several")]

    def queryset(self, request, queryset):
        if self.value() == "0":
            return queryset.filter(face_count=0)
        if self.value() == "1":
            return queryset.filter(face_count=1)
        if self.value() == "2+":
            return queryset.filter(face_count__gte=2)
        return queryset


@admin.register(GalleryImage)
class GalleryImageAdmin(admin.ModelAdmin):
    list_display = ["preview", "member", "status", "flag_list", "source", "size", "created"]
    list_display_links = ["preview", "member"]
    list_filter = ["member__group", "member", "status", "source", FaceCountFilter, FlagFilter]
    list_select_related = ["member", "looks_like"]
    search_fields = ["original_name", "source_url", "member__name"]
    list_per_page = 60
    actions = ["approve", "reject", "redetect", "delete_selected"]
    readonly_fields = [
        "face_picker",
        "original_name",
        "source",
        "source_url",
        "width",
        "height",
        "face_count",
        "face_box",
        "phash",
        "sha256",
        "embedding_model",
        "is_small",
        "duplicate_link",
        "looks_like",
        "uploaded_by",
        "created",
    ]
    fields = ["face_picker", "member", "status", "reason", *readonly_fields[1:]]

    def has_add_permission(self, request):
        return False  # images come in through the upload page, scraping or import, all cleaned

    @admin.display(description="image")
    def preview(self, image):
        return thumbnail(image)

    @admin.display(description="flags")
    def flag_list(self, image):
        return ", ".join(image.flags()) or "—"

    @admin.display(description="size")
    def size(self, image):
        return f"{image.width}×{image.height}" if image.width else "—"

    @admin.display(description="duplicate of")
    def duplicate_link(self, image):
        if not image.duplicate_of_id:
            return "—"
        other = image.duplicate_of
        return format_html(
            '<a href="{}">{}</a> {}',
            reverse("admin:gallery_galleryimage_change", args=[other.pk]),
            other,
            thumbnail(other, 48),
        )

    @admin.display(description="face")
    def face_picker(self, image):
        if not image.file:
            return "This sample has an embedding but no image file."
        boxes = image.detected_boxes or []
        chosen = image.face_box
        return format_html(
            '<div class="face-picker" data-width="{}" data-height="{}" data-boxes="{}" '
            'data-chosen="{}" data-url="{}"><img src="{}" alt="gallery image"></div>'
            '<p class="help">{}</p>',
            image.width,
            image.height,
            json.dumps(boxes),
            json.dumps(chosen),
            reverse("admin:gallery_galleryimage_pick_face", args=[image.pk]),
            reverse("gallery:file", args=[image.uuid]),
            "Click a box to make it this image's face, or use the whole image. "
            f"{len(boxes)} face(s) found.",
        )

    def get_urls(self):
        return [
            path(
                "<int:image_id>/pick-face/",
                self.admin_site.admin_view(require_POST(self.pick_face_view)),
                name="gallery_galleryimage_pick_face",
            ),
            *super().get_urls(),
        ]

    def pick_face_view(self, request, image_id):
        image = get_object_or_404(GalleryImage, pk=image_id)
        if not self.has_change_permission(request, image):
            return JsonResponse({"error": "not allowed"}, status=403)
        choice = request.POST.get("face", "")
        try:
            index = None if choice == "whole" else int(choice)
            services.image_choose_face(image=image, index=index)
        except ValueError as exc:
            return JsonResponse({"error": str(exc) or "choose a face"}, status=400)
        services.group_refresh_flags(group=image.member.group)
        image.refresh_from_db()
        return JsonResponse({"face_box": image.face_box, "flags": image.flags()})

    class Media:
        css = {"all": ["gallery/admin.css"]}
        js = ["gallery/face_picker.js"]

    @admin.action(description="Approve selected images (those with a face)", permissions=["change"])
    def approve(self, request, queryset):
        approved, skipped = services.images_approve(images=list(queryset))
        self.message_user(request, f"Approved {approved} image(s).", messages.SUCCESS)
        if skipped:
            self.message_user(
                request,
                f"Skipped {skipped} image(s) without a chosen face: pick one first.",
                messages.WARNING,
            )

    @admin.action(description="Reject selected images", permissions=["change"])
    def reject(self, request, queryset):
        count = services.images_reject(images=list(queryset))
        for group in Group.objects.filter(members__images__in=queryset).distinct():
            services.group_refresh_flags(group=group)
        self.message_user(request, f"Rejected {count} image(s).", messages.SUCCESS)

    @admin.action(description="Detect faces again", permissions=["change"])
    def redetect(self, request, queryset):
        images = list(queryset.select_related("member__group"))
        for image in images:
            services.image_redetect(image=image)
        for group in {image.member.group for image in images}:
            services.group_refresh_flags(group=group)
        self.message_user(request, f"Detected faces again on {len(images)} image(s).")


@admin.register(ScrapeRun)
class ScrapeRunAdmin(JobAdminMixin, admin.ModelAdmin):
    list_display = ["created", "member", "keyword", "engine", "state", "progress_bar", "outcome"]
    list_filter = ["state", "engine", "member__group"]
    readonly_fields = [f.name for f in ScrapeRun._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="result")
    def outcome(self, run):
        return (
            f"{run.downloaded}/{run.requested} downloaded: {run.added} added, "
            f"{run.duplicates} duplicates, {run.rejected} rejected"
        )
