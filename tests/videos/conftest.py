import shutil
import subprocess

import numpy as np
import pytest
from django.core.management import call_command

from base.roles import ensure_curators_group
from core.media.probe import ffmpeg_exe
from gallery import services as gallery_services
from tests import footage
from tests.conftest import FIXTURES
from tests.core.stage import scene
from videos.models import Detection, Track, Video


def make_clip(path, *, seconds=1.0, size="160x120", audio=True):
    """A small real video made by ffmpeg: test pattern, optional 440 Hz tone."""
    command = [
        ffmpeg_exe(),
        "-v",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        f"testsrc2=size={size}:rate=25:duration={seconds}",
    ]
    if audio:
        command += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}", "-c:a", "aac"]
    command += ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-shortest", str(path)]
    subprocess.run(command, check=True)
    return path


@pytest.fixture
def clip(tmp_path):
    return make_clip(tmp_path / "clip.mp4")


@pytest.fixture
def group(db):
    return gallery_services.group_get_or_create(slug="twice", name="Twice")


@pytest.fixture
def members(group):
    return [
        gallery_services.member_get_or_create(group=group, slug=slug)
        for slug in ("nayeon", "mina", "sana")
    ]


@pytest.fixture
def fan(django_user_model):
    return django_user_model.objects.create_user("fan", password="pw-fan-123")


@pytest.fixture
def other_fan(django_user_model):
    return django_user_model.objects.create_user("other", password="pw-other-123")


@pytest.fixture
def curator(django_user_model):
    user = django_user_model.objects.create_user("cura", password="pw-cura-123", is_staff=True)
    user.groups.add(ensure_curators_group())
    return user


@pytest.fixture
def public_video(processed_video):
    """The fan's processed video, watchable by anyone with the link."""
    processed_video.is_public = True
    processed_video.save()
    return processed_video


@pytest.fixture
def processed_video(group, members, fan, clip):
    """A video row as processing leaves it: two tracks over 25 frames, one of them unknown."""
    from django.core.files import File

    video = Video(
        owner=fan,
        group=group,
        title="Stage",
        original_name="clip.mp4",
        size=clip.stat().st_size,
        fps=25.0,
        frames=25,
        width=160,
        height=120,
        duration=1.0,
        has_audio=True,
        state=Video.State.DONE,
        named_until=1.0,
        names_ready=True,
    )
    with clip.open("rb") as handle:
        video.original.save("clip.mp4", File(handle), save=False)
    with clip.open("rb") as handle:
        video.labelled.save("labelled.mp4", File(handle), save=False)
    video.save()
    vector = np.zeros((2, 128), dtype=np.float32)
    nayeon = Track.objects.create(
        video=video,
        number=1,
        member=members[0],
        confidence=0.93,
        first_frame=0,
        last_frame=24,
        embedding=vector[0].tobytes(),
        samples=vector.tobytes(),
        embedding_model="m",
    )
    stranger = Track.objects.create(
        video=video,
        number=2,
        member=None,
        confidence=0.4,
        first_frame=10,
        last_frame=19,
        embedding=vector[0].tobytes(),
        samples=vector.tobytes(),
        embedding_model="m",
    )
    Detection.objects.bulk_create(
        [
            Detection(
                video=video,
                track=nayeon,
                frame=f,
                time=f / 25,
                left=10,
                top=10,
                right=50,
                bottom=60,
            )
            for f in range(25)
        ]
        + [
            Detection(
                video=video,
                track=stranger,
                frame=f,
                time=f / 25,
                left=90,
                top=20,
                right=130,
                bottom=70,
            )
            for f in range(10, 20)
        ]
    )
    return video


@pytest.fixture
def celebs(tmp_path):
    """A trained group from the fixture faces (all four known people, five images each)."""
    root = tmp_path / "gallery"
    for slug in ("tom-hanks", "halle-berry", "keanu-reeves", "miley-cyrus"):
        shutil.copytree(FIXTURES / "faces" / slug, root / slug)
    call_command("import_gallery", str(root), "--group", "celebs", stdout=open("/dev/null", "w"))
    call_command("train", "--group", "celebs", "--cv", "3", stdout=open("/dev/null", "w"))
    from gallery.models import Group

    return Group.objects.get(slug="celebs")


@pytest.fixture
def stage_clip(tmp_path):
    """Two shots (Tom and Halle; Keanu and a stranger) with a 440 Hz tone."""
    import numpy as np

    one, _ = scene([("tom-hanks", 1), ("halle-berry", 1)], 30, (70, 90, 140))
    two, _ = scene([("keanu-reeves", 1), ("will-smith", 1)], 30, (150, 120, 60))
    path = tmp_path / "stage.mp4"
    command = [
        ffmpeg_exe(), "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
        "-s", "480x270", "-r", "25", "-i", "-", "-f", "lavfi", "-i", "sine=frequency=440:duration=2.4",
        "-c:v", "libx264", "-crf", "14", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(path),
    ]  # fmt: skip
    subprocess.run(command, input=np.stack(one + two).tobytes(), check=True)
    return path


@pytest.fixture(scope="session")
def footage_dir(tmp_path_factory):
    """Where tests/footage.py's files are made, once per session."""
    return tmp_path_factory.mktemp("footage")


@pytest.fixture
def footage_video(footage_dir, celebs, fan):
    """footage_video(name): the file `name` of tests/footage.py uploaded by the fan to the
    celebrity group and processed in this process."""
    from videos import processing, services

    def process(name):
        path = footage.make(footage_dir, name)
        video = services.video_submit(
            source=path, name=name, group=celebs, owner=fan, enqueue=False
        )
        video = processing.video_process(video=video)
        assert video.state == Video.State.DONE, video.error
        return video

    return process


@pytest.fixture
def footage_upload(footage_dir, celebs):
    """footage_upload(name, owner): the file `name` of tests/footage.py uploaded by `owner` to
    the celebrity group (titled, public by link if asked) and processed in this process."""

    def process(name, owner, *, title="", public=False):
        from videos import processing, services

        path = footage.make(footage_dir, name)
        video = services.video_submit(
            source=path, name=name, group=celebs, owner=owner, title=title, is_public=public,
            enqueue=False,
        )  # fmt: skip
        video = processing.video_process(video=video)
        assert video.state == Video.State.DONE, video.error
        return video

    return process
