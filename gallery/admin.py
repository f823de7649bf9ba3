import json

from django import forms
from django.contrib import admin, messages
from django.db.models import Q
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from base.admin import JobAdminMixin
from gallery import selectors, services
from gallery.models import GalleryImage, Group, Member, ScrapeRun


def thumbnail(image: GalleryImage, size: int = 80):
    url = reverse("gallery:thumbnail", args=[image.uuid]) if image.file else ""
    return render_to_string("admin/gallery/parts/thumbnail.html", {"url": url, "size": size})


def health_line(counts: dict[str, int]):
    parts = selectors.health_parts(counts)
    return render_to_string("admin/gallery/parts/health.html", {"parts": parts})


class ColourInput(forms.TextInput):
    """The browser's colour picker; it sends #rrggbb, the format the model checks."""

    input_type = "color"


class MemberForm(forms.ModelForm):
    """A new member starts with the next free palette colour, chosen with a picker."""

    class Meta:
        model = Member
        fields = ["group", "name", "slug", "color", "order"]
        widgets = {"color": ColourInput}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.instance.pk and not self.initial.get("color"):
            group = self.initial.get("group") or getattr(self.instance, "group", None)
            if isinstance(group, (int, str)):
                group = Group.objects.filter(pk=group).first()
            self.initial["color"] = services.next_colour(group, offset=_form_index(self.prefix))


def _form_index(prefix: str | None) -> int:
    """Row n of an inline formset ("members-3") gets the n-th free colour."""
    tail = (prefix or "").rpartition("-")[2]
    return int(tail) if tail.isdigit() else 0


class MemberInline(admin.TabularInline):
    model = Member
    form = MemberForm
    extra = 0
    fields = ["name", "slug", "color", "order"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(Group)
class GroupAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "member_count", "embedding_model"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MemberInline]
    readonly_fields = ["embedding_model"]

    @admin.display(description="members")
    def member_count(self, group):
        return group.members.count()


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
        # icrawler and all it pulls in load only when a curator opens the scraping form.
        from gallery.scraping import ENGINES

        super().__init__(*args, **kwargs)
        self.fields["engine"].choices = [(name, name) for name in ENGINES]


@admin.register(Member)
class MemberAdmin(admin.ModelAdmin):
    form = MemberForm
    list_display = ["name", "group", "swatch", "health", "upload_link"]
    list_filter = ["group"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [GalleryImageInline]
    actions = ["scrape_images", "refresh_flags"]

    class Media:
        css = {"all": ["gallery/admin.css"]}  # the swatches and the image thumbnails

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
        return render_to_string("admin/gallery/parts/swatch.html", {"color": member.color})

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
    from gallery.scraping import scrape_start  # icrawler loads only to scrape

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
        "too_small",
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

    @admin.display(description="too small")
    def too_small(self, image):
        # Plain words: Django's boolean icon drew "not too small" as a red cross.
        return "yes: smaller than the gallery's minimum" if image.is_small else "no"

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
        boxes = image.detected_boxes or []
        context = {
            "has_file": bool(image.file),
            "width": image.width,
            "height": image.height,
            "boxes": json.dumps(boxes),
            "chosen": json.dumps(image.face_box),
            "pick_url": reverse("gallery:pick_face", args=[image.pk]),
            "file_url": reverse("gallery:file", args=[image.uuid]) if image.file else "",
            "count": len(boxes),
        }
        return render_to_string("admin/gallery/parts/face_picker.html", context)

    class Media:
        css = {"all": ["gallery/admin.css"]}
        js = ["gallery/face_picker.js"]

    @admin.action(description="Approve selected images (those with a face)", permissions=["change"])
    def approve(self, request, queryset):
        images = list(queryset.select_related("member", "looks_like__group"))
        # Images without a face are skipped below anyway; the others' flags deserve a second look.
        flagged = [(i, i.flags()) for i in images if i.face_box is not None and i.flags()]
        if flagged and "confirmed" not in request.POST:
            # A flag is a reason to look twice: say which, and approve only when asked again.
            context = {
                **self.admin_site.each_context(request),
                "title": "Approve flagged images?",
                "opts": self.model._meta,
                "images": images,
                "flagged": [
                    {"image": image, "flags": flags, "thumb": thumbnail(image, 96)}
                    for image, flags in flagged
                ],
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            }
            return TemplateResponse(
                request, "admin/gallery/galleryimage/approve_confirm.html", context
            )
        approved, skipped = services.images_approve(images=images)
        self.message_user(request, f"Approved {approved} image(s).", messages.SUCCESS)
        if skipped:
            self.message_user(
                request,
                f"Skipped {skipped} image(s) without a chosen face: pick one first.",
                messages.WARNING,
            )

    @admin.action(description="Reject selected images", permissions=["change"])
    def reject(self, request, queryset):
        count = services.images_reject(images=list(queryset.select_related("member__group")))
        self.message_user(request, f"Rejected {count} image(s).", messages.SUCCESS)

    @admin.action(description="Detect faces again", permissions=["change"])
    def redetect(self, request, queryset):
        images = list(queryset.select_related("member__group"))
        with services.flags_refreshed_once():
            for image in images:
                services.image_redetect(image=image)
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
