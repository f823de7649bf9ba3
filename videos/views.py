from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from base.api import BadRequest, json_endpoint, read_json, whole_number
from base.jobs import job_reconcile
from base.roles import is_curator
from base.units import size_label
from videos import corrections, exports, fancams, selectors, services, unknowns
from videos.files import ranged_file_response
from videos.forms import SignupForm, UploadForm, VideoEditForm
from videos.models import Correction, Fancam


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
    if video.state == video.State.DONE:
        members = list(video.group.members.all())
        length = selectors.timeline_length(video)
        source, unplayable = selectors.player_source(video, request.user)
        context |= {
            "live_source": source,
            "unplayable": unplayable,
            "screen_time": selectors.screen_time(video),
            "timeline": selectors.timeline(video),
            "timeline_length": length,
            "ticks": selectors.time_ticks(length),
            "show_unknown": settings.VIDEO_SHOW_UNKNOWN,
            "members": members,
            # Rendered with json_script: a name is data, never markup.
            "members_data": {m.slug: {"name": m.name, "color": m.color} for m in members},
            "fancams": video.fancams.select_related("member")
            .prefetch_related("requests__user")
            .filter(state="done"),
            "aspects": Fancam.Aspect.choices,
        }
    return render(request, "videos/watch.html", context)


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
            video=video, member=member, aspect=str(body.get("aspect", "9:16")), user=request.user,
            **flags,
        )  # fmt: skip
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


def _signed_in_viewer(request, uuid):
    """Anyone signed in who can see a video may act on it: the owner and curators change it,
    anyone else suggests (videos.corrections.change_request). Every change is recorded."""
    video = selectors.video_for_viewer(request.user, uuid)
    if not request.user.is_authenticated:
        raise Http404("No such video")
    return video


@require_GET
def review(request, uuid):
    video = selectors.video_for_viewer(request.user, uuid)
    editor = selectors.can_edit(request.user, video)
    members = list(video.group.members.all())
    source, unplayable = selectors.player_source(video, request.user)
    context = {
        "video": video,
        "live_source": source,
        "unplayable": unplayable,
        "tracks": selectors.tracks_for_review(video),
        "members": members,
        "hotkeys": sorted((m for m in members if m.hotkey), key=lambda m: m.hotkey),
        # Rendered with json_script: a name is data, never markup.
        "members_data": {m.slug: {"name": m.name, "color": m.color} for m in members},
        "can_edit": editor,
        "signed_in": request.user.is_authenticated,
        **_suggestion_context(request, video),
    }
    return render(request, "videos/review.html", context)


def _suggestion_context(request, video) -> dict:
    suggestions = list(selectors.suggestions_shown(request.user, video))
    return {
        "suggestions": suggestions,
        "suggested_tracks": {s.track_id for s in suggestions},
        "can_edit": selectors.can_edit(request.user, video),
    }


def _rows(request, video, tracks) -> dict[int, str]:
    """The review page's row of each track, as the page shows it (for the page to swap in)."""
    context = {
        "video": video,
        "members": list(video.group.members.all()),
        **_suggestion_context(request, video),
    }
    return {
        t.number: render_to_string("videos/_track.html", {**context, "track": t}, request=request)
        for t in tracks
    }


def _suggestions_html(request, video) -> str:
    context = {"video": video, **_suggestion_context(request, video)}
    return render_to_string("videos/_suggestions.html", context, request=request)


ACTIONS = ("undo", "split", "member", *Correction.Kind.values)


@json_endpoint
def correct(request, uuid):
    """One correction, suggestion or undo on one track, as JSON in, JSON out."""
    if request.method != "POST":
        raise BadRequest("send the correction with POST", 405)
    video = _signed_in_viewer(request, uuid)
    body = read_json(request)
    number = whole_number(body, "track")
    track = video.tracks.filter(number=number).first()
    if track is None:
        raise BadRequest(f"this video has no track {number}")
    action = body.get("action")
    if action not in ACTIONS:
        raise BadRequest(f"action must be one of {', '.join(ACTIONS)}")
    undo = member = frame = other = box = None
    if action == Correction.Kind.BOX:
        frame = whole_number(body, "frame")
        box = _box(body)
    elif action == "merge":
        other_number = whole_number(body, "other")
        other = video.tracks.filter(number=other_number, merged_into__isnull=True).first()
        if other is None:
            raise BadRequest(f"this video has no track {other_number} to merge with")
    elif action == "undo" and "suggestion" in body:
        suggestion_id = whole_number(body, "suggestion")
        undo = video.suggestions.filter(pk=suggestion_id).first()
        if undo is None:
            raise BadRequest(f"this video has no suggestion {suggestion_id}")
    elif action == "undo":
        correction_id = whole_number(body, "correction")
        undo = video.corrections.filter(pk=correction_id).first()
        if undo is None:
            raise BadRequest(f"this video has no correction {correction_id}")
    elif action == "split":
        frame = whole_number(body, "frame")
    elif action == "member":
        member_id = whole_number(body, "member")
        member = video.group.members.filter(pk=member_id).first()
        if member is None:
            raise BadRequest(f"{video.group} has no member {member_id}")
    try:
        outcome = corrections.change_request(
            track=track, user=request.user, action=action, member=member, frame=frame,
            undo=undo, other=other, box=box,
        )  # fmt: skip
    except corrections.CorrectionError as exc:
        raise BadRequest(str(exc) or "that correction is not possible") from None
    return JsonResponse(_outcome_json(request, video, track, outcome))


def _box(body: dict) -> list[int] | None:
    """A box fix's box: [left, top, right, bottom] in whole pixels of the picture, or null to
    remove the track's box at that frame."""
    if "box" not in body:
        raise BadRequest("box is missing: [left, top, right, bottom], or null to remove it")
    box = body["box"]
    if box is None:
        return None
    if not isinstance(box, list) or len(box) != 4:
        raise BadRequest("box must be [left, top, right, bottom], or null to remove it")
    return [whole_number({"box values": value}, "box values") for value in box]


def _outcome_json(request, video, track, outcome) -> dict:
    correction, suggestion = outcome.correction, outcome.suggestion
    changed = [track.number, *outcome.restored]
    split = correction is not None and correction.kind == Correction.Kind.SPLIT
    if split and correction.new_track is not None and not outcome.undone:
        changed.append(correction.new_track.number)
    tracks = list(selectors.tracks_for_review(video).filter(number__in=changed))
    track.refresh_from_db()
    fixed = correction is not None and correction.kind == Correction.Kind.BOX
    return {
        "track": _track_json(track),
        # A box fix, for the page's overlay to show at once (the MP4 catches up later).
        "box": {"frame": correction.box_frame, "box": correction.after_box}
        if fixed and not outcome.undone
        else None,
        "correction": correction.pk if correction and not outcome.undone else None,
        "suggestion": suggestion.pk if suggestion and not outcome.undone else None,
        "suggested": suggestion is not None and correction is None,
        "undone": outcome.undone,
        "unchanged": bool(outcome.unchanged),
        "summary": outcome.summary,
        "new_track": correction.new_track.number
        if split and correction.new_track and not outcome.undone
        else None,
        "rows": _rows(request, video, tracks),
        "removed": outcome.removed,
        "suggestions_html": _suggestions_html(request, video),
    }


@json_endpoint
def suggestion_decide(request, uuid, pk):
    """The owner or a curator accepts or rejects one suggestion."""
    if request.method != "POST":
        raise BadRequest("send the decision with POST", 405)
    video = _signed_in_viewer(request, uuid)
    if not selectors.can_edit(request.user, video):
        raise Http404("No such suggestion")
    suggestion = video.suggestions.select_related("track", "member", "user").filter(pk=pk).first()
    if suggestion is None:
        raise Http404("No such suggestion")
    decision = read_json(request).get("decision")
    if decision not in ("accept", "reject"):
        raise BadRequest("decision must be accept or reject")
    track = suggestion.track
    try:
        if decision == "accept":
            outcome = corrections.suggestion_accept(suggestion=suggestion, by=request.user)
        else:
            corrections.suggestion_reject(suggestion=suggestion, by=request.user)
            outcome = corrections.Outcome(suggestion=suggestion)
    except corrections.CorrectionError as exc:
        raise BadRequest(str(exc)) from None
    body = _outcome_json(request, video, track, outcome)
    who = suggestion.user.username if suggestion.user else "someone"
    verb = "Accepted" if decision == "accept" else "Rejected"
    body["summary"] = f"{verb} {who}’s suggestion: {suggestion.describe()}"
    return JsonResponse(body)


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


def _curator_group(request, slug):
    """The group, for curators only (anyone else: no such page)."""
    from gallery.models import Group

    if not is_curator(request.user):
        raise Http404("No such page")
    group = Group.objects.filter(slug=slug).first()
    if group is None:
        raise Http404("No such group")
    return group


@require_GET
def unknown_faces_any(request):
    """The inbox of the group with the most videos (the menu's link)."""
    from django.db.models import Count

    from gallery.models import Group

    if not is_curator(request.user):
        raise Http404("No such page")
    group = Group.objects.annotate(n=Count("videos")).order_by("-n", "name").first()
    if group is None:
        raise Http404("No group yet")
    return redirect("videos:unknowns", group.slug)


@require_http_methods(["GET", "POST"])
def unknown_faces(request, slug):
    """The curators' inbox of unknown faces: clusters across a group's videos, each named as a
    member, made a new member, or dismissed."""
    group = _curator_group(request, slug)
    if request.method == "POST":
        return _unknown_decide(request, group)
    clusters = unknowns.unknown_clusters(group)
    context = {
        "group": group,
        "groups": _groups(),
        "clusters": clusters,
        "members": list(group.members.all()),
        "tracks": sum(len(c.tracks) for c in clusters),
    }
    return render(request, "videos/unknowns.html", context)


def _groups():
    from gallery.models import Group

    return list(Group.objects.order_by("name"))


def _unknown_decide(request, group):
    tracks = unknowns.cluster_tracks(group, request.POST.get("tracks", ""))
    decision = request.POST.get("decision")
    if not tracks:
        messages.info(request, "Those faces were decided already.")
        return redirect("videos:unknowns", group.slug)
    try:
        if decision == "name":
            member = group.members.filter(pk=request.POST.get("member") or 0).first()
            if member is None:
                raise corrections.CorrectionError("choose the member these faces are")
            count = unknowns.cluster_name(
                group=group, tracks=tracks, member=member, by=request.user
            )
            messages.success(
                request,
                f"Named {count} track(s) {member}; a retrain is queued, which adds her faces "
                "to the gallery and names the videos again.",
            )
        elif decision == "new":
            member, count = unknowns.cluster_new_member(
                group=group, tracks=tracks, name=request.POST.get("name", ""), by=request.user
            )
            messages.success(
                request,
                f"New member {member}, from {count} track(s); a retrain is queued, which adds "
                "her faces to the gallery and names the videos again.",
            )
        elif decision == "dismiss":
            count = unknowns.cluster_dismiss(tracks=tracks, by=request.user)
            messages.success(request, f"Dismissed {count} track(s): they stay unknown.")
        else:
            raise corrections.CorrectionError("choose what to do with these faces")
    except corrections.CorrectionError as exc:
        messages.error(request, str(exc))
    return redirect("videos:unknowns", group.slug)
