"""The curators' review of corrections, and approved corrections' faces as gallery samples.

A correction that says who a track is teaches the model once it is approved: by a curator in
the queue, or at once when a curator made it. Approving queues a harvest job (HarvestRun) that
cuts the track's best faces from the video into the gallery and then, for approvals, asks for
a retrain. So the flow runs one way: videos feeds the gallery and asks recognition to train;
training never calls back up.
"""

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from base.db import row_lock
from base.jobs import job_enqueue, running
from base.storage import local_copy
from core.images import encode_png, face_crop
from core.media.decode import read_frames
from gallery import services as gallery_services
from gallery.models import GalleryImage, Group
from recognition.services import training_request
from videos.facts import video_info
from videos.models import Correction, HarvestRun, Track

# Face crops taken from an approved correction's track; a few varied ones are worth more than many.
CROPS_PER_CORRECTION = 3

# Corrections that say who a track is, so its faces can teach the model.
SAMPLE_KINDS = (Correction.Kind.MEMBER, Correction.Kind.CONFIRM)


def corrections_approve(*, corrections, by) -> dict[str, int]:
    """Approve corrections; a job per group takes their tracks' faces into the gallery and
    then retrains (decoding video frames is no work for a web request)."""
    approved = 0
    groups = set()
    for correction in corrections:
        if correction.review != Correction.Review.PENDING or correction.undone:
            continue
        correction.review = Correction.Review.APPROVED
        correction.reviewed_by = by
        correction.reviewed = timezone.now()
        correction.save(update_fields=["review", "reviewed_by", "reviewed"])
        approved += 1
        if correction.kind in SAMPLE_KINDS:
            groups.add(correction.video.group)
    for group in groups:
        group_harvest_request(group=group, train=True, reason="approved corrections", by=by)
    return {"approved": approved, "retrains": len(groups)}


def group_harvest_request(*, group: Group, train: bool, reason: str = "", by=None) -> HarvestRun:
    """Queue taking the group's approved corrections' faces into its gallery, and with `train`
    a retrain after; a request made while one waits joins it."""
    with transaction.atomic():
        row_lock(Group, group.pk)
        waiting = HarvestRun.objects.filter(group=group, state=HarvestRun.State.QUEUED).first()
        if waiting:
            joined = {"requests": F("requests") + 1}
            if train and not waiting.train:
                joined |= {"train": True, "reason": reason[:200], "requested_by": by}
            HarvestRun.objects.filter(pk=waiting.pk).update(**joined)
            return waiting
        run = HarvestRun.objects.create(
            group=group, train=train, reason=reason[:200], requested_by=by
        )
        job_enqueue(run)
    return run


def group_harvest(*, run: HarvestRun, attempt: int) -> int:
    """The job: the faces in, then the retrain if asked for. Returns the faces added."""
    with running(run, attempt=attempt) as progress:
        progress(0, "cutting the corrected faces from their videos", force=True)
        added = corrections_harvest(group=run.group)
        progress.update(faces_added=added)
        run.refresh_from_db(fields=["train", "reason", "requested_by"])
        if run.train:
            progress(99, "asking for a retrain", force=True)
            reason = run.reason or "approved corrections"
            training_request(group=run.group, reason=reason, requested_by=run.requested_by)
    return added


def corrections_reject(*, corrections, by) -> int:
    count = 0
    for correction in corrections:
        if correction.review == Correction.Review.PENDING:
            correction.review = Correction.Review.REJECTED
            correction.reviewed_by = by
            correction.reviewed = timezone.now()
            correction.save(update_fields=["review", "reviewed_by", "reviewed"])
            count += 1
    return count


def corrections_harvest(*, group) -> int:
    """Add the faces of approved corrections not yet taken into the group's gallery; returns
    how many faces were added. They are approved unless the flags (refreshed once, at the end)
    call them duplicates."""
    waiting = Correction.objects.filter(
        video__group=group,
        review=Correction.Review.APPROVED,
        undone__isnull=True,
        samples_added__isnull=True,
    ).select_related("track__member", "video")
    added: list[GalleryImage] = []
    with gallery_services.flags_refreshed_once():
        for correction in waiting:
            images = correction_add_samples(correction=correction)
            Correction.objects.filter(pk=correction.pk).update(
                samples_added=len(images), sample_images=[image.pk for image in images]
            )
            added += images
    gallery_services.images_approve_unless_duplicate(images=added)
    return len(added)


def correction_add_samples(*, correction: Correction) -> list[GalleryImage]:
    """Crop the corrected track's best faces from the original video into the gallery, as
    pending images (corrections_harvest approves those no flag holds back)."""
    track = correction.track
    member = track.member
    if correction.kind not in SAMPLE_KINDS or member is None:
        return []
    wanted = sorted(crop_boxes(track), key=lambda s: -(s[3] - s[1]) * (s[4] - s[2]))
    wanted = sorted(wanted[:CROPS_PER_CORRECTION])
    if not wanted:
        return []
    video = track.video
    by_frame = {s[0]: s[1:] for s in wanted}
    added = []
    with local_copy(video.original) as source:
        info = video_info(video, source)
        frames = read_frames(source, info, start=wanted[0][0], end=wanted[-1][0] + 1)
        for index, frame in frames:
            if index not in by_frame:
                continue
            crop = face_crop(frame, by_frame[index])
            result = gallery_services.image_ingest(
                member=member,
                data=encode_png(crop),
                name=f"{video}-track{track.number}-frame{index}.png",
                source=GalleryImage.Source.CORRECTION,
            )
            if result.outcome == "added":
                added.append(result.image)
    return added


def crop_boxes(track: Track) -> list[list[int]]:
    """The track's sample boxes, [frame, l, t, r, b], as people left them: its box now in each
    sample's frame (the analysis took the samples from those very boxes), so a box fixed since
    is cropped as fixed, and a frame whose box was removed (the tracker had followed someone
    else there) gives no face."""
    frames = [frame for frame, *_ in track.sample_boxes]
    now = {d.frame: d.box() for d in track.detections.filter(frame__in=frames)}
    return [[frame, *now[frame]] for frame in frames if frame in now]
