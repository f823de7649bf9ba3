"""Gallery files, served only to staff: gallery images are curators' working material."""

import io

from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.views.decorators.cache import cache_control
from PIL import Image

from gallery import services
from gallery.models import GalleryImage, ImageUpload, Member
from twicesite.api import BadRequest, json_endpoint
from twicesite.jobs import job_reconcile

THUMBNAIL_SIDE = 160


def _image(uuid) -> GalleryImage:
    image = get_object_or_404(GalleryImage, uuid=uuid)
    if not image.file:
        raise Http404("this sample has no image file")
    return image


@staff_member_required
@cache_control(private=True, max_age=3600)
def image_file(request, uuid):
    image = _image(uuid)
    return FileResponse(image.file.open("rb"), filename=image.original_name or None)


@staff_member_required
@cache_control(private=True, max_age=3600)
def thumbnail(request, uuid):
    image = _image(uuid)
    with image.file.open("rb") as handle, Image.open(handle) as picture:
        picture.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
        out = io.BytesIO()
        picture.convert("RGB").save(out, format="JPEG", quality=85)
    return HttpResponse(out.getvalue(), content_type="image/jpeg")


@login_required
@cache_control(private=True, max_age=3600)
def member_photo(request, member_id):
    """A small photo of a member for review pages: their first approved gallery face, cropped
    to the face and shrunk (the gallery image itself stays for staff)."""
    image = (
        GalleryImage.objects.filter(member_id=member_id, status=GalleryImage.Status.APPROVED)
        .exclude(file="")
        .exclude(face_box=None)
        .order_by("pk")
        .first()
    )
    if image is None:
        raise Http404("no photo of this member")
    with image.file.open("rb") as handle, Image.open(handle) as picture:
        left, top, right, bottom = image.face_box
        margin = (right - left) // 5
        face = picture.convert("RGB").crop(
            (max(0, left - margin), max(0, top - margin), right + margin, bottom + margin)
        )
        face.thumbnail((96, 96))
        out = io.BytesIO()
        face.save(out, format="JPEG", quality=85)
    return HttpResponse(out.getvalue(), content_type="image/jpeg")


@staff_member_required
@json_endpoint
def upload_create(request, member_id):
    """One file per request, so the page can show progress and each outcome; the file is
    cleaned by a job, and the page polls upload_status for the outcome."""
    if request.method != "POST":
        raise BadRequest("send the file with POST", 405)
    member = get_object_or_404(Member, pk=member_id)
    if not request.user.has_perm("gallery.change_member"):
        raise BadRequest("you may not add images to this gallery", 403)
    upload = request.FILES.get("file")
    if upload is None:
        raise BadRequest("no file in the request")
    row = services.upload_start(member=member, upload=upload, uploaded_by=request.user)
    return JsonResponse(_upload_json(row), status=202)


@staff_member_required
@json_endpoint
def upload_status(request, upload_id):
    row = get_object_or_404(ImageUpload, pk=upload_id)
    job_reconcile(row)
    return JsonResponse(_upload_json(row))


def _upload_json(row: ImageUpload) -> dict:
    body = {
        **row.job_progress(),
        "name": row.original_name,
        "outcome": row.outcome,
        "reason": row.reason,
        "status_url": reverse("gallery:upload_status", args=[row.pk]),
    }
    if row.image is not None:
        body["url"] = reverse("admin:gallery_galleryimage_change", args=[row.image.pk])
        body["flags"] = row.image.flags()
        body["thumbnail"] = reverse("gallery:thumbnail", args=[row.image.uuid])
    return body
