"""Who is in a picture a fan holds: answered at once, inside the request, by the group's active
model. Bounded by the gallery's image limits and an hourly limit per person; the picture is
read from memory and never stored."""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass

import django_rq
from django.conf import settings
from redis.exceptions import RedisError

from core.classifier.model import ClassifierError
from core.faces import embed
from core.faces.identify import Answer, identify
from core.faces.weights import ModelLoadError
from core.images import ImageRejected, ImageTooLarge, open_image
from gallery.models import Group, Member
from recognition.models import ModelVersion
from recognition.selectors import active_version
from recognition.services import naming_classifier

log = logging.getLogger(__name__)

HOUR = 3600


class IdentifyRefused(Exception):
    """The picture cannot be answered; the message says why, for the fan, with an HTTP status."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Face:
    """One face of the picture, with its members' rows (None for a member no longer there)."""

    answer: Answer
    box: tuple[int, int, int, int]  # in the picture's upright pixels, as it was sent
    member: Member | None
    candidates: tuple[tuple[str, Member | None, float], ...]  # slug, row, score


@dataclass(frozen=True)
class Picture:
    group: Group
    version: ModelVersion
    width: int  # upright, as it was sent
    height: int
    faces: list[Face]  # left to right
    not_named: int  # faces beyond core.faces.identify.MAX_FACES, the smallest


def picture_identify(*, group: Group, data: bytes) -> Picture:
    """Find and name every face in the picture `data` with `group`'s active model."""
    if not group.members.exists():
        raise IdentifyRefused(f"{group} has no members yet, so nobody can be named", 409)
    version = active_version(group)
    if version is None:
        raise IdentifyRefused(f"{group} has no trained model yet; a curator must train one", 409)
    try:
        clean = open_image(
            data, max_pixels=settings.GALLERY_MAX_PIXELS, max_bytes=settings.GALLERY_MAX_BYTES
        )
    except ImageTooLarge as exc:
        raise IdentifyRefused(f"This picture is too large: {exc}.", 413) from None
    except ImageRejected as exc:
        raise IdentifyRefused(f"This picture cannot be read: {exc}.") from None
    try:
        # A missing or altered file: the classifier's, or a face model's (loaded on first use).
        classifier = naming_classifier(version)
        embedder = embed.embedder_for_model_id(version.embedding_model)
        answers, not_named = identify(clean.pixels, classifier=classifier, embedder=embedder)
    except (ClassifierError, ModelLoadError) as exc:
        log.error("identify with %s failed: %s", version, exc)
        raise IdentifyRefused(
            f"{group}'s model cannot be used right now; try again later", 503
        ) from None
    except ValueError as exc:  # embedder_for_model_id: a face model this code no longer has
        log.error("identify with %s failed: %s", version, exc)
        raise IdentifyRefused(
            f"{group}'s model was made with a face model this site no longer has", 503
        ) from None
    width, height = clean.original_size or (clean.width, clean.height)
    scale_x, scale_y = width / clean.width, height / clean.height
    members = {member.slug: member for member in group.members.all()}
    faces = []
    for answer in answers:
        left, top, right, bottom = answer.box
        faces.append(
            Face(
                answer=answer,
                box=(
                    max(0, round(left * scale_x)),
                    max(0, round(top * scale_y)),
                    min(width, round(right * scale_x)),
                    min(height, round(bottom * scale_y)),
                ),
                member=members.get(answer.member) if answer.member else None,
                candidates=tuple(
                    (slug, members.get(slug), score) for slug, score, _ in answer.candidates
                ),
            )
        )
    return Picture(
        group=group,
        version=version,
        width=width,
        height=height,
        faces=faces,
        not_named=not_named,
    )


def identify_rate_take(*, user) -> None:
    """Count one picture against the person's hourly limit (IDENTIFY_PER_HOUR), or refuse it
    saying when they may ask again. Staff are not limited."""
    if user.is_staff:
        return
    limit = settings.IDENTIFY_PER_HOUR
    key = f"twicesite:identify:{user.pk}"
    now = time.time()
    entry = f"{now:.6f}-{uuid.uuid4().hex[:8]}"
    try:
        connection = django_rq.get_connection("default")
        # One transaction: drop what is over an hour old, count this one in, read the count.
        with connection.pipeline() as pipe:
            pipe.zremrangebyscore(key, 0, now - HOUR)
            pipe.zadd(key, {entry: now})
            pipe.zcard(key)
            pipe.zrange(key, 0, 0, withscores=True)
            pipe.expire(key, HOUR)
            _, _, count, oldest, _ = pipe.execute()
        if count <= limit:
            return
        connection.zrem(key, entry)
    except RedisError as exc:
        # The limit protects the web server's cores; a fan is not refused because Redis is away.
        log.warning("identify rate limit not checked: %s", exc)
        return
    minutes = max(1, round((oldest[0][1] + HOUR - now) / 60)) if oldest else 60
    raise IdentifyRefused(
        f"You have asked about {limit} pictures in the last hour; "
        f"try again in {minutes} minute{'s' if minutes != 1 else ''}.",
        429,
    )
