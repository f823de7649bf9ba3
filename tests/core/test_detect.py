"""SCRFD: boxes, scores and five keypoints, mapped back to the image, for crops and frames."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from core.faces import weights
from core.faces.align import ARCFACE_TEMPLATE
from core.faces.detect import Detector, Face, detect_in_crop, fit_input_size, main_face

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
# Aligned 112x112 crops of several people (the gallery fixtures).
CROPS = [
    "faces/barack-obama/000.png",
    "faces/tom-hanks/001.png",
    "faces/halle-berry/002.png",
    "faces/jessica-alba/003.png",
    "faces/miley-cyrus/004.png",
    "faces/hugh-laurie/000.png",
]
# The profile view stage-dev shows for 89 frames, which the old HOG detector never found.
PROFILE = "special/keanu-reeves-profile.png"


@pytest.fixture(scope="module")
def det() -> Detector:
    return Detector(weights.SCRFD.read(), threads=1)


def load(name: str) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(FIXTURES / name)), cv2.COLOR_BGR2RGB)


def paste(crop: np.ndarray, angle: float, scale: float, centre, size=(1280, 720), bg=90):
    """Put ``crop`` into a plain frame, rotated and scaled about its centre. Returns the
    frame and the 2x3 matrix from crop to frame pixels."""
    h, w = crop.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
    m[:, 2] += np.asarray(centre, float) - [w / 2, h / 2]
    frame = np.full((size[1], size[0], 3), bg, np.uint8)
    cv2.warpAffine(crop, m, size, dst=frame, borderMode=cv2.BORDER_TRANSPARENT)
    return frame, m


def apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return np.asarray(pts, float) @ m[:, :2].T + m[:, 2]


def iou(a, b) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def assert_inside(face: Face, w: int, h: int) -> None:
    left, top, right, bottom = face.box
    assert 0 <= left < right <= w and 0 <= top < bottom <= h, face.box


# -- detection ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", CROPS)
def test_finds_the_face_in_a_shared_crop(det, name):
    crop = load(name)
    faces = detect_in_crop(det, crop)
    assert len(faces) == 1
    face = faces[0]
    assert face.score >= 0.5
    assert_inside(face, 112, 112)
    assert face.keypoints.shape == (5, 2)
    # The crops are ArcFace-aligned, so the keypoints sit near the template (SCRFD-500M's
    # mouth corners run ~4 px high on these crops, so allow some slack).
    assert np.linalg.norm(face.keypoints - ARCFACE_TEMPLATE, axis=1).mean() < 8


def test_finds_a_face_in_profile_that_hog_never_sees(det):
    import dlib

    crop = load(PROFILE)
    frame, _ = paste(crop, 0, 146 / 112, (1096, 605))
    assert len(dlib.get_frontal_face_detector()(frame, 1)) == 0  # HOG: nobody there
    faces = detect_in_crop(det, crop)
    assert len(faces) == 1 and faces[0].score >= 0.5
    # and in a 720p frame, at the size it has in stage-dev (146 px), at 640x384
    frame, m = paste(crop, 0, 146 / 112, (1096, 605))
    faces = det.detect(frame, input_size=(640, 384))
    square = (1096 - 73, 605 - 73, 1096 + 73, 605 + 73)
    assert any(iou(f.box, square) >= 0.3 for f in faces), faces


def test_main_face_of_a_crop_with_two_faces(det):
    # drew-barrymore/038.png also holds a man's face (left), which scores higher
    faces = detect_in_crop(det, load("special/drew-barrymore-and-a-man.png"))
    assert len(faces) == 2
    face = main_face(faces, 112, 112)
    assert face is not faces[0] and face.box[0] > 30
    assert main_face([], 112, 112) is None


def test_crop_needs_room_at_large_input_sizes(det):
    # The reason for detect_in_crop: a face that fills a 640x640 input is missed.
    crop = load(CROPS[0])
    assert det.detect(crop, input_size=(640, 640)) == []
    assert len(detect_in_crop(det, crop, input_size=640, pad=1.0)) == 1


def test_results_map_back_to_image_pixels(det):
    crop = load(CROPS[1])
    frame, m = paste(crop, 15, 1.8, (400, 300))
    expected = apply(m, detect_in_crop(det, crop)[0].keypoints)
    for size in [(640, 384), (960, 544), (1280, 736)]:
        faces = det.detect(frame, input_size=size)
        assert len(faces) == 1
        # SCRFD-500M's keypoints wander a few pixels with scale: a mapping error would be tens.
        assert np.abs(faces[0].keypoints - expected).max() < 8, size


def test_flip_mirrors_keypoints(det):
    # Checks the decoding (anchor centres, output layout): an anchor-centre error of d
    # would show as 2d here.
    frame, _ = paste(load(CROPS[0]), 0, 2.0, (500, 330))
    w = frame.shape[1]
    a = det.detect(frame, input_size=(640, 384))[0]
    b = det.detect(np.ascontiguousarray(frame[:, ::-1]), input_size=(640, 384))[0]
    mirrored = b.keypoints.copy()
    mirrored[:, 0] = w - mirrored[:, 0]
    mirrored = mirrored[[1, 0, 2, 4, 3]]  # left and right swap
    # x is what a decoding error would move; y shows the model's own noise (a few px)
    assert np.abs(mirrored[:, 0] - a.keypoints[:, 0]).max() < 2
    assert np.abs(mirrored[:, 1] - a.keypoints[:, 1]).max() < 6
    assert abs((w - b.box[2]) - a.box[0]) < 3 and abs((w - b.box[0]) - a.box[2]) < 3


def test_sorted_best_first_and_max_faces(det):
    frame = np.full((720, 1280, 3), 90, np.uint8)
    for i, name in enumerate(CROPS[:4]):
        x = 100 + 300 * i
        frame[270:450, x : x + 180] = cv2.resize(load(name), (180, 180))
    faces = det.detect(frame, input_size=(640, 384))
    assert len(faces) == 4
    scores = [f.score for f in faces]
    assert scores == sorted(scores, reverse=True)
    two = det.detect(frame, input_size=(640, 384), max_faces=2)
    assert [f.box for f in two] == [f.box for f in faces[:2]]


def test_boxes_are_clipped_to_the_image(det):
    crop = load(CROPS[0])
    # a face cut by the top-left corner of the frame
    frame, _ = paste(crop, 0, 2.5, (40, 30), size=(640, 360))
    faces = det.detect(frame, input_size=(640, 384), threshold=0.3)
    assert faces
    for f in faces:
        assert_inside(f, 640, 360)
    # and noise at a low threshold, where boxes land anywhere
    noise = np.random.default_rng(0).integers(0, 256, (200, 300, 3), dtype=np.uint8)
    for f in det.detect(noise, input_size=(320, 224), threshold=0.05):
        assert_inside(f, 300, 200)
    for f in detect_in_crop(det, crop, threshold=0.05):
        assert_inside(f, 112, 112)


def test_empty_and_tiny_images(det):
    for shape in [(0, 0, 3), (0, 50, 3), (50, 0, 3), (0, 0)]:
        img = np.zeros(shape, np.uint8)
        assert det.detect(img) == []
        assert det.detect(img, input_size=(320, 192)) == []
        assert detect_in_crop(det, img) == []
    for shape in [(1, 1, 3), (2, 7, 3), (5, 5), (16, 16, 3), (31, 33, 3)]:
        img = np.full(shape, 128, np.uint8)
        for faces in (
            det.detect(img),
            det.detect(img, input_size=(64, 32)),
            detect_in_crop(det, img),
        ):
            assert isinstance(faces, list)
            for f in faces:
                assert_inside(f, shape[1], shape[0])


def test_grey_and_rgba_images(det):
    crop = load(CROPS[0])
    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
    assert len(detect_in_crop(det, grey)) == 1
    rgba = np.dstack([crop, np.full(crop.shape[:2], 255, np.uint8)])
    assert len(detect_in_crop(det, rgba)) == 1


def test_bad_input(det):
    img = np.zeros((100, 100, 3), np.uint8)
    with pytest.raises(ValueError):
        det.detect(img, input_size=(100, 96))
    with pytest.raises(TypeError):
        det.detect(img.astype(np.float32))
    with pytest.raises(ValueError):
        det.detect(np.zeros((10, 10, 2), np.uint8))


def test_fit_input_size():
    assert fit_input_size(1280, 720) == (640, 384)
    assert fit_input_size(1920, 1080, 960) == (960, 544)
    assert fit_input_size(1080, 1920) == (384, 640)
    assert fit_input_size(112, 112, 192) == (192, 192)
    assert fit_input_size(3000, 10) == (640, 32)


def test_aligning_a_detected_face_undoes_its_rotation_and_scale(det):
    # A crop rotated and scaled into a frame: aligning from the detected keypoints undoes
    # the rotation and scale. SCRFD-500M's keypoints are good to a few pixels, not to two,
    # so this checks the aligned keypoints against those aligned from the crop itself.
    crop = load(CROPS[2])
    from core.faces.align import alignment_transform

    k0 = detect_in_crop(det, crop)[0].keypoints
    a0 = apply(alignment_transform(k0), k0)
    frame, m = paste(crop, 30, 2.0, (640, 360))
    face = det.detect(frame, input_size=(640, 384))[0]
    mt = alignment_transform(face.keypoints)
    assert np.linalg.norm(apply(mt, face.keypoints) - a0, axis=1).max() < 4
    # crop -> frame -> chip is close to the crop's own crop -> chip
    composed = mt[:, :2] @ m[:, :2]
    direct = alignment_transform(k0)[:, :2]
    angle = np.degrees(np.arctan2(composed[1, 0], composed[0, 0]))
    assert abs(angle - np.degrees(np.arctan2(direct[1, 0], direct[0, 0]))) < 5
    assert abs(np.sqrt(np.linalg.det(composed)) / np.sqrt(np.linalg.det(direct)) - 1) < 0.1
    from core.faces.align import align, alignment_transform

    chip = align(frame, face.keypoints)
    assert len(detect_in_crop(det, chip)) == 1


# -- the second opinion ------------------------------------------------------------------


def test_the_second_detector_finds_a_face_only_where_one_is(det):
    """FaceCheck (dlib's MMOD detector) says whether a face's centre lies in a given box: a
    face tilted and shrunk into a stage frame, yes; the plain background, a box beside the
    face, a sliver and a box off the frame, no."""
    from core.faces.mmod import FaceCheck

    check = FaceCheck()
    frame, _ = paste(load(CROPS[2]), 20, 0.9, (640, 360))
    (face,) = det.detect(frame, threshold=0.5)
    left, top, right, bottom = face.box
    confidence = check.face_at(frame, face.box)
    assert confidence is not None and confidence > 0
    side = right - left
    assert check.face_at(frame, (100, 100, 100 + side, 100 + side)) is None
    assert check.face_at(frame, (right + 5, top, right + 5 + side, bottom)) is None
    assert check.face_at(frame, (600, 300, 604, 304)) is None
    assert check.face_at(frame, (1300, 800, 1400, 900)) is None
