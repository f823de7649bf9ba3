from django.core.management.base import CommandError

from gallery.models import Group


def get_group(slug: str) -> Group:
    group = Group.objects.filter(slug=slug).first()
    if group is None:
        raise CommandError(f"no group with slug {slug!r}")
    return group
