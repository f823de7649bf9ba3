import json
from pathlib import Path

import numpy as np
from django.core.management.base import BaseCommand, CommandError

from core.faces import embed
from core.images import ImageRejected, open_image
from recognition import selectors
from recognition.management.commands._common import get_group
from recognition.services import model_version_load


class Command(BaseCommand):
    help = (
        "Name the face in every image of DIR/<slug>/ with the group's active model. Folders that "
        "are not members count as strangers. Prints one JSON line of fractions."
    )

    def add_arguments(self, parser):
        parser.add_argument("directory", type=Path)
        parser.add_argument("--group", required=True)
        parser.add_argument(
            "--skip",
            type=int,
            default=0,
            help="skip the first N files (sorted) of each member's folder, e.g. their gallery images",
        )

    def handle(self, *args, directory, group, skip, **options):
        group_row = get_group(group)
        version = selectors.active_version(group_row)
        if version is None:
            raise CommandError(f"{group} has no active model version; train one first")
        clf = model_version_load(version)
        if not directory.is_dir():
            raise CommandError(f"{directory} is not a directory")
        members = set(group_row.members.values_list("slug", flat=True))
        counts = {"right": 0, "wrong": 0, "unknown": 0, "known": 0, "strangers": 0, "named": 0}
        no_face = 0
        embedder = embed.embedder_for_model_id(version.embedding_model)
        for folder in sorted(p for p in directory.iterdir() if p.is_dir()):
            files = sorted(p for p in folder.iterdir() if p.is_file())
            for path in files[skip:] if folder.name in members else files:
                vector = self._embed(path, embedder)
                if vector is None:
                    no_face += 1
                    continue
                label = clf.predict(vector[None])[0].label
                if folder.name in members:
                    counts["known"] += 1
                    if label is None:
                        counts["unknown"] += 1
                    elif label == folder.name:
                        counts["right"] += 1
                    else:
                        counts["wrong"] += 1
                else:
                    counts["strangers"] += 1
                    counts["named"] += label is not None
        known, strangers = max(counts["known"], 1), max(counts["strangers"], 1)
        self.stdout.write(
            json.dumps(
                {
                    "model_version": version.number,
                    "known_faces": counts["known"],
                    "stranger_faces": counts["strangers"],
                    "named_right": round(counts["right"] / known, 4),
                    "named_wrong": round(counts["wrong"] / known, 4),
                    "unknown": round(counts["unknown"] / known, 4),
                    "strangers_named": round(counts["named"] / strangers, 4),
                    "images_without_a_face": no_face,
                }
            )
        )

    def _embed(self, path: Path, embedder) -> np.ndarray | None:
        try:
            pixels = open_image(path.read_bytes()).pixels
        except (ImageRejected, OSError):
            return None
        found = embed.find_faces_in_photo(pixels)  # the photo's subject first
        if not found:
            # A face crop the detector cannot find: the whole image is the face.
            box = [0, 0, pixels.shape[1], pixels.shape[0]]
            return embedder.embed_chips(embedder.chips(pixels, [box]))[0]
        subject = found[0]
        return embedder.embed_chips(
            embedder.chips(pixels, [subject.box], keypoints=[subject.keypoints])
        )[0]
