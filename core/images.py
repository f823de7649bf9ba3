"""Open, check and normalise still images: the cleaning rules every gallery image goes through."""

import hashlib
import io
import warnings
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageOps

# Of the 256 bits of perceptual_hash: on the dev faces, resized and re-encoded copies differ in at
# most 11 bits and distinct photos (aligned faces look alike) in at least 32.
NEAR_DUPLICATE_BITS = 20
HASH_SIDE = 16

# Gallery images are kept at most this big: a face needs no more, and everything after the
# decode (detection, hashing, storage) costs in proportion to the pixels.
MAX_SIDE = 2048
# Decoded pixels of one image, in bytes, before any downscaling: a 40 MP RGBA picture fits,
# a 16-bit CMYK one of the same size does not. Memory per decode stays bounded by this.
MAX_DECODED_BYTES = 200_000_000
_BYTES_PER_PIXEL = {"1": 1, "L": 1, "P": 1, "LA": 2, "PA": 2, "La": 2, "RGB": 3, "YCbCr": 3,
                    "LAB": 3, "HSV": 3, "RGBA": 4, "RGBa": 4, "RGBX": 4, "CMYK": 4, "I": 4,
                    "F": 4, "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2}  # fmt: skip


class ImageRejected(Exception):
    """The file cannot become a gallery image; the message says why, for the curator."""


class ImageTooLarge(ImageRejected):
    """Refused for its size (bytes, pixels or decoded bytes) before it was decoded."""


@dataclass
class CleanImage:
    """An image decoded, EXIF-rotated and converted to 8-bit RGB."""

    pixels: np.ndarray  # H x W x 3, uint8
    format: str  # what the file really was: JPEG, PNG, GIF, ...
    sha256: str  # of the original bytes
    notes: list[str] = field(default_factory=list)
    # The picture's size before any shrinking, upright (EXIF rotation applied): (width, height).
    original_size: tuple[int, int] | None = None

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])


def open_image(
    data: bytes,
    *,
    max_pixels: int = 40_000_000,
    max_bytes: int = 30_000_000,
    max_side: int = MAX_SIDE,
) -> CleanImage:
    """Decode `data` into RGB at most `max_side` on its long side, or raise ImageRejected with
    a reason a curator can act on.

    The work is bounded before a pixel is decoded: by the file size, the pixel count and the
    decoded bytes. JPEGs decode straight at a reduced scale (Image.draft); other formats are
    decoded whole, then shrunk before anything else looks at them."""
    if not data:
        raise ImageRejected("empty file")
    if len(data) > max_bytes:
        raise ImageTooLarge(
            f"file too large ({len(data) / 1e6:.1f} MB, limit {max_bytes / 1e6:g} MB)"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            # The header is read; refuse huge canvases before decoding a single pixel.
            width, height = image.size
            if width * height > max_pixels:
                raise ImageTooLarge(
                    f"image too large ({width}x{height} pixels, limit {max_pixels / 1e6:g} MP)"
                )
            decoded = width * height * _BYTES_PER_PIXEL.get(image.mode, 8)
            if decoded > MAX_DECODED_BYTES:
                raise ImageTooLarge(
                    f"image too large to decode ({width}x{height} {image.mode}, "
                    f"{decoded / 1e6:.0f} MB of pixels, limit {MAX_DECODED_BYTES / 1e6:g} MB)"
                )
            kind = image.format or "unknown"
            notes = []
            if getattr(image, "n_frames", 1) > 1:
                notes.append(f"animated {kind}: first frame kept")
            image.seek(0)
            if kind == "JPEG" and max(width, height) > max_side:
                # DCT scaling: decode at 1/2, 1/4 or 1/8 straight away, still >= max_side.
                image.draft("RGB", (max_side, max_side))
            image.load()
            if max(image.size) > max_side:
                notes.append(f"shrunk from {width}x{height}")
                # A box-filter reduce by a whole factor first, then Lanczos: 0.15 s for
                # 6300x6300, against 0.9 s for Lanczos nearly all the way.
                image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS, reducing_gap=1.0)
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLarge(f"image too large, refused before decoding ({exc})") from None
    except Image.UnidentifiedImageError:
        raise ImageRejected("not an image (unrecognised file type)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageRejected(f"corrupt or truncated image ({exc})") from None
    stored = image.size
    try:
        image = ImageOps.exif_transpose(image)
    except Exception:  # broken EXIF must not cost the image; Pillow raises various types here
        notes.append("unreadable EXIF orientation ignored")
    turned = image.size != stored
    return CleanImage(
        pixels=_to_rgb(image),
        format=kind,
        sha256=hashlib.sha256(data).hexdigest(),
        notes=notes,
        original_size=(height, width) if turned else (width, height),
    )


def _to_rgb(image: Image.Image) -> np.ndarray:
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit greyscale: Pillow's convert("L") clips instead of scaling.
        values = np.asarray(image, dtype=np.uint32)
        top = 65535 if mode.startswith("I;16") or values.max() > 255 else 255
        grey = (values * 255 // top).astype(np.uint8)
        return np.stack([grey] * 3, axis=-1)
    if mode == "F":
        grey = np.clip(np.asarray(image), 0, 255).astype(np.uint8)
        return np.stack([grey] * 3, axis=-1)
    if mode == "P":
        image = image.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        # Transparent areas become white rather than whatever colour the pixels hid.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()


def encode_png(pixels: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG", optimize=False)
    return out.getvalue()


def encode_jpeg(pixels: np.ndarray, quality: int = 95) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="JPEG", quality=quality)
    return out.getvalue()


# Around a face crop, this share of the face's longer side on every side: the hair and chin a
# gallery image shows.
FACE_MARGIN = 0.35


def face_crop(pixels: np.ndarray, box) -> np.ndarray:
    """The face in `box` (left, top, right, bottom) with FACE_MARGIN, clipped to the image."""
    left, top, right, bottom = (int(v) for v in box)
    margin = int(FACE_MARGIN * max(right - left, bottom - top))
    height, width = pixels.shape[:2]
    return pixels[
        max(0, top - margin) : min(height, bottom + margin),
        max(0, left - margin) : min(width, right + margin),
    ]


def shrunk(pixels: np.ndarray, *, longest: int | None = None, height: int | None = None):
    """The image made smaller (never larger): to `longest` pixels on its longer side, or to
    `height` pixels high."""
    picture = Image.fromarray(pixels)
    if height is not None:
        width = max(1, round(picture.width * height / picture.height))
        if height < picture.height:
            picture = picture.resize((width, height), Image.Resampling.LANCZOS)
    elif longest is not None:
        picture.thumbnail((longest, longest))
    return np.asarray(picture)


def perceptual_hash(pixels: np.ndarray) -> str:
    """A 256-bit difference hash (dHash) as 64 hex digits: near-identical pictures differ in few bits."""
    size = (HASH_SIDE + 1, HASH_SIDE)
    grey = Image.fromarray(pixels).convert("L").resize(size, Image.Resampling.LANCZOS)
    values = np.asarray(grey, dtype=np.int16)
    bits = (values[:, 1:] > values[:, :-1]).flatten()
    return f"{int(''.join('1' if b else '0' for b in bits), 2):064x}"


def hash_distance(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()
