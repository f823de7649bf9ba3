"""Fans' pages of recognition: "Who is this?" for any picture, and its JSON endpoint."""

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import RequestDataTooBig
from django.http import JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from base.api import BadRequest, json_endpoint
from base.units import size_label
from gallery.models import Group
from gallery.selectors import members_with_photo
from recognition.identify import IdentifyRefused, identify_rate_take, picture_identify

# The group a fan asked about last, kept in their browser so the page opens on it again.
GROUP_COOKIE = "identify_group"
# Room for the multipart envelope around the picture.
ENVELOPE_BYTES = 64 * 1024


def identify_groups():
    """Groups a picture can be asked about: those with an active model."""
    return Group.objects.filter(versions__is_active=True).distinct().order_by("name")


@login_required
@require_GET
def identify_page(request):
    groups = list(identify_groups())
    last = request.COOKIES.get(GROUP_COOKIE)
    chosen = next((g for g in groups if g.slug == last), groups[0] if groups else None)
    return render(
        request,
        "recognition/identify.html",
        {
            "groups": groups,
            "chosen": chosen,
            "max_bytes": size_label(settings.GALLERY_MAX_BYTES),
        },
    )


@json_endpoint
def identify_api(request, slug):
    """POST a picture (multipart field "image"): every face in it, named or not."""
    if request.method != "POST":
        raise BadRequest("send the picture with POST, in the multipart field “image”", 405)
    if not request.user.is_authenticated:
        raise BadRequest("sign in to ask who is in a picture", 401)
    group = Group.objects.filter(slug=slug).first()
    if group is None:
        raise BadRequest(f"there is no group “{slug}”", 404)
    limit = settings.GALLERY_MAX_BYTES
    too_large = f"This picture is too large: the limit is {size_label(limit)}."
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit + ENVELOPE_BYTES:
        raise BadRequest(too_large, 413)
    try:
        upload = request.FILES.get("image")
    except RequestDataTooBig:
        raise BadRequest(too_large, 413) from None
    except MultiPartParserError:
        raise BadRequest("the request is not a readable multipart form") from None
    if upload is None:
        raise BadRequest("send the picture in the multipart field “image”")
    if upload.size > limit:
        raise BadRequest(too_large, 413)
    try:
        identify_rate_take(user=request.user)
        picture = picture_identify(group=group, data=upload.read())
    except IdentifyRefused as exc:
        raise BadRequest(str(exc), exc.status) from None
    response = JsonResponse(picture_json(picture))
    response.set_cookie(
        GROUP_COOKIE, group.slug, max_age=365 * 24 * 3600, httponly=True, samesite="Lax"
    )
    return response


def picture_json(picture) -> dict:
    """The answer: boxes in the picture's upright pixels, members by slug."""
    group = picture.group
    rows = [face.member for face in picture.faces] + [
        member for face in picture.faces for _, member, _ in face.candidates
    ]
    with_photo = members_with_photo([m for m in rows if m is not None])

    def person(slug, member):
        return {
            "member": slug,
            "name": member.name if member else slug.replace("-", " ").title(),
            "color": member.color if member else None,
            "photo": (
                reverse("gallery:member_photo", args=[member.pk])
                if member and member.pk in with_photo
                else None
            ),
        }

    faces = []
    for face in picture.faces:
        answer = face.answer
        named = person(answer.member, face.member) if answer.member else {}
        faces.append(
            {
                "box": list(face.box),
                "member": answer.member,
                "name": named.get("name"),
                "confidence": round(answer.confidence, 3),
                "verdict": answer.verdict,
                "color": named.get("color"),
                "photo": named.get("photo"),
                "candidates": [
                    {**person(slug, member), "score": round(score, 3)}
                    for slug, member, score in face.candidates
                ],
            }
        )
    return {
        "group": {"slug": group.slug, "name": group.name},
        "model": {"version": picture.version.number},
        "width": picture.width,
        "height": picture.height,
        "faces": faces,
        "faces_not_named": picture.not_named,
    }
