"""Pages and endpoints for reviewing faces: the review page and its corrections and
suggestions, track strips, and the curators' inbox of unknown faces."""

from django.contrib import messages
from django.db.models import Count
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.views.decorators.http import require_GET, require_http_methods

from base.api import BadRequest, json_endpoint, read_json, whole_number
from base.roles import is_curator
from gallery.models import Group
from videos import corrections, selectors, suggestions, unknowns
from videos.models import Correction


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


@json_endpoint
def correct(request, uuid):
    """One correction, suggestion or undo on one track (videos.corrections.ACTIONS), as JSON
    in, JSON out."""
    if request.method != "POST":
        raise BadRequest("send the correction with POST", 405)
    video = _signed_in_viewer(request, uuid)
    body = read_json(request)
    number = whole_number(body, "track")
    track = video.tracks.filter(number=number).first()
    if track is None:
        raise BadRequest(f"this video has no track {number}")
    if not video.all_named:
        raise BadRequest("this video is still being named: review opens once every face is", 409)
    name = body.get("action")
    action = corrections.ACTIONS.get(name) if isinstance(name, str) else None
    if action is None:
        raise BadRequest(f"action must be one of {', '.join(corrections.ACTIONS)}")
    try:
        arguments = action.read(video, body)
        outcome = corrections.change_request(
            track=track, user=request.user, action=name, **arguments
        )
    except corrections.CorrectionError as exc:
        raise BadRequest(str(exc) or "that correction is not possible") from None
    return JsonResponse(_outcome_json(request, video, track, outcome))


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
            suggestions.suggestion_reject(suggestion=suggestion, by=request.user)
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
    if not is_curator(request.user):
        raise Http404("No such page")
    group = Group.objects.filter(slug=slug).first()
    if group is None:
        raise Http404("No such group")
    return group


@require_GET
def unknown_faces_any(request):
    """The inbox of the group with the most videos (the menu's link)."""
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
