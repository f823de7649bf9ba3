"""Opening and normalising still images: every awkward input has a clear outcome."""

import numpy as np
import pytest

from core.images import (
    NEAR_DUPLICATE_BITS,
    ImageRejected,
    ImageTooLarge,
    encode_jpeg,
    hash_distance,
    open_image,
    perceptual_hash,
)
from tests import imagefactory as make


def test_a_zero_byte_file_is_rejected():
    with pytest.raises(ImageRejected, match="empty file"):
        open_image(b"")


def test_html_saved_as_jpg_is_rejected_as_not_an_image():
    with pytest.raises(ImageRejected, match="not an image"):
        open_image(make.html_as_jpg())


def test_a_truncated_jpeg_is_rejected_as_corrupt():
    with pytest.raises(ImageRejected, match="corrupt or truncated"):
        open_image(make.truncated_jpeg())


def test_a_decompression_bomb_is_refused_from_its_header():
    with pytest.raises(ImageRejected, match=r"image too large"):
        open_image(make.decompression_bomb())


def test_a_file_over_the_byte_limit_is_refused():
    with pytest.raises(ImageRejected, match="file too large"):
        open_image(b"x" * 2000, max_bytes=1000)


def test_an_animated_gif_keeps_its_first_frame():
    clean = open_image(make.animated_gif())
    assert clean.format == "GIF"
    assert any("first frame" in note for note in clean.notes)
    # The second frame is solid red; the first is the grey photo.
    assert abs(int(clean.pixels[5, 5, 0]) - int(clean.pixels[5, 5, 2])) < 40


def test_cmyk_jpeg_becomes_rgb():
    clean = open_image(make.cmyk_jpeg())
    assert clean.pixels.shape == (300, 300, 3)
    assert clean.pixels.dtype == np.uint8
    assert abs(int(clean.pixels[5, 5].mean()) - 130) < 20


def test_16bit_png_is_scaled_not_clipped():
    clean = open_image(make.png_16bit())
    assert clean.pixels.shape == (300, 300, 3)
    assert 100 < clean.pixels[5, 5, 0] < 160  # grey 128-ish, not 255 from clipping


def test_transparent_areas_of_rgba_become_white():
    clean = open_image(make.rgba_png())
    assert clean.pixels.shape == (300, 300, 3)
    assert (clean.pixels[:20] == 255).all()
    assert (clean.pixels[25:40, 5] != 255).any()


def test_exif_orientation_is_applied_first():
    clean = open_image(make.rotated_phone_photo())
    upright = np.asarray(make.photo())
    assert clean.pixels.shape == upright.shape
    assert np.abs(clean.pixels.astype(int) - upright).mean() < 1
    upside_down = upright[::-1, ::-1]
    assert np.abs(clean.pixels.astype(int) - upside_down).mean() > 5


def test_near_identical_pictures_have_near_hashes_and_different_ones_do_not():
    original = np.asarray(make.face("tom-hanks", 0))
    recompressed = open_image(encode_jpeg(original, quality=70)).pixels
    other = np.asarray(make.face("tom-hanks", 1))
    assert hash_distance(perceptual_hash(original), perceptual_hash(recompressed)) <= 11
    assert hash_distance(perceptual_hash(original), perceptual_hash(other)) > NEAR_DUPLICATE_BITS


def _png_header_only(width: int, height: int, colour_type: int = 6) -> bytes:
    """A PNG whose header claims a size and whose pixels are missing (colour type 6: RGBA)."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"") + chunk(b"IEND", b"")


def test_an_image_too_big_to_decode_is_refused_from_its_header_before_any_pixel():
    # 54 MP of RGBA is 216 MB of pixels: refused even where the pixel limit would allow it.
    with pytest.raises(ImageRejected, match=r"too large to decode \(9000x6000 RGBA, 216 MB"):
        open_image(_png_header_only(9000, 6000), max_pixels=100_000_000)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_a_huge_picture_of_one_colour_is_kept_at_most_2048_wide(fmt):
    from PIL import Image

    data = make.encode(Image.new("RGB", (4200, 3000), (200, 30, 40)), fmt)
    assert len(data) < 400_000  # small file, big canvas: the case from the probe
    clean = open_image(data)
    assert (clean.width, clean.height) == (2048, 1463)
    assert clean.notes == ["shrunk from 4200x3000"]
    assert np.abs(clean.pixels.astype(int) - (200, 30, 40)).max() <= 3


def test_size_refusals_say_the_picture_is_too_large_and_others_do_not():
    for data, limit in [(make.decompression_bomb(), {}), (b"x" * 2000, {"max_bytes": 1000})]:
        with pytest.raises(ImageTooLarge):
            open_image(data, **limit)
    for data in (make.html_as_jpg(), make.truncated_jpeg()):
        with pytest.raises(ImageRejected) as refused:
            open_image(data)
        assert not isinstance(refused.value, ImageTooLarge)


def test_the_original_size_is_kept_upright_when_the_picture_is_shrunk():
    from PIL import Image

    wide = Image.new("RGB", (3000, 1000), (120, 130, 140))  # stored sideways, EXIF says turn
    exif = Image.Exif()
    exif[0x0112] = 6
    clean = open_image(make.encode(wide, "JPEG", exif=exif.tobytes()), max_side=600)
    assert (clean.width, clean.height) == (200, 600)
    assert clean.original_size == (1000, 3000)
    plain = open_image(make.encode(make.photo(), "PNG"))
    assert plain.original_size == (plain.width, plain.height) == (300, 300)
