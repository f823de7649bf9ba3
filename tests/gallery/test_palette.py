"""The colours new members get: each member's boxes must be told apart from every other's."""

import itertools

import cv2
import numpy as np

from gallery.models import COLOUR, PALETTE


def lab(colour: str) -> np.ndarray:
    rgb = np.array([[[int(colour[i : i + 2], 16) for i in (1, 3, 5)]]], np.float32) / 255
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab)[0, 0]


def test_there_is_a_colour_for_each_member_of_a_big_group() -> None:
    assert len(set(PALETTE)) == len(PALETTE) >= 9  # Twice has nine members
    for colour in PALETTE:
        COLOUR(colour)  # valid #rrggbb


def test_no_two_palette_colours_look_alike() -> None:
    # CIE76 distance in Lab: about 2 is a just-noticeable difference; under 20, two small tags
    # on a busy stage are easily confused (the old palette had two blues 14 apart).
    closest = min(np.linalg.norm(lab(a) - lab(b)) for a, b in itertools.combinations(PALETTE, 2))
    assert closest >= 25
