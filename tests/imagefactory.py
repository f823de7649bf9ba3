"""Real image files of every awkward kind, made on the spot from the fixture faces."""

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

FACES = Path(__file__).parent / "fixtures" / "faces"


def face(person: str = "tom-hanks", index: int = 1) -> Image.Image:
    return Image.open(FACES / person / f"{index:03d}.png").convert("RGB")


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def photo(person: str = "tom-hanks", index: int = 1, side: int = 300) -> Image.Image:
    """A fixture face pasted into a larger grey picture, as a photo would hold it."""
    canvas = Image.new("RGB", (side, side), (120, 130, 140))
    picture = face(person, index).resize((side // 2, side // 2))
    canvas.paste(picture, (side // 4, side // 4))
    return canvas


def two_faces() -> Image.Image:
    canvas = Image.new("RGB", (460, 240), (110, 110, 110))
    canvas.paste(face("tom-hanks", 1).resize((180, 180)), (20, 30))
    canvas.paste(face("halle-berry", 1).resize((180, 180)), (250, 30))
    return canvas


def no_face() -> Image.Image:
    gradient = np.tile(np.linspace(0, 255, 200, dtype=np.uint8), (200, 1))
    return Image.fromarray(np.stack([gradient, gradient[::-1], gradient.T], axis=-1))


def truncated_jpeg() -> bytes:
    data = encode(photo(), "JPEG", quality=90)
    return data[: len(data) // 2]


def html_as_jpg() -> bytes:
    return b"<!doctype html><html><body>Not found</body></html>"


def animated_gif() -> bytes:
    first = photo()
    second = Image.new("RGB", first.size, (255, 0, 0))
    return encode(first, "GIF", save_all=True, append_images=[second], duration=100, loop=0)


def cmyk_jpeg() -> bytes:
    return encode(photo().convert("CMYK"), "JPEG", quality=95)


def png_16bit() -> bytes:
    grey = np.asarray(photo().convert("L"), dtype=np.uint16) * 257
    return encode(Image.fromarray(grey), "PNG")


def rgba_png() -> bytes:
    image = photo().convert("RGBA")
    alpha = np.full(image.size[::-1], 255, dtype=np.uint8)
    alpha[:20, :] = 0  # a transparent band at the top
    image.putalpha(Image.fromarray(alpha))
    return encode(image, "PNG")


def rotated_phone_photo() -> bytes:
    """The camera stored the picture sideways and says so in EXIF (orientation 6)."""
    sideways = photo().transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    return encode(sideways, "JPEG", quality=95, exif=exif.tobytes())


def decompression_bomb(side: int = 100_000) -> bytes:
    """A tiny PNG that claims to be side x side pixels."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)  # 8-bit greyscale
    row = b"\x00" + b"\x00" * side
    body = zlib.compress(row * 16, 9)  # far fewer rows than claimed; never decoded anyway
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    )
