"""Naming stored tracks again with a new model version, from their stored embeddings (no
video is decoded); a person's correction and their "not this member" always win."""

from collections import defaultdict

import numpy as np

from base.jobs import job_enqueue, running
from core.tracking.naming import Fixed, name_samples
from recognition.services import naming_classifier
from videos.models import Detection, Relabel, RelabelRun, Track, Video
from videos.rendering import video_render_request


def group_relabel_request(*, version) -> RelabelRun:
    """Queue naming the group's stored tracks again with `version` (once this commits)."""
    run = RelabelRun.objects.create(version=version)
    job_enqueue(run)
    return run


def group_relabel(*, run: RelabelRun, attempt: int) -> dict[str, int]:
    """Name every uncorrected stored track of the group again with the run's version, from
    stored embeddings (no video is decoded), and queue re-renders of the videos that changed."""

    version = run.version
    with running(run, attempt=attempt) as progress:
        if not type(version).objects.filter(pk=version.pk, is_active=True).exists():
            # Another version became active since (a run queued again late, say): naming
            # with this one would undo that version's relabel.
            progress(100, f"nothing to do: {version} is no longer active", force=True)
            return {"videos": 0, "tracks": 0, "reanalysed": 0}
        clf = naming_classifier(version)
        members = {m.slug: m for m in version.group.members.all()}
        changed_videos = changed_tracks = 0
        videos = Video.objects.filter(group=version.group, state=Video.State.DONE)
        total = max(videos.count(), 1)
        reanalysed = 0
        for done, video in enumerate(videos.iterator()):
            progress(100 * done / total, f"naming the tracks of {done + 1} of {total} videos")
            if video.tracks.exclude(embedding_model=version.embedding_model).exists():
                # Embedded by another face model: only a new analysis can name it.
                job_enqueue(video, reason=f"analysed again with {version}'s face model")
                reanalysed += 1
                continue
            updates = _relabel_video(video, clf, members)
            Video.objects.filter(pk=video.pk).update(model_version=version)
            if updates:
                changed_videos += 1
                changed_tracks += updates
                Relabel.objects.create(version=version, video=video, tracks_changed=updates)
                video_render_request(video=video, reason=f"relabelled by {version}")
        progress.update(videos_changed=changed_videos, tracks_changed=changed_tracks)
    return {"videos": changed_videos, "tracks": changed_tracks, "reanalysed": reanalysed}


def _relabel_video(video: Video, clf, members: dict) -> int:
    """Name the video's uncorrected tracks again from their stored samples; a correction
    wins every clash with the model, and a track is never named a member a person said it
    is not. Returns how many tracks changed member."""
    rows = list(
        video.tracks.filter(is_face=True, merged_into__isnull=True)
        .select_related("member")
        .prefetch_related("not_members")
    )
    frames = defaultdict(list)
    for number, frame in Detection.objects.filter(video=video).values_list(
        "track__number", "frame"
    ):
        frames[number].append(frame)
    frames = {number: np.unique(found) for number, found in frames.items()}
    no_frames = np.empty(0, np.int64)
    fixed = [
        Fixed(r.member.slug, frames.get(r.number, no_frames))
        for r in rows
        if r.corrected and r.member_id
    ]
    open_rows = [r for r in rows if not r.corrected]
    names = name_samples(
        [r.sample_vectors() for r in open_rows],
        [frames.get(r.number, no_frames) for r in open_rows],
        clf,
        fixed=fixed,
        excluded=[{m.slug for m in r.not_members.all()} for r in open_rows],
        kin=[r.kin for r in open_rows],
    )
    updates = 0
    for row, name in zip(open_rows, names, strict=True):
        member, candidate = members.get(name.label), members.get(name.candidate)
        if (row.member_id, row.candidate_id) != (
            member.pk if member else None,
            candidate.pk if candidate else None,
        ) or abs(row.confidence - name.confidence) > 1e-6:
            if row.member_id != (member.pk if member else None):
                updates += 1
            row.member, row.candidate, row.confidence = member, candidate, name.confidence
            row.save(update_fields=["member", "candidate", "confidence"])
    return updates


def negatives_violated(*, group, classifier) -> dict[str, int]:
    """How many "not this member" corrections of the group's tracks `classifier` would break
    if it named them freely (relabels never break them: they name the next best)."""
    tracks = (
        Track.objects.filter(video__group=group, not_members__isnull=False, is_face=True)
        .distinct()
        .prefetch_related("not_members")
    )
    negatives = violated = 0
    for track in tracks.iterator(chunk_size=200):
        banned = {m.slug for m in track.not_members.all()}
        negatives += len(banned)
        vectors = track.sample_vectors()
        if len(vectors) and vectors.shape[1] == classifier.dimensions:
            violated += classifier.predict_track(vectors).label in banned
    return {"negatives": negatives, "negatives_violated": violated}
