"""Processing an uploaded video through a real queue and worker, end to end."""

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command
from rq import SimpleWorker

from recognition.core import media
from videos import exports, services
from videos.models import Video

pytestmark = pytest.mark.django_db(transaction=True)


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
    assert not work_dir.exists()  # segment results cleaned up


def test_process_video_command_writes_the_labelled_mp4_and_predictions(
    celebs, stage_clip, fan, tmp_path, capsys
):
    out, predictions = tmp_path / "out.mp4", tmp_path / "p.json"
    call_command(
        "process_video", str(stage_clip), "--group", "celebs", "--out", str(out),
        "--predictions", str(predictions), "--owner", "fan",
    )  # fmt: skip
    printed = capsys.readouterr()
    result = json.loads(printed.out.strip().splitlines()[-1])
    assert result["tracks"] == 4
    # Progress is shown as it goes: percentages rising through the stages, ending at 100.
    lines = [line.split("% ", 1) for line in printed.err.strip().splitlines()]
    percents = [float(p) for p, _ in lines]
    assert percents == sorted(percents) and percents[-1] == 100.0 and len(percents) >= 3
    assert {"finding faces", "drawing the labelled video"} <= {stage for _, stage in lines}
    assert lines[-1] == ["100.0", "done"]
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


def test_a_curator_approving_a_correction_queues_a_retrain_that_adds_its_faces(
    celebs, stage_clip, fan, rq_queue, client, django_user_model
):
    from django.urls import reverse

    from gallery.models import GalleryImage
    from recognition.models import TrainingRun
    from videos import corrections
    from videos.models import Correction

    video = services.video_submit(source=stage_clip, name="stage.mp4", group=celebs, owner=fan)
    work()
    video.refresh_from_db()
    stranger = video.tracks.filter(member=None).first()
    miley = celebs.members.get(slug="miley-cyrus")
    correction = corrections.track_correct(track=stranger, user=fan, kind="member", member=miley)
    assert correction.review == Correction.Review.PENDING
    assert GalleryImage.objects.filter(source="correction").count() == 0

    boss = django_user_model.objects.create_superuser("boss", "b@example.org", "pw-boss-123")
    client.force_login(boss)
    response = client.post(
        reverse("admin:videos_correction_changelist"),
        {"action": "approve", "_selected_action": [correction.pk]},
        follow=True,
    )
    assert b"retraining run(s) queued" in response.content
    correction.refresh_from_db()
    assert correction.review == Correction.Review.APPROVED
    # Approving is quick: the faces are cut from the video by the training job.
    assert correction.samples_added is None
    assert GalleryImage.objects.filter(source="correction").count() == 0
    assert TrainingRun.objects.filter(state="queued", reason="approved corrections").count() == 1

    work("default")
    correction.refresh_from_db()
    added = GalleryImage.objects.filter(source="correction", member=miley)
    assert added.count() == correction.samples_added >= 1
    assert added.filter(status="approved").count() == added.count()
    run = TrainingRun.objects.get(reason="approved corrections")
    assert run.state == "done" and run.version.training_counts["miley-cyrus"] >= added.count()


def test_a_new_model_relabels_stored_tracks_except_corrected_ones_and_rerenders(
    celebs, stage_clip, fan, rq_queue
):
    from gallery.models import GalleryImage
    from recognition.services import training_request
    from videos import corrections
    from videos.models import Relabel

    video = services.video_submit(source=stage_clip, name="stage.mp4", group=celebs, owner=fan)
    work()
    video.refresh_from_db()
    halle = video.tracks.get(member__slug="halle-berry")
    tom = video.tracks.get(member__slug="tom-hanks")
    corrections.track_correct(track=tom, user=fan, kind="confirm")
    rendered_before = Path(video.labelled.path).stat().st_mtime_ns

    # The curators drop Halle from the gallery; the next model cannot name her.
    GalleryImage.objects.filter(member__slug="halle-berry").update(status="rejected")
    GalleryImage.objects.filter(member__slug="tom-hanks").update(status="rejected")
    training_request(group=celebs, reason="test")
    work("default")  # trains, activates, relabels
    work("video")  # re-renders

    video.refresh_from_db()
    halle.refresh_from_db()
    tom.refresh_from_db()
    assert video.model_version.number == 2
    assert halle.member is None  # relabelled by the new model
    assert tom.member.slug == "tom-hanks"  # a person's confirmation wins
    relabel = Relabel.objects.get(video=video)
    assert relabel.version == video.model_version and relabel.tracks_changed == 1
    assert "halle-berry" not in members_named(video)
    assert Path(video.labelled.path).stat().st_mtime_ns > rendered_before


def test_switching_a_groups_face_model_reencodes_trains_and_analyses_its_videos_again(
    celebs, stage_clip, fan, rq_queue
):
    from gallery.models import GalleryImage
    from recognition import selectors
    from recognition.core import faces
    from recognition.services import group_switch_embedding

    arcface, dlib_model = faces.embedder("arcface").model_id, faces.embedder("dlib").model_id
    video = services.video_submit(source=stage_clip, name="stage.mp4", group=celebs, owner=fan)
    work()
    video.refresh_from_db()
    assert set(video.tracks.values_list("embedding_model", flat=True)) == {arcface}
    assert video.tracks.first().sample_vectors().shape[1] == 512

    run = group_switch_embedding(group=celebs, name="dlib")
    work("default")  # re-encodes, trains, activates; the relabel finds other embeddings
    run.refresh_from_db()
    assert run.state == "done", run.error
    version = selectors.active_version(celebs)
    assert version == run.version and version.embedding_model == dlib_model
    approved = GalleryImage.objects.filter(member__group=celebs, status="approved")
    assert set(approved.values_list("embedding_model", flat=True)) == {dlib_model}
    video.refresh_from_db()
    assert video.state == Video.State.QUEUED and "analysed again" in video.stage

    work()
    video.refresh_from_db()
    assert video.state == Video.State.DONE, video.error
    assert video.model_version == version
    assert set(video.tracks.values_list("embedding_model", flat=True)) == {dlib_model}
    assert video.tracks.first().sample_vectors().shape[1] == 128
    assert members_named(video) >= {"tom-hanks", "halle-berry", "keanu-reeves"}


def test_embeddings_of_two_models_never_meet(celebs, tmp_path):
    import pickle

    from django.core.management.base import CommandError

    from recognition.core import classifier, faces
    from recognition.selectors import training_set
    from recognition.services import model_version_load

    version = celebs.versions.get(is_active=True)
    clf = model_version_load(version)
    with pytest.raises(classifier.ClassifierError, match=r"shape \(N, 512\)"):
        clf.predict(np.zeros((1, 128)))  # a dlib embedding against an ArcFace classifier
    X, labels = training_set(celebs, faces.embedder("dlib").model_id)
    assert len(labels) == 0  # nothing of the other model is trained on
    seed = tmp_path / "encode.pickle"
    seed.write_bytes(pickle.dumps({"encodings": [np.zeros(128)], "names": ["someone"]}))
    with pytest.raises(CommandError, match="cannot mix"):
        call_command("import_seed_pickle", str(seed), "--group", "celebs")
