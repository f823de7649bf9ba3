import json

from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from twicesite.jobs import reconcile
from videos import corrections, exports, processing, selectors, services
from videos.files import ranged_file_response
from videos.forms import SignupForm, UploadForm
from videos.models import Correction, Track


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
    videos = selectors.videos_visible_to(request.user).select_related("group", "owner")[:200]
    return render(request, "videos/list.html", {"videos": videos})


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
    declared = int(request.META.get("CONTENT_LENGTH") or 0)
    if declared > settings.VIDEO_MAX_BYTES + 1_000_000:
        return JsonResponse(
            {"error": f"the file is over the {settings.VIDEO_MAX_BYTES / 1e6:.0f} MB limit"},
            status=413,
        )
    form = UploadForm(request.POST, request.FILES)
    if not form.is_valid():
        return JsonResponse(
            {"error": "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items())}, status=400
        )
    upload = form.cleaned_data["file"]
    try:
        services.video_check_upload(name=upload.name, size=upload.size, owner=request.user)
        path = services.copy_to_temp(upload)
        try:
            video = services.video_submit(
                source=path,
                name=upload.name,
                group=form.cleaned_data["group"],
                owner=request.user,
                title=form.cleaned_data["title"],
                is_public=form.cleaned_data["is_public"],
            )
        finally:
            if not hasattr(upload, "temporary_file_path"):
                path.unlink(missing_ok=True)
    except services.VideoRejected as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    return JsonResponse(
        {"url": video.get_absolute_url(), "progress": reverse_progress(video)}, status=201
    )


def reverse_progress(video):
    from django.urls import reverse

    return reverse("videos:progress", args=[video.uuid])


@require_GET
def watch(request, uuid):
    video = selectors.video_for_viewer(request.user, uuid)
    reconcile(video)
    context = {"video": video, "can_edit": selectors.can_edit(request.user, video)}
    if video.state == video.State.DONE:
        members = list(video.group.members.all())
        context |= {
            "screen_time": selectors.screen_time(video),
            "timeline": selectors.timeline(video),
            "members": members,
            "members_json": json.dumps(
                {m.slug: {"name": m.name, "color": m.color} for m in members}
            ),
        }
    return render(request, "videos/watch.html", context)


@require_GET
def progress(request, uuid):
    video = selectors.video_for_viewer(request.user, uuid)
    reconcile(video)
    return JsonResponse(video.job_progress())


@require_GET
def media_file(request, uuid, kind):
    video = selectors.video_for_viewer(request.user, uuid)
    field = {"labelled": video.labelled, "original": video.original}[kind]
    if not field:
        raise Http404("not there yet")
    name = f"{video}-labelled.mp4" if kind == "labelled" else video.original_name
    return ranged_file_response(request, field, "video/mp4", filename=name)


@require_GET
def predictions(request, uuid, fmt):
    video = selectors.video_for_viewer(request.user, uuid)
    if video.state != video.State.DONE:
        return JsonResponse({"error": f"the video is {video.state}, not processed yet"}, status=409)
    if fmt == "json":
        response = JsonResponse(exports.predictions(video))
    elif fmt == "csv":
        response = StreamingHttpResponse(exports.predictions_csv(video), content_type="text/csv")
    else:
        response = HttpResponse(exports.webvtt(video), content_type="text/vtt; charset=utf-8")
    if request.GET.get("download"):
        response["Content-Disposition"] = f'attachment; filename="predictions-{video.pk}.{fmt}"'
    return response


def _editable(request, uuid):
    """Anyone signed in who can see a video may correct it; every change is recorded."""
    video = selectors.video_for_viewer(request.user, uuid)
    if not request.user.is_authenticated:
        raise Http404("No such video")
    return video


@require_GET
def review(request, uuid):
    video = selectors.video_for_viewer(request.user, uuid)
    context = {
        "video": video,
        "tracks": selectors.tracks_for_review(video),
        "members": list(video.group.members.all()[:9]),
        "can_edit": selectors.can_edit(request.user, video),
    }
    return render(request, "videos/review.html", context)


@require_POST
def correct(request, uuid):
    """One correction (or an undo) on one track, as JSON in, JSON out."""
    video = _editable(request, uuid)
    try:
        body = json.loads(request.body)
        track = video.tracks.get(number=int(body["track"]))
        action = body["action"]
    except (ValueError, KeyError, TypeError, Track.DoesNotExist):
        return JsonResponse({"error": "name a track of this video and an action"}, status=400)
    try:
        if action == "undo":
            correction = video.corrections.get(pk=int(body.get("correction", 0)))
            corrections.correction_undo(correction=correction, user=request.user)
            track.refresh_from_db()
            processing.video_rerender_soon(video=video)
            return JsonResponse(
                {"track": _track_json(track), "reload": correction.kind == Correction.Kind.SPLIT}
            )
        if action == "split":
            correction = corrections.track_split(
                track=track, user=request.user, frame=int(body.get("frame", 0))
            )
        else:
            member = None
            if action == "member":
                member = video.group.members.filter(pk=int(body.get("member", 0))).first()
            correction = corrections.track_correct(
                track=track, user=request.user, kind=action, member=member
            )
    except (corrections.CorrectionError, ValueError, Correction.DoesNotExist) as exc:
        return JsonResponse({"error": str(exc) or "that correction is not possible"}, status=400)
    track.refresh_from_db()
    processing.video_rerender_soon(video=video)  # the labelled MP4 catches up in the background
    return JsonResponse(
        {
            "track": _track_json(track),
            "correction": correction.pk,
            "summary": correction.describe(),
            "new_track": correction.new_track.number if correction.new_track else None,
        }
    )


def _track_json(track) -> dict:
    member = track.member
    return {
        "number": track.number,
        "member": member.slug if member else None,
        "member_name": member.name if member else None,
        "member_color": member.color if member else None,
        "is_face": track.is_face,
        "corrected": track.corrected,
    }


@require_GET
def thumbnail(request, uuid, number):
    video = selectors.video_for_viewer(request.user, uuid)
    track = video.tracks.filter(number=number).first()
    if track is None or not track.thumbnail:
        raise Http404("no picture")
    return FileResponse(track.thumbnail.open("rb"), content_type="image/jpeg")
