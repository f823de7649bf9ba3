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
