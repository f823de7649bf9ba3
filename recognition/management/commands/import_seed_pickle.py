import hashlib
import io
import json
import pickle
from pathlib import Path

import numpy as np
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils.text import slugify

from core.faces import embed
from gallery import services as gallery_services
from gallery.models import GalleryImage, Group

# What the original scripts' encode.pickle holds: a dict of lists of numpy arrays and strings.
ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("builtins", "list"),
    ("builtins", "dict"),
    ("_codecs", "encode"),
}


class _SeedUnpickler(pickle.Unpickler):
    """Loads plain data and numpy arrays only; anything else in the file is refused."""

    def find_class(self, module, name):
        if (module, name) not in ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def read_seed_pickle(path: Path) -> tuple[list[np.ndarray], list[str]]:
    try:
        data = _SeedUnpickler(io.BytesIO(path.read_bytes())).load()
    except (OSError, pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
        raise CommandError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict) or not {"encodings", "names"} <= set(data):
        raise CommandError(f"{path} is not an encode.pickle: expected keys 'encodings' and 'names'")
    encodings, names = list(data["encodings"]), list(data["names"])
    if len(encodings) != len(names):
        raise CommandError(
            f"{path} has {len(encodings)} encodings but {len(names)} names; they must pair up"
        )
    vectors = []
    for i, encoding in enumerate(encodings):
        vector = np.asarray(encoding, dtype=np.float32).reshape(-1)
        if vector.shape != (128,) or not np.isfinite(vector).all():
            raise CommandError(f"encoding {i} is not 128 finite numbers")
        vectors.append(vector)
    if any(not isinstance(name, str) or not slugify(name) for name in names):
        raise CommandError("every name must be a non-empty string")
    return vectors, names


class Command(BaseCommand):
    help = (
        "Import the original scripts' encode.pickle ({'encodings': [...], 'names': [...]}) as "
        "embedding-only training samples, creating members by name. Only the file named here is "
        "read, and it may hold nothing but lists, strings and numpy arrays."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--group", required=True)

    @transaction.atomic
    def handle(self, *args, file, group, **options):
        vectors, names = read_seed_pickle(file)
        group_row = gallery_services.group_get_or_create(slug=group)
        # face_recognition's encodings are dlib_face_recognition_resnet_model_v1 with 5-point
        # alignment and 0.25 padding: our dlib embedding. The group uses it from now on.
        others = GalleryImage.objects.filter(member__group=group_row).exclude(
            embedding_model__startswith="dlib-"
        )
        if group_row.embedding_model != "dlib" and others.exclude(embedding=None).exists():
            raise CommandError(
                f"{group_row} is encoded with {group_row.get_embedding_model_display()}; seed "
                "pickles hold dlib descriptors, which cannot mix with it. Import into a new group."
            )
        Group.objects.filter(pk=group_row.pk).update(embedding_model="dlib")
        model_id = embed.embedder("dlib").model_id
        added = skipped = 0
        members = {}
        for vector, name in zip(vectors, names, strict=True):
            slug = slugify(name)
            if slug not in members:
                members[slug] = gallery_services.member_get_or_create(
                    group=group_row, slug=slug, name=name
                )
            digest = hashlib.sha256(vector.tobytes()).hexdigest()
            if GalleryImage.objects.filter(member__group=group_row, sha256=digest).exists():
                skipped += 1
                continue
            GalleryImage.objects.create(
                member=members[slug],
                source=GalleryImage.Source.IMPORT,
                original_name=f"{file.name}",
                status=GalleryImage.Status.APPROVED,
                sha256=digest,
                embedding=vector.tobytes(),
                embedding_model=model_id,
            )
            added += 1
        self.stdout.write(
            json.dumps(
                {"added": added, "already_there": skipped, "members": sorted(members)},
            )
        )
