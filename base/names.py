"""Names that people read: file names for downloads, times relative to now."""

import re
import unicodedata
from datetime import datetime

from django.utils import timezone

# Characters that no file system or browser mishandles, plus letters of any script.
_UNSAFE = re.compile(r"[^\w\s().,+-]", re.UNICODE)
_SPACES = re.compile(r"\s+")


def safe_filename(title: str, suffix: str, *, fallback: str = "video", limit: int = 80) -> str:
    """`title` made safe as a download name, ending in `suffix` (".mp4", "-predictions.csv").

    Path separators, quotes, control characters and the like become "_"; leading dots go (no
    hidden files, no ".."); the length is bounded so the suffix always survives."""
    text = unicodedata.normalize("NFKC", title or "")
    text = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C")
    text = _SPACES.sub(" ", _UNSAFE.sub("_", text)).strip(" ._")
    text = text[:limit].rstrip(" ._") or fallback
    return f"{text}{suffix}"


def time_ago(moment: datetime | None, *, now: datetime | None = None) -> str:
    """'just now', '3 minutes ago', 'yesterday', '5 days ago': how long ago, as people say it."""
    if moment is None:
        return ""
    seconds = max(0, int(((now or timezone.now()) - moment).total_seconds()))
    if seconds < 45:
        return "just now"
    if 86400 <= seconds < 2 * 86400:
        return "yesterday"
    for unit, size, below in (
        ("minute", 60, 3600),
        ("hour", 3600, 86400),
        ("day", 86400, 30 * 86400),
        ("month", 30 * 86400, 365 * 86400),
        ("year", 365 * 86400, None),
    ):
        if below is None or seconds < below:
            count = max(1, seconds // size)
            return f"{count} {unit}{'' if count == 1 else 's'} ago"
    raise AssertionError("unreachable")
