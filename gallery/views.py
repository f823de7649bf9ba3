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
