"""Gallery files, served only to staff: gallery images are curators' working material."""

from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.views.decorators.cache import cache_control

from base.api import BadRequest, json_endpoint
from base.jobs import job_reconcile
from base.serving import accel_response
from base.storage import open_for_reading
from core.images import encode_jpeg, face_crop, shrunk
from gallery import selectors, services
from gallery.models import GalleryImage, ImageUpload, Member

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
    accel = accel_response(image.file, None, image.original_name or None)
    if accel is not None:
        return accel
    handle = open_for_reading(image.file.name, image.file.storage)  # streamed, also on S3
    return FileResponse(handle, filename=image.original_name or None)


@staff_member_required
@cache_control(private=True, max_age=3600)
def thumbnail(request, uuid):
    image = _image(uuid)
    small = shrunk(services.image_pixels(image), longest=THUMBNAIL_SIDE)
    return HttpResponse(encode_jpeg(small, quality=85), content_type="image/jpeg")


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
    face = shrunk(face_crop(services.image_pixels(image), image.face_box), longest=96)
    return HttpResponse(encode_jpeg(face, quality=85), content_type="image/jpeg")


@staff_member_required
@json_endpoint
def pick_face(request, image_id):
    """Make one of the detected faces (or the whole image) the image's face; the face picker
    posts here and shows the new box and flags."""
    if request.method != "POST":
        raise BadRequest("send the choice with POST", 405)
    image = get_object_or_404(GalleryImage.objects.select_related("member__group"), pk=image_id)
    if not request.user.has_perm("gallery.change_galleryimage"):
        raise BadRequest("you may not change gallery images", 403)
    choice = request.POST.get("face", "")
    try:
        index = None if choice == "whole" else int(choice)
        image = services.image_choose_face(image=image, index=index)
    except ValueError as exc:
        raise BadRequest(str(exc) if choice.strip() else "choose a face") from None
    image.refresh_from_db()
    return JsonResponse(
        {
            "face_box": image.face_box,
            "flags": image.flags(),
            "embedding_model": image.embedding_model,
            # The change page's read-only fields, as the admin shows them, to update in place.
            "fields": {
                "face_box": str(image.face_box) if image.face_box else "-",
                "embedding_model": image.embedding_model or "-",
            },
        }
    )


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
    if row.state == ImageUpload.State.DONE:
        # The page's health line follows the uploads it made.
        body["health"] = selectors.health_parts(selectors.member_health(row.member))
    if row.image is not None:
        body["url"] = reverse("admin:gallery_galleryimage_change", args=[row.image.pk])
        body["flags"] = row.image.flags()
        body["thumbnail"] = reverse("gallery:thumbnail", args=[row.image.uuid])
    return body
