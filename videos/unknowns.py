"""The curators' inbox of unknown faces: a group's unnamed tracks from every video, gathered
by embedding into clusters (one stranger, many tracks), to be named as a member, made a new
member, or dismissed as nobody of the group."""

from dataclasses import dataclass, field

import numpy as np
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from core.faces import embed
from gallery import services as gallery_services
from gallery.models import Member
from recognition import selectors as recognition_selectors
from recognition.services import model_version_load, training_request
from videos.corrections import CorrectionError, correction_apply
from videos.models import Correction, Track, Video

# Tracks gathered at most (the newest first): the inbox is a worklist, not an archive.
MAX_TRACKS = 3000
# Two tracks whose mean faces are within this share of the face model's same-person distance
# are one person. On a 90 s 1080p stage video (33 unknown tracks of two strangers and two
# missed members, ArcFace) 0.95 gave pure clusters, one per person; 0.75 split them in 16.
CLUSTER_SHARE = 0.95


@dataclass
class Cluster:
    tracks: list[Track] = field(default_factory=list)
    centre: np.ndarray | None = None
    nearest: Member | None = None
    nearest_distance: float | None = None

    @property
    def videos(self) -> int:
        return len({t.video_id for t in self.tracks})

    @property
    def key(self) -> str:
        """Names the cluster in a form: its track ids (the page may be stale by then)."""
        return ",".join(str(t.pk) for t in self.tracks)


def unknown_tracks(group):
    """The group's unnamed, undecided face tracks in processed videos, of its face model."""
    model_id = embed.embedder(group.embedding_model).model_id
    return (
        Track.objects.filter(
            video__group=group,
            video__state=Video.State.DONE,
            member__isnull=True,
            is_face=True,
            corrected=False,
            merged_into__isnull=True,
            embedding_model=model_id,
        )
        .select_related("video", "candidate")
        .order_by("-video__created", "number")[:MAX_TRACKS]
    )


def unknown_clusters(group) -> list[Cluster]:
    """Unknown tracks gathered by their mean faces, biggest cluster first, each with the
    member it is nearest to (by the active model's gallery)."""
    tracks = [t for t in unknown_tracks(group) if len(bytes(t.embedding))]
    if not tracks:
        return []
    bound = CLUSTER_SHARE * embed.embedder(group.embedding_model).same_person_distance
    clusters: list[Cluster] = []
    # Longest tracks first: their means are the steadiest seeds.
    for track in sorted(tracks, key=lambda t: -(t.last_frame - t.first_frame)):
        vector = _unit(np.frombuffer(bytes(track.embedding), dtype=np.float32))
        if clusters:
            centres = np.stack([c.centre for c in clusters])
            distances = np.linalg.norm(centres - vector, axis=1)
            best = int(distances.argmin())
            if distances[best] <= bound:
                cluster = clusters[best]
                cluster.tracks.append(track)
                n = len(cluster.tracks)
                cluster.centre = _unit(cluster.centre * (n - 1) / n + vector / n)
                continue
        clusters.append(Cluster(tracks=[track], centre=vector))
    _nearest_members(group, clusters)
    return sorted(clusters, key=lambda c: (-len(c.tracks), -c.videos))


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / max(float(np.linalg.norm(vector)), 1e-9)


def _nearest_members(group, clusters: list[Cluster]) -> None:
    version = recognition_selectors.active_version(group)
    if version is None:
        return
    classifier = model_version_load(version)
    members = {m.slug: m for m in group.members.all()}
    for cluster in clusters:
        samples = np.concatenate([t.sample_vectors() for t in cluster.tracks[:20]])
        if not len(samples) or samples.shape[1] != classifier.dimensions:
            continue
        prediction = classifier.predict_track(samples)
        cluster.nearest = members.get(prediction.candidate)
        cluster.nearest_distance = prediction.distance


def cluster_tracks(group, key: str) -> list[Track]:
    """The tracks a form's cluster key names that are still unknown and undecided."""
    ids = [int(part) for part in key.split(",") if part.strip().isdigit()][:MAX_TRACKS]
    return list(_open(group).filter(pk__in=ids).select_related("video"))


def _open(group):
    return Track.objects.filter(
        video__group=group, member__isnull=True, corrected=False, merged_into__isnull=True
    )


@transaction.atomic
def cluster_name(*, group, tracks: list[Track], member: Member, by) -> int:
    """Name every track of a cluster `member`, as the curator's own (approved) corrections, and
    queue the retrain that takes their faces into the gallery and relabels the videos."""
    if member.group_id != group.pk:
        raise CorrectionError(f"{member} is not in {group}")
    named = 0
    for track in tracks:
        outcome = correction_apply(track=track, user=by, action="member", member=member)
        named += outcome.correction is not None
    if named:
        training_request(group=group, reason=f"unknown faces named {member}", requested_by=by)
    return named


def cluster_new_member(*, group, tracks: list[Track], name: str, by) -> tuple[Member, int]:
    """Start a new member from a cluster: her faces join the gallery (flagged as usual) with
    the retrain the naming queues."""
    name = " ".join(name.split())[:100]
    slug = slugify(name)
    if not slug:
        raise CorrectionError("give the new member a name")
    if group.members.filter(slug=slug).exists():
        raise CorrectionError(f"{group} has a member called {name} already: name it as her")
    member = gallery_services.member_get_or_create(group=group, slug=slug, name=name)
    return member, cluster_name(group=group, tracks=tracks, member=member, by=by)


@transaction.atomic
def cluster_dismiss(*, tracks: list[Track], by) -> int:
    """Settle a cluster as nobody of the group: each track stays unknown for good (relabels
    leave it alone) and leaves the inbox. Recorded as the curator's corrections."""
    now = timezone.now()
    for track in tracks:
        Correction.objects.create(
            video=track.video,
            track=track,
            user=by,
            kind=Correction.Kind.UNKNOWN,
            before_member=None,
            before_corrected=False,
            before_is_face=True,
            review=Correction.Review.APPROVED,
            reviewed_by=by,
            reviewed=now,
        )
    Track.objects.filter(pk__in=[t.pk for t in tracks]).update(corrected=True)
    return len(tracks)
