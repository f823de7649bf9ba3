"""A second opinion on a weak detection: dlib's MMOD CNN face detector. Django-free.

SCRFD-500M scores some faces under the 0.5 that opens a track, at any input size: on a harsh
1080p stage a tilted face under red light scored 0.1-0.3 through a whole 31-frame shot,
mirrored, equalised or turned upright alike. dlib's CNN face detector (max-margin object
detection, trained on other faces with another loss) found it on each of 8 sampled frames. It
is far too slow to search whole frames with (dlib-bin has no BLAS: 0.4-0.6 s for a 300 px
window), but asked about one place, the face scaled to FACE_PX in a window MARGIN of its size
wider, it takes 0.17 s on average; and a video's thorough passes hold few weak detections on
no track (0-3 on each of nineteen stage videos).

Typical use::

    check = FaceCheck()
    confidence = check.face_at(frame_rgb, (left, top, right, bottom))  # None: no face there
"""

from __future__ import annotations

import cv2
import dlib
import numpy as np

from core.faces import weights
from core.faces.detect import window_around

__all__ = ["FACE_PX", "MARGIN", "FaceCheck"]

#: The face's side in the window MMOD looks at: its detection window is about 80 px, and a
#: pyramid of 5/6 steps finds larger faces.
FACE_PX = 100
#: How much of the face's side the window adds on every side.
MARGIN = 0.5


class FaceCheck:
    """dlib's MMOD CNN face detector (from the face_recognition_models wheel, checked by
    SHA-256), asked whether a face lies at a given place."""

    def __init__(self) -> None:
        self._net = dlib.cnn_face_detection_model_v1(str(weights.MMOD.checked_path()))

    def face_at(self, image_rgb: np.ndarray, box) -> float | None:
        """The confidence of the face MMOD finds with its centre inside `box` (left, top, right,
        bottom in the image's pixels), the most confident if several; None where it finds none.
        It looks at a window around the box, scaled so the box's longer side is FACE_PX."""
        left, top, right, bottom = whole = tuple(int(round(v)) for v in box)
        side = max(right - left, bottom - top)
        if side < 8:
            return None
        height, width = image_rgb.shape[:2]
        around = window_around(whole, width, height, MARGIN)
        if around is None:
            return None
        x0, y0, x1, y1 = around
        zoom = FACE_PX / side
        window = cv2.resize(
            image_rgb[y0:y1, x0:x1],
            (max(1, round((x1 - x0) * zoom)), max(1, round((y1 - y0) * zoom))),
            interpolation=cv2.INTER_AREA if zoom < 1 else cv2.INTER_LINEAR,
        )
        best = None
        for found in self._net(np.ascontiguousarray(window), 0):
            rect = found.rect
            cx = x0 + (rect.left() + rect.right()) / 2 / zoom
            cy = y0 + (rect.top() + rect.bottom()) / 2 / zoom
            if left <= cx <= right and top <= cy <= bottom:
                best = found.confidence if best is None else max(best, found.confidence)
        return best
