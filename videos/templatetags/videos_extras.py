from django import template

register = template.Library()


@register.filter
def dictget(mapping, key):
    return mapping.get(key, ())
