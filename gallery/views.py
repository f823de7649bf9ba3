"""Gallery files, served only to staff: gallery images are curators' working material."""

import io

from django.contrib.admin.views.decorators import staff_member_required
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.cache import cache_control
from PIL import Image

from gallery.models import GalleryImage

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


@cache_control(public=True, max_age=3600)
def member_photo(request, member_id):
    """A small photo of a member for review pages: their first approved gallery face."""
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
