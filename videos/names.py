"""A video's names, stored as the analysis makes them final: each batch of final, named
tracks goes into the database at once with its detections, and the row says how far the
names reach on the player's clock, so a fan watches them while the rest is analysed."""

import numpy as np
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction

from base.jobs import job_fence
from core.images import encode_jpeg, shrunk
from core.media.probe import VideoInfo
from core.tracking.tracks import Analysis
from videos.models import Detection, Track, Video

# Rows written in one go while storing a long video's detections.
DETECTION_BATCH = 5000


class NamesPublisher:
    """One attempt's tracks of a video, stored batch by batch as they become final.

    Every write is fenced by the attempt, and locks the row until it commits, so a video
    deleted or queued again meanwhile gets no track of this run."""

    def __init__(self, video: Video, attempt: int | None, version, info: VideoInfo) -> None:
        self.video, self.attempt, self.version, self.info = video, attempt, version, info
        self.clock = info.clock()
        self.count = 0

    def start(self) -> None:
        """The tracks of any earlier attempt out: a retried job starts clean."""
        with transaction.atomic():
            self._fence()
            self.video.tracks.all().delete()  # their strips go when this commits
            Video.objects.filter(pk=self.video.pk).update(
                named_until=None, names_ready=False, model_version=self.version
            )

    def add(self, tracks, final_before: int | None = None) -> None:
        """Store final, named tracks; with `final_before`, every face before that frame is
        named for good now."""
        saved: list[str] = []
        try:
            with transaction.atomic():
                self._fence()
                self.count += _store(self.video, tracks, self.version, self.info, saved)
                if final_before is not None:
                    until = self.clock.time(final_before)
                    Video.objects.filter(pk=self.video.pk).update(named_until=until)
        except BaseException:
            for name in saved:  # the rows are gone with the rollback; so go their strips
                default_storage.delete(name)
            raise

    def finish(self, analysis: Analysis) -> None:
        """Every track is stored: the whole video is named."""
        with transaction.atomic():
            self._fence()
            Video.objects.filter(pk=self.video.pk).update(
                model_version=self.version,
                cuts=list(analysis.cuts),
                named_until=self.clock.end,
                names_ready=True,
            )

    def _fence(self) -> None:
        if self.attempt is not None:
            job_fence(Video, self.video.pk, self.attempt, lock=True)


def _store(video, tracks, version, info, saved: list[str]) -> int:
    """Track and detection rows of named tracks; strips saved are listed in `saved`."""
    members = {m.slug: m for m in video.group.members.all()}
    embedder_id = version.embedding_model  # the analysis used the version's model
    clock = info.clock()
    rows = []
    count = 0
    for track in tracks:
        count += 1
        samples = np.asarray(track.samples, dtype=np.float32)
        row = Track.objects.create(
            video=video,
            number=track.id,
            member=members.get(track.label),
            candidate=members.get(track.candidate),
            confidence=track.confidence,
            first_frame=track.first_frame,
            last_frame=track.last_frame,
            embedding=samples.mean(axis=0).astype(np.float32).tobytes(),
            samples=samples.tobytes(),
            embedding_model=embedder_id,
            sample_boxes=[[f, *map(int, b)] for f, b in track.sample_boxes],
            kin=track.kin,
        )
        if track.thumbnail is not None:
            # The strip has a slot per possible sample; keep the filled ones.
            used = max(1, len(track.sample_boxes)) * track.thumbnail.shape[0]
            strip = shrunk(track.thumbnail[:, :used], height=72)
            row.thumbnail.save(
                f"{track.id}.jpg", ContentFile(encode_jpeg(strip, quality=88)), save=True
            )
            saved.append(row.thumbnail.name)
        rows += [
            (video.pk, row.pk, int(f), float(clock.time(f)), *map(int, b))
            for f, b in sorted(track.boxes.items())
        ]
        if len(rows) >= DETECTION_BATCH:  # a long video's rows need not all be in memory
            Detection.objects.insert_rows(rows)
            rows = []
    Detection.objects.insert_rows(rows)
    return count
