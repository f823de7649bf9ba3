"""The curators' review of corrections, and approved corrections' faces as gallery samples."""

from django.utils import timezone

from base.storage import local_copy
from core.images import encode_png, face_crop
from core.media.decode import read_frames
from gallery import services as gallery_services
from gallery.models import GalleryImage
from videos.facts import video_info
from videos.models import Correction, Track

# Face crops taken from an approved correction's track; a few varied ones are worth more than many.
CROPS_PER_CORRECTION = 3

# Corrections that say who a track is, so its faces can teach the model.
SAMPLE_KINDS = (Correction.Kind.MEMBER, Correction.Kind.CONFIRM)


def corrections_approve(*, corrections, by) -> dict[str, int]:
    """Approve corrections and queue a retrain; the training job takes their tracks' faces
    into the gallery first (decoding video frames is no work for a web request)."""
    from recognition.services import training_request

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
        training_request(group=group, reason="approved corrections", requested_by=by)
    return {"approved": approved, "retrains": len(groups)}


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
    """Add the faces of approved corrections not yet taken into the group's gallery (run by the
    training job before it encodes); returns how many faces were added. They are approved
    unless the flags (refreshed once, at the end) call them duplicates."""
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
            Correction.objects.filter(pk=correction.pk).update(samples_added=len(images))
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
