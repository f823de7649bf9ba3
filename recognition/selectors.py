"""Reads that recognition's services, commands and pages share."""

import numpy as np

from core.faces import embed
from gallery.models import GalleryImage, Group
from recognition.models import ModelVersion


def embedding_model_id(group: Group) -> str:
    """The id of the embeddings the group's gallery is encoded in now."""
    return embed.embedder(group.embedding_model).model_id


def active_version(group: Group) -> ModelVersion | None:
    return ModelVersion.objects.filter(group=group, is_active=True).first()


def training_images(group: Group):
    """Approved images of the group's members, whatever their embedding state."""
    return GalleryImage.objects.filter(
        member__group=group, status=GalleryImage.Status.APPROVED
    ).select_related("member")


def training_set(group: Group, embedding_model: str) -> tuple[np.ndarray, list[str]]:
    """Embeddings and member slugs of the approved images encoded by `embedding_model`."""
    rows = training_images(group).filter(embedding_model=embedding_model, embedding__isnull=False)
    vectors, labels = [], []
    for image in rows.order_by("member__order", "pk"):
        vectors.append(image.vector())
        labels.append(image.member.slug)
    X = np.stack(vectors) if vectors else np.empty((0, 0), dtype=np.float32)
    return X, labels
