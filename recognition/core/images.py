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


class ImageRejected(Exception):
    """The file cannot become a gallery image; the message says why, for the curator."""


@dataclass
class CleanImage:
    """An image decoded, EXIF-rotated and converted to 8-bit RGB."""

    pixels: np.ndarray  # H x W x 3, uint8
    format: str  # what the file really was: JPEG, PNG, GIF, ...
    sha256: str  # of the original bytes
    notes: list[str] = field(default_factory=list)

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])


def open_image(
    data: bytes, *, max_pixels: int = 40_000_000, max_bytes: int = 30_000_000
) -> CleanImage:
    """Decode `data` into RGB, or raise ImageRejected with a reason a curator can act on."""
    if not data:
        raise ImageRejected("empty file")
    if len(data) > max_bytes:
        raise ImageRejected(
            f"file too large ({len(data) / 1e6:.1f} MB, limit {max_bytes / 1e6:g} MB)"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            # The header is read; refuse huge canvases before decoding a single pixel.
            width, height = image.size
            if width * height > max_pixels:
                raise ImageRejected(
                    f"image too large ({width}x{height} pixels, limit {max_pixels / 1e6:g} MP)"
                )
            kind = image.format or "unknown"
            notes = []
            if getattr(image, "n_frames", 1) > 1:
                notes.append(f"animated {kind}: first frame kept")
            image.seek(0)
            image.load()
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRejected(f"image too large, refused before decoding ({exc})") from None
    except Image.UnidentifiedImageError:
        raise ImageRejected("not an image (unrecognised file type)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageRejected(f"corrupt or truncated image ({exc})") from None
    try:
        image = ImageOps.exif_transpose(image)
    except Exception:  # broken EXIF must not cost the image; Pillow raises various types here
        notes.append("unreadable EXIF orientation ignored")
    return CleanImage(
        pixels=_to_rgb(image), format=kind, sha256=hashlib.sha256(data).hexdigest(), notes=notes
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


def perceptual_hash(pixels: np.ndarray) -> str:
    """A 256-bit difference hash (dHash) as 64 hex digits: near-identical pictures differ in few bits."""
    size = (HASH_SIDE + 1, HASH_SIDE)
    grey = Image.fromarray(pixels).convert("L").resize(size, Image.Resampling.LANCZOS)
    values = np.asarray(grey, dtype=np.int16)
    bits = (values[:, 1:] > values[:, :-1]).flatten()
    return f"{int(''.join('1' if b else '0' for b in bits), 2):064x}"


def hash_distance(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()
