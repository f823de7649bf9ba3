"""Processing an uploaded video through a real queue and worker, end to end."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from django.core.management import call_command
from rq import SimpleWorker

from recognition.core import media
from tests.conftest import FIXTURES
from tests.recognition.core.test_pipeline import _scene
from videos import exports, services
from videos.models import Video

pytestmark = pytest.mark.django_db(transaction=True)


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

    one, _ = _scene([("tom-hanks", 1), ("halle-berry", 1)], 30, (70, 90, 140))
    two, _ = _scene([("keanu-reeves", 1), ("will-smith", 1)], 30, (150, 120, 60))
    path = tmp_path / "stage.mp4"
    command = [
        media.ffmpeg_exe(), "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
        "-s", "480x270", "-r", "25", "-i", "-", "-f", "lavfi", "-i", "sine=frequency=440:duration=2.4",
        "-c:v", "libx264", "-crf", "14", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(path),
    ]  # fmt: skip
    subprocess.run(command, input=np.stack(one + two).tobytes(), check=True)
    return path


def work(queue_name="video"):
    import django_rq

    queue = django_rq.get_queue(queue_name)
    SimpleWorker([queue], connection=queue.connection).work(burst=True)


def members_named(video):
    return {d["member"] for d in exports.predictions(video)["detections"]}


def test_an_upload_is_processed_into_tracks_and_a_labelled_video_with_sound(
    celebs, stage_clip, fan, rq_queue
):
    video = services.video_submit(source=stage_clip, name="stage.mp4", group=celebs, owner=fan)
    work()
    video.refresh_from_db()

    assert video.state == Video.State.DONE, video.error
    assert video.progress == 100
    assert members_named(video) >= {"tom-hanks", "halle-berry", "keanu-reeves"}
    assert "will-smith" not in members_named(video)
    assert video.model_version.is_active
    out = media.probe(video.labelled.path)
    source = media.probe(video.original.path)
    assert out.frames == source.frames == 60
    assert out.has_audio and out.audio_codec == "aac"
    assert abs(out.duration - source.duration) <= 1 / source.fps + 1e-6
    assert video.tracks.exclude(thumbnail="").count() == video.tracks.count()


def test_a_long_video_is_analysed_in_segments_on_any_worker(
    celebs, stage_clip, fan, rq_queue, settings
):
    settings.VIDEO_SEGMENT_SECONDS = 1  # 60 frames at 25 fps: three segments
    video = services.video_submit(source=stage_clip, name="stage.mp4", group=celebs, owner=fan)
    work()
    video.refresh_from_db()

    assert video.state == Video.State.DONE, video.error
    assert (video.segments, video.segments_done) == (3, 3)
    assert members_named(video) >= {"tom-hanks", "halle-berry", "keanu-reeves"}
    # Tracks were joined at the seams (frame 25 and 50 are inside shots): one per face per shot.
    assert video.tracks.count() == 4
    work_dir = Path(video.original.storage.path(f"videos/{video.uuid.hex}/work"))
    assert work_dir.is_dir() and list(work_dir.iterdir()) == []  # segment results cleaned up


def test_process_video_command_writes_the_labelled_mp4_and_predictions(
    celebs, stage_clip, fan, tmp_path, capsys
):
    out, predictions = tmp_path / "out.mp4", tmp_path / "p.json"
    call_command(
        "process_video", str(stage_clip), "--group", "celebs", "--out", str(out),
        "--predictions", str(predictions), "--owner", "fan",
    )  # fmt: skip
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["tracks"] == 4
    assert media.probe(out).frames == 60
    data = json.loads(predictions.read_text())
    assert data["video"]["frames"] == 60
    assert {d["member"] for d in data["detections"]} >= {"tom-hanks", "keanu-reeves"}
    assert Video.objects.get().owner == fan


def test_a_video_with_no_audio_gives_a_labelled_video_with_no_audio(celebs, fan, tmp_path):
    path = tmp_path / "silent.mp4"
    subprocess.run(
        [media.ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=1",
         "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path)],
        check=True,
    )  # fmt: skip
    video = services.video_submit(
        source=path, name="silent.mp4", group=celebs, owner=fan, enqueue=False
    )
    from videos.processing import video_process

    video = video_process(video=video)
    assert video.state == Video.State.DONE
    assert video.tracks.count() == 0
    assert not media.probe(video.labelled.path).has_audio
