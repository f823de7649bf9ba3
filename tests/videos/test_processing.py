"""Processing an uploaded video through a real queue and worker, end to end."""

import json
import subprocess

import numpy as np
import pytest
from django.core.management import call_command

from base.storage import local_copy
from core.classifier.model import ClassifierError
from core.media.probe import ffmpeg_exe, probe
from tests import footage
from tests.conftest import work
from tests.core.stage import frame_hashes
from videos import exports, relabel, rendering, services
from videos.models import Video

pytestmark = pytest.mark.django_db(transaction=True)


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
    with local_copy(video.labelled) as labelled, local_copy(video.original) as original:
        out, source = probe(labelled), probe(original)
    assert out.frames == source.frames == 60
    assert out.has_audio and out.audio_codec == "aac"
    assert abs(out.duration - source.duration) <= 1 / source.fps + 1e-6
    assert video.tracks.exclude(thumbnail="").count() == video.tracks.count()


def test_a_long_video_is_analysed_in_segments_on_any_worker(
    celebs, stage_clip, fan, rq_queue, settings
):
    settings.VIDEO_SEGMENT_SECONDS = 1  # 60 frames at 25 fps: three segments
    settings.VIDEO_SEGMENTS_AS_JOBS = True
    settings.VIDEO_RENDER_PART_SECONDS = 1
    video = services.video_submit(source=stage_clip, name="stage.mp4", group=celebs, owner=fan)
    ran = work()
    video.refresh_from_db()

    assert video.state == Video.State.DONE, video.error
    assert video.stage == "done" and video.progress == 100
    assert members_named(video) >= {"tom-hanks", "halle-berry", "keanu-reeves"}
    # Tracks were joined at the seams (frame 25 and 50 are inside shots): one per face per shot.
    assert video.tracks.count() == 4
    folders, _ = video.original.storage.listdir(video.storage_folder())
    assert "work" not in folders  # segment results and render parts cleaned up
    # 60 frames, at least 1 s a part (settings.VIDEO_RENDER_PART_SECONDS): two render parts.
    assert (video.segments, video.segments_done) == (2, 2)
    base = f"videos-video-{video.pk}-1"
    assert [job for job in ran if job.startswith(f"{base}-render")] == [
        f"{base}-render0", f"{base}-render1"
    ]  # fmt: skip
    assert ran[-1] == f"{base}-join"
    with local_copy(video.labelled) as labelled, local_copy(video.original) as original:
        parted, source = probe(labelled), probe(original)
        assert (parted.frames, parted.has_audio) == (60, True)
        assert parted.duration == pytest.approx(source.duration, abs=1e-3)
        drawn = _grey_frames(labelled)
    # Frame for frame what one pass draws from the stored tracks: every name tag in its place.
    with local_copy(video.original) as original:
        rendering.video_labelled_render(video=video, source=original, info=video.info())
    video.refresh_from_db()
    with local_copy(video.labelled) as labelled:
        one_pass = _grey_frames(labelled)
    assert len(drawn) == len(one_pass) == 60
    assert max(_worst_block(a, b) for a, b in zip(drawn, one_pass, strict=True)) < 12
    assert _worst_block(drawn[40], one_pass[0]) > 12  # the check sees a frame out of place


@pytest.mark.parametrize("part_seconds", [1, 100], ids=["render-parts", "one-render"])
def test_segment_jobs_keep_the_players_clock_and_make_the_browser_copy(
    footage_dir, celebs, fan, rq_queue, settings, part_seconds
):
    """A late HEVC file through segment jobs, drawn in parts or in one job: its times, its
    labelled MP4 and the copy browsers play are all on the original's clock."""
    settings.VIDEO_SEGMENT_SECONDS = 1
    settings.VIDEO_SEGMENTS_AS_JOBS = True
    settings.VIDEO_RENDER_PART_SECONDS = part_seconds
    source = footage.make(footage_dir, "late_hevc.mkv")
    times = footage.frame_times(source)
    video = services.video_submit(source=source, name="late.mkv", group=celebs, owner=fan)
    ran = work()
    video.refresh_from_db()

    assert video.state == Video.State.DONE, video.error
    assert any(job.endswith("-join") for job in ran) is (part_seconds == 1)
    detections = exports.predictions(video)["detections"]
    assert detections and all(d["time"] == pytest.approx(times[d["frame"]]) for d in detections)
    for field in (video.labelled, video.preview):
        with local_copy(field) as made:
            assert footage.frame_times(made) == pytest.approx(times, abs=1e-3)


def _grey_frames(path):
    import av

    with av.open(str(path)) as container:
        return [f.to_ndarray(format="gray").astype(np.int16) for f in container.decode(video=0)]


def _worst_block(a, b, side=16):
    """The largest mean difference of any side x side block of two frames: a name tag drawn in
    one and not the other, or somewhere else, is a block of solid colour against the picture."""
    h, w = (a.shape[0] // side) * side, (a.shape[1] // side) * side
    blocks = np.abs(a[:h, :w] - b[:h, :w]).reshape(h // side, side, w // side, side)
    return float(blocks.mean(axis=(1, 3)).max())


def test_a_long_video_with_one_worker_is_one_job_that_renders_behind_its_analysis(
    celebs, stage_clip, fan, rq_queue, settings
):
    """Segment jobs would queue up behind each other on one worker, and the render could only
    start after the last; one job analyses on every core with the render behind it."""
    settings.VIDEO_SEGMENT_SECONDS = 1
    assert settings.VIDEO_SEGMENTS_AS_JOBS == "auto"
    video = services.video_submit(source=stage_clip, name="stage.mp4", group=celebs, owner=fan)
    work()
    video.refresh_from_db()

    assert video.state == Video.State.DONE, video.error
    assert video.segments == 0 and video.progress == 100
    assert members_named(video) >= {"tom-hanks", "halle-berry", "keanu-reeves"}
    assert video.tracks.count() == 4
    # What it drew behind the analysis is what a re-render draws from the stored tracks (the
    # stranger's grey "unknown" tag included), frame by frame.
    with local_copy(video.labelled) as labelled:
        assert probe(labelled).frames == 60
        drawn = frame_hashes(labelled)
    with local_copy(video.original) as original:
        rendering.video_labelled_render(video=video, source=original, info=video.info())
    video.refresh_from_db()
    with local_copy(video.labelled) as labelled:
        assert frame_hashes(labelled) == drawn
    with local_copy(video.original) as original:
        assert frame_hashes(original) != drawn


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
    assert probe(out).frames == 60
    data = json.loads(predictions.read_text())
    assert data["video"]["frames"] == 60
    assert {d["member"] for d in data["detections"]} >= {"tom-hanks", "keanu-reeves"}
    assert Video.objects.get().owner == fan


def test_a_video_with_no_audio_gives_a_labelled_video_with_no_audio(celebs, fan, tmp_path):
    path = tmp_path / "silent.mp4"
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=1",
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
    with local_copy(video.labelled) as labelled:
        assert not probe(labelled).has_audio


def test_a_curator_approving_a_correction_queues_a_retrain_that_adds_its_faces(
    celebs, stage_clip, fan, rq_queue, client, django_user_model
):
    from django.urls import reverse

    from gallery.models import GalleryImage
    from recognition.models import TrainingRun
    from videos import corrections
    from videos.models import Correction, HarvestRun

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
    assert b"their faces go to the gallery, then the model is trained again" in response.content
    correction.refresh_from_db()
    assert correction.review == Correction.Review.APPROVED
    # Approving is quick: a job cuts the faces from the video, then asks for training.
    assert correction.samples_added is None
    assert GalleryImage.objects.filter(source="correction").count() == 0
    assert HarvestRun.objects.get(state="queued").train
    assert not TrainingRun.objects.filter(reason="approved corrections").exists()

    work("default")
    correction.refresh_from_db()
    added = GalleryImage.objects.filter(source="correction", member=miley)
    assert added.count() == correction.samples_added >= 1
    # Faces the flags call duplicates (the same pasted face in every frame) wait for a curator.
    clean = added.filter(duplicate_of__isnull=True)
    assert clean.filter(status="approved").count() == clean.count() >= 1
    assert added.filter(duplicate_of__isnull=False).exists()
    assert not added.filter(duplicate_of__isnull=False, status="approved").exists()
    run = TrainingRun.objects.get(reason="approved corrections")
    assert run.state == "done" and run.version.training_counts["miley-cyrus"] >= added.count()


def test_a_curators_own_correction_feeds_the_gallery_and_undoing_it_takes_the_faces_back(
    celebs, stage_clip, fan, rq_queue, django_user_model
):
    from gallery.models import GalleryImage
    from recognition.models import TrainingRun
    from videos import corrections
    from videos.models import Correction, HarvestRun

    video = services.video_submit(source=stage_clip, name="stage.mp4", group=celebs, owner=fan)
    work()
    boss = django_user_model.objects.create_superuser("boss", "b@example.org", "pw-boss-123")
    stranger = video.tracks.filter(member=None).first()
    miley = celebs.members.get(slug="miley-cyrus")
    correction = corrections.track_correct(track=stranger, user=boss, kind="member", member=miley)
    assert correction.review == Correction.Review.APPROVED  # a curator's own
    assert not HarvestRun.objects.get(state="queued").train  # her faces in; no retrain asked

    work("default")
    correction.refresh_from_db()
    added = GalleryImage.objects.filter(pk__in=correction.sample_images, member=miley)
    assert added.count() == correction.samples_added >= 1
    assert added.filter(status="approved").exists()
    trainings = TrainingRun.objects.count()

    corrections.correction_undo(correction=correction, user=boss)
    correction.refresh_from_db()
    assert correction.review == Correction.Review.UNDONE
    assert set(added.values_list("status", flat=True)) == {"rejected"}
    assert TrainingRun.objects.count() == trainings


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
    rendered_before = video.labelled.storage.get_modified_time(video.labelled.name)

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
    assert video.labelled.storage.get_modified_time(video.labelled.name) > rendered_before


def test_switching_a_groups_face_model_reencodes_trains_and_analyses_its_videos_again(
    celebs, stage_clip, fan, rq_queue
):
    from core.faces import embed
    from gallery.models import GalleryImage
    from recognition import selectors
    from recognition.services import group_switch_embedding

    arcface, dlib_model = embed.embedder("arcface").model_id, embed.embedder("dlib").model_id
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

    from core.faces import embed
    from recognition.selectors import training_set
    from recognition.services import model_version_load

    version = celebs.versions.get(is_active=True)
    clf = model_version_load(version)
    with pytest.raises(ClassifierError, match=r"shape \(N, 512\)"):
        clf.predict(np.zeros((1, 128)))  # a dlib embedding against an ArcFace classifier
    X, labels = training_set(celebs, embed.embedder("dlib").model_id)
    assert len(labels) == 0  # nothing of the other model is trained on
    seed = tmp_path / "encode.pickle"
    seed.write_bytes(pickle.dumps({"encodings": [np.zeros(128)], "names": ["someone"]}))
    with pytest.raises(CommandError, match="cannot mix"):
        call_command("import_seed_pickle", str(seed), "--group", "celebs")


def test_a_video_is_probed_once_at_upload_and_every_job_reads_the_stored_facts(
    celebs, stage_clip, fan, rq_queue, settings, monkeypatch
):
    import core.media.probe as probing

    calls = []
    real = probing.probe
    monkeypatch.setattr(probing, "probe", lambda path: calls.append(path) or real(path))
    for module in ("videos.services", "videos.facts"):
        monkeypatch.setattr(f"{module}.probe", probing.probe)
    settings.VIDEO_SEGMENT_SECONDS = 1  # three segment jobs and a finishing job
    video = services.video_submit(source=stage_clip, name="stage.mp4", group=celebs, owner=fan)
    assert len(calls) == 1 and video.info().frames == 60
    work()
    video.refresh_from_db()
    assert video.state == Video.State.DONE, video.error
    rendering.video_render_request(video=video, reason="test")
    work("default")
    assert len(calls) == 1  # segments, the finish and the re-render read the stored facts
    assert video.info() == real(stage_clip)


def test_a_video_stored_before_facts_were_kept_is_probed_once_then_never_again(
    celebs, stage_clip, fan, rq_queue
):
    video = services.video_submit(source=stage_clip, name="stage.mp4", group=celebs, owner=fan)
    Video.objects.filter(pk=video.pk).update(probe_facts={})
    work()
    video.refresh_from_db()
    assert video.state == Video.State.DONE, video.error
    assert video.info() == probe(stage_clip)


def test_a_not_this_member_negative_survives_a_retrain_and_is_counted_by_the_new_version(
    celebs, stage_clip, fan, rq_queue
):
    from recognition.services import model_version_load, training_request
    from videos import corrections

    video = services.video_submit(source=stage_clip, name="stage.mp4", group=celebs, owner=fan)
    work()
    keanu = video.tracks.get(member__slug="keanu-reeves")
    correction = corrections.track_correct(track=keanu, user=fan, kind="not_member")
    keanu.refresh_from_db()
    assert (keanu.member, keanu.corrected) == (None, False)  # left open for the model
    assert list(keanu.not_members.values_list("slug", flat=True)) == ["keanu-reeves"]
    assert correction.describe() == "not Keanu Reeves"

    training_request(group=celebs, reason="test")
    work("default")  # trains, activates, relabels
    video.refresh_from_db()
    keanu.refresh_from_db()
    version = video.model_version
    assert version.number == 2
    # Named freely, v2 would call the track Keanu again (his gallery is unchanged) ...
    counts = relabel.negatives_violated(group=celebs, classifier=model_version_load(version))
    assert counts == {"negatives": 1, "negatives_violated": 1}
    # ... but the relabel names it the next best, or unknown.
    assert keanu.member is None or keanu.member.slug != "keanu-reeves"
    assert "keanu-reeves" not in members_named(video)
    # A relabel of the version it replaced, run late (queued again after Redis lost it), changes
    # nothing: it would undo v2's names.
    from recognition.models import ModelVersion
    from videos.models import RelabelRun

    late = RelabelRun.objects.create(version=ModelVersion.objects.get(group=celebs, number=1))
    assert relabel.group_relabel(run=late, attempt=late.attempt)["videos"] == 0
    video.refresh_from_db()
    assert video.model_version == version


def test_a_render_part_that_fails_fails_the_video_with_its_reason(
    celebs, stage_clip, fan, rq_queue, settings, monkeypatch
):
    from datetime import timedelta

    from django.utils import timezone

    from base import jobs
    from core.media.probe import MediaError

    settings.VIDEO_SEGMENT_SECONDS = settings.VIDEO_RENDER_PART_SECONDS = 1
    settings.VIDEO_SEGMENTS_AS_JOBS = True

    def out_of_disk(*args, **kwargs):
        raise MediaError("stage.mp4: rendering failed: No space left on device")

    monkeypatch.setattr(rendering, "render_part", out_of_disk)
    video = services.video_submit(source=stage_clip, name="stage.mp4", group=celebs, owner=fan)
    ran = work()
    video.refresh_from_db()
    assert video.state == Video.State.RUNNING  # the join waits on the parts
    assert ran[-1].endswith("-render1") and not any(job.endswith("-join") for job in ran)
    Video.objects.filter(pk=video.pk).update(
        enqueued=timezone.now() - jobs.SEND_GRACE - timedelta(seconds=1)
    )
    assert jobs.jobs_sweep()["failed"] == 1
    video.refresh_from_db()
    assert video.state == Video.State.FAILED
    assert "No space left on device" in video.error and video.can_retry()


def test_process_video_threshold_overrides_the_groups_naming_for_one_run(
    celebs, stage_clip, tmp_path, capsys
):
    def named(*extra):
        call_command(
            "process_video", str(stage_clip), "--group", "celebs",
            "--out", str(tmp_path / "out.mp4"), *extra,
        )  # fmt: skip
        return json.loads(capsys.readouterr().out.strip().splitlines()[-1])["named_tracks"]

    assert named() >= 3
    # Only faces whose top member has a probability of 1 or more: none.
    assert named("--threshold", "1") == 0
    assert named("--threshold", "0.5") >= 3
    celebs.refresh_from_db()
    assert celebs.operating_point == 0  # the group's own point is untouched


def test_process_video_refuses_a_threshold_that_is_not_a_probability(celebs, stage_clip, tmp_path):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="between 0 and 1"):
        call_command(
            "process_video", str(stage_clip), "--group", "celebs",
            "--out", str(tmp_path / "out.mp4"), "--threshold", "70",
        )  # fmt: skip
    assert not Video.objects.exists()
