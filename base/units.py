"""Numbers as people read them."""


def size_label(size: int) -> str:
    """A byte count as people write it: 800 bytes, 12 kB, 3.4 MB, 2 GB."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            value = size / scale
            if value < 10 and round(value, 1) != int(value):
                return f"{value:.1f} {unit}"
            return f"{value:.0f} {unit}"
    return f"{size} bytes"
