from django import template

register = template.Library()


@register.filter
def clock(seconds):
    """A time in a video as players show it: "0:07", "12:05", "1:02:03" (whole seconds, down)."""
    whole = max(0, int(seconds or 0))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@register.filter
def timespan(seconds):
    """How long, in words: "0.4 s", "12 s", "3 min 5 s", "1 h 2 min"."""
    seconds = max(0.0, float(seconds or 0))
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"
