from django import template

from base.names import time_ago

register = template.Library()


@register.filter
def dictget(mapping, key):
    return mapping.get(key, ())


@register.filter
def ago(moment):
    """'just now', '3 minutes ago': Django's timesince says '0 minutes' for the first minute."""
    return time_ago(moment)


@register.filter
def sureness(track) -> str:
    """How sure the name on a review card is, in words: no number a fan must interpret."""
    if not track.is_face:
        return ""
    if track.corrected:
        return "named by a person"
    if track.member is None:
        nearest = f"; the nearest is {track.candidate.name}" if track.candidate else ""
        return f"no member matched closely{nearest}"
    if track.confidence >= 0.9:
        return "the model is sure"
    if track.confidence >= 0.6:
        return "the model is fairly sure"
    return "the model is not sure"
