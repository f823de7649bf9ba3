"""Fans' pages across their library: a group's members, a member's moments in every video they
may watch, and the moments two or more members are on screen together."""

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from base.roles import is_curator
from gallery.models import Group
from gallery.selectors import members_with_photo
from videos import library

VIDEOS_PER_PAGE = 25
FANCAMS_SHOWN = 24


def everyone_asked(request) -> bool:
    """A curator sees every fan's videos on asking (?all=1), as on the video list."""
    return bool(request.GET.get("all")) and is_curator(request.user)


@login_required
@require_GET
def groups(request):
    rows = Group.objects.prefetch_related("members").order_by("name")
    return render(request, "videos/groups.html", {"groups": rows})


@login_required
@require_GET
def group_page(request, group):
    group = get_object_or_404(Group, slug=group)
    members = list(group.members.all())
    chosen_slugs = request.GET.getlist("m")
    chosen = [m for m in members if m.slug in chosen_slugs]
    unknown = [
        slug for slug in dict.fromkeys(chosen_slugs) if slug not in {m.slug for m in members}
    ]
    everyone = everyone_asked(request)
    context = {
        "group": group,
        "members": members,
        "with_photo": members_with_photo(members),
        "chosen": chosen,
        "unknown": unknown,
        "searched": bool(chosen_slugs),
        "curator": is_curator(request.user),
        "everyone": everyone,
        "query": "&".join([f"m={m.slug}" for m in chosen] + (["all=1"] if everyone else [])),
        "mine_query": "&".join(f"m={m.slug}" for m in chosen),
        "all_query": "&".join([f"m={m.slug}" for m in chosen] + ["all=1"]),
    }
    if len(chosen) >= 2:
        found = library.together(request.user, chosen, everyone=everyone)
        page = Paginator(found, VIDEOS_PER_PAGE).get_page(request.GET.get("page"))
        context |= {
            "found": found,
            "page": page,
            "appearances": library.with_videos(page.object_list),
            "seconds": sum(a.seconds for a in found),
            "stretches": sum(len(a.moments) for a in found),
        }
    return render(request, "videos/group.html", context)


@login_required
@require_GET
def member_page(request, group, member):
    group = get_object_or_404(Group, slug=group)
    member = get_object_or_404(group.members, slug=member)
    everyone = everyone_asked(request)
    found = library.member_library(request.user, member, everyone=everyone)
    page = Paginator(found.appearances, VIDEOS_PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "videos/member.html",
        {
            "group": group,
            "member": member,
            "has_photo": bool(members_with_photo([member])),
            "found": found,
            "page": page,
            "appearances": library.with_videos(page.object_list),
            "fancams": list(
                library.fancams_of(request.user, member, everyone=everyone)[:FANCAMS_SHOWN]
            ),
            "curator": is_curator(request.user),
            "everyone": everyone,
            "query": "all=1" if everyone else "",
        },
    )
