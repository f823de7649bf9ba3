"""Fans' pages: sign-up, their videos, upload, the watch page and its progress, files,
exports and fancams."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from base.api import BadRequest, json_endpoint, read_json
from base.jobs import job_reconcile
from base.roles import is_curator
from base.units import size_label
from videos import exports, fancams, selectors, services
from videos.files import ranged_file_response
from videos.forms import SignupForm, UploadForm, VideoEditForm
from videos.models import Fancam


@require_http_methods(["GET", "POST"])
def signup(request):
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("videos:list")
    return render(request, "registration/signup.html", {"form": form})


@login_required
def video_list(request):
    curator = is_curator(request.user)
    everyone = curator and bool(request.GET.get("all"))
    videos = selectors.videos_visible_to(request.user, everyone=everyone)
    context = {
        "videos": videos.select_related("group", "owner")[:200],
        "everyone": everyone,
        "curator": curator,
    }
    return render(request, "videos/list.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def upload(request):
    if request.method == "GET":
        return render(
            request,
            "videos/upload.html",
            {"form": UploadForm(), "max_bytes": settings.VIDEO_MAX_BYTES},
        )
    # The size is known from the request headers before the body is read and stored.
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > settings.VIDEO_MAX_BYTES + 1_000_000:
        limit = size_label(settings.VIDEO_MAX_BYTES)
        return JsonResponse({"error": f"This file is over the {limit} limit."}, status=413)
    form = UploadForm(request.POST, request.FILES)
    if not form.is_valid():
        return JsonResponse({"error": form.error_sentence()}, status=400)
    try:
        video = services.video_upload(
            upload=form.cleaned_data["file"],
            group=form.cleaned_data["group"],
            owner=request.user,
            title=form.cleaned_data["title"]
            or services.title_from_name(form.cleaned_data["file_name"]),
            is_public=form.cleaned_data["is_public"],
        )
    except services.VideoRejected as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    return JsonResponse(
        {"url": video.get_absolute_url(), "progress": reverse_progress(video)}, status=201
    )


def reverse_progress(video):
    return reverse("videos:progress", args=[video.uuid])


@require_GET
def watch(request, uuid):
    video = selectors.video_for_viewer(request.user, uuid)
    job_reconcile(video)
    context = {
        "video": video,
        "can_edit": selectors.can_edit(request.user, video),
        "can_delete": selectors.can_delete(request.user, video),
        "share_url": request.build_absolute_uri(video.get_absolute_url()),
        "sharing": selectors.sharing_words(request.user, video),
        "can_download_original": selectors.can_download_original(request.user, video),
        "labelled_name": video.download_name("-labelled.mp4"),
    }
    if video.state != video.State.FAILED:
        members = list(video.group.members.all())
        source, unplayable = selectors.player_source(video, request.user)
        if source == "labelled" and video.state != video.State.DONE:
            source, unplayable = None, "only its owner may play the original"
        context |= {
            "live_source": source,
            "unplayable": unplayable,
            "show_unknown": settings.VIDEO_SHOW_UNKNOWN,
            "members": members,
            # Rendered with json_script: a name is data, never markup.
            "members_data": {m.slug: {"name": m.name, "color": m.color} for m in members},
            **_panels_context(video, request.user),
        }
    return render(request, "videos/watch.html", context)


def _panels_context(video, user) -> dict:
    """Who is on screen when, screen time, and (once the labelled video is ready) fancams and
    downloads: what the watch page shows below the player, and fills in while it is named."""
    length = selectors.timeline_length(video)
    # Where the stretch still being named starts, as a share of the timeline (None: none).
    if video.all_named:
        pending = None
    else:
        pending = min(1.0, (video.named_until or 0.0) / length)
    return {
        "video": video,
        "screen_time": selectors.screen_time(video),
        "timeline": selectors.timeline(video),
        "timeline_length": length,
        "ticks": selectors.time_ticks(length),
        "pending_from": pending,
        "fancams": video.fancams.select_related("member")
        .prefetch_related("requests__user")
        .filter(state="done"),
        "aspects": Fancam.Aspect.choices,
        "formats": exports.FORMATS,
        "labelled_name": video.download_name("-labelled.mp4"),
        "can_edit": selectors.can_edit(user, video),
        "can_download_original": selectors.can_download_original(user, video),
    }


@require_GET
def panels(request, uuid):
    """The watch page's panels, for the page to swap in as names arrive."""
    video = selectors.video_for_viewer(request.user, uuid)
    return render(request, "videos/_panels.html", _panels_context(video, request.user))


@require_GET
def progress(request, uuid):
    video = selectors.video_for_viewer(request.user, uuid)
    job_reconcile(video)
    return JsonResponse(video.job_progress())


@require_POST
def retry(request, uuid):
    video = selectors.video_for_viewer(request.user, uuid)
    if not selectors.can_edit(request.user, video):
        raise Http404("No such video")
    if services.video_retry(video=video):
        messages.success(request, "Queued again: the video will be processed from the start.")
    else:
        messages.info(request, "The video is not failed, so there is nothing to retry.")
    return redirect(video)


@require_POST
def edit(request, uuid):
    """Its owner (or a curator) renames a video or changes who can watch it."""
    video = selectors.video_for_viewer(request.user, uuid)
    if not selectors.can_edit(request.user, video):
        raise Http404("No such video")
    form = VideoEditForm(request.POST)
    if not form.is_valid():
        messages.error(request, form.error_sentence())
        return redirect(video)
    services.video_update(video=video, **form.cleaned_data)
    messages.success(request, f"Saved “{video}”: {selectors.sharing_words(request.user, video)}.")
    return redirect(video)


@require_POST
def delete(request, uuid):
    video = selectors.video_for_viewer(request.user, uuid)
    if not selectors.can_delete(request.user, video):
        raise Http404("No such video")
    title = str(video)
    services.video_delete(video=video)
    messages.success(request, f"Deleted “{title}” and all of its files.")
    return redirect("videos:list")


# The original's media type by ffmpeg's first name of its container; what twicesite makes is MP4.
ORIGINAL_TYPES = {"matroska": "video/webm", "ogg": "video/ogg", "avi": "video/x-msvideo"}


@require_GET
def media_file(request, uuid, kind):
    video = selectors.video_for_viewer(request.user, uuid)
    field = {"labelled": video.labelled, "original": video.original, "preview": video.preview}[kind]
    # The preview is the original's pictures: it goes to those who may download the original.
    if kind != "labelled" and not selectors.can_download_original(request.user, video):
        raise Http404("No such file")
    if not field:
        raise Http404("not there yet")
    # The original keeps the name it was uploaded under; what is made from it is named by title.
    if kind == "original":
        name, info = video.original_name, video.info()
        container = info.container.split(",", 1)[0] if info else ""
        content_type = ORIGINAL_TYPES.get(container, "video/mp4")
    else:
        name, content_type = video.download_name(f"-{kind}.mp4"), "video/mp4"
    return ranged_file_response(request, field, content_type, filename=name)


@require_GET
def predictions(request, uuid, fmt):
    """The predictions in one of exports.FORMATS."""
    video = selectors.video_for_viewer(request.user, uuid)
    # The JSON (the live overlay's) as soon as the first names are in; the rest once all are.
    ready = video.all_named or (fmt == "json" and video.named_until is not None)
    if not ready:
        return JsonResponse({"error": f"the video is {video.state}, not named yet"}, status=409)
    export = exports.FORMATS[fmt]
    kind = StreamingHttpResponse if export.streamed else HttpResponse
    response = kind(export.write(video), content_type=export.content_type)
    if request.GET.get("download"):
        response["Content-Disposition"] = content_disposition_header(
            True, video.download_name(f"-predictions.{fmt}")
        )
    return response


@json_endpoint
def fancam_create(request, uuid):
    """Ask for a fancam of one member: the stored one when it is still right, or a job."""
    if request.method != "POST":
        raise BadRequest("ask for a fancam with POST", 405)
    video = selectors.video_for_viewer(request.user, uuid)
    body = read_json(request)
    member = video.group.members.filter(slug=str(body.get("member", ""))).first()
    if member is None:
        raise BadRequest(f"{video.group} has no member {body.get('member')!r}")
    flags = {key: body.get(key, False) for key in ("highlights", "labels")}
    if not all(isinstance(value, bool) for value in flags.values()):
        raise BadRequest("highlights and labels must be true or false")
    try:
        fancam = fancams.fancam_request(
            video=video,
            member=member,
            aspect=str(body.get("aspect", "9:16")),
            user=request.user,
            **flags,
        )
    except fancams.FancamRefused as exc:
        raise BadRequest(str(exc), 422) from None
    return JsonResponse(_fancam_json(fancam), status=200 if fancam.state == "done" else 202)


@require_GET
@json_endpoint
def fancam_status(request, uuid, pk):
    video = selectors.video_for_viewer(request.user, uuid)
    fancam = video.fancams.select_related("member").filter(pk=pk).first()
    if fancam is None:
        raise BadRequest("no such fancam", 404)
    job_reconcile(fancam)
    return JsonResponse(_fancam_json(fancam))


@require_GET
def fancam_file(request, uuid, pk):
    video = selectors.video_for_viewer(request.user, uuid)
    fancam = video.fancams.select_related("member").filter(pk=pk).first()
    if fancam is None or not fancam.file:
        raise Http404("no such fancam")
    return ranged_file_response(request, fancam.file, "video/mp4", filename=fancam.download_name())


def _fancam_json(fancam) -> dict:
    uuid = fancam.video.uuid
    body = {
        **fancam.job_progress(),
        "id": fancam.pk,
        "member": fancam.member.slug,
        "member_name": fancam.member.name,
        "settings": fancam.settings_label(),
        "status_url": reverse("videos:fancam_status", args=[uuid, fancam.pk]),
    }
    if fancam.state == "done" and fancam.file:
        body |= {
            "url": reverse("videos:fancam_file", args=[uuid, fancam.pk]),
            "download_name": fancam.download_name(),
            "duration": fancam.duration,
        }
    return body
