import uuid
from pathlib import PurePosixPath

import numpy as np
from django.conf import settings
from django.db import connections, models, router
from django.urls import reverse
from django.utils import timezone

from base.models import Job
from base.names import safe_filename
from core.media.clock import Clock
from core.media.probe import VideoInfo


def original_upload_to(instance, filename):
    suffix = PurePosixPath(filename).suffix.lower()[:8] or ".mp4"
    return f"{instance.storage_folder()}/original{suffix}"


def labelled_upload_to(instance, filename):
    return f"{instance.storage_folder()}/labelled.mp4"


def preview_upload_to(instance, filename):
    return f"{instance.storage_folder()}/preview.mp4"


def thumbnail_upload_to(instance, filename):
    # A fresh name each time: a retried analysis stores its strips before the old ones go.
    return f"{instance.video.storage_folder()}/tracks/{instance.number}-{uuid.uuid4().hex[:8]}.jpg"


class Video(Job):
    """An uploaded video, its processing state, and what was found in it."""

    job_function = "videos.jobs.process_video_job"
    job_queue = "video"
    job_timeout = 6 * 3600

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="videos",
    )
    group = models.ForeignKey("gallery.Group", on_delete=models.PROTECT, related_name="videos")
    title = models.CharField(max_length=200, blank=True)
    original = models.FileField(upload_to=original_upload_to, max_length=200)
    original_name = models.CharField(max_length=255, blank=True)
    size = models.PositiveBigIntegerField(default=0)
    labelled = models.FileField(upload_to=labelled_upload_to, blank=True, max_length=200)
    # A copy browsers play, on the original's clock, made only when the original is not one
    # (HEVC, AVI, sound browsers cannot play): the live boxes and the review page play it.
    preview = models.FileField(upload_to=preview_upload_to, blank=True, max_length=200)
    is_public = models.BooleanField("public by link", default=False)
    # The original may carry what a phone wrote into it (where it was filmed): only its owner
    # and curators download it, unless the owner lets everyone who can watch do so.
    allow_original_download = models.BooleanField(
        "anyone who can watch may download the original", default=False
    )
    model_version = models.ForeignKey(
        "recognition.ModelVersion",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="videos",
    )
    # Probe facts, of the displayed (rotation-applied) picture.
    fps = models.FloatField(null=True, blank=True)
    frames = models.PositiveIntegerField(null=True, blank=True)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    duration = models.FloatField(null=True, blank=True)
    rotation = models.SmallIntegerField(default=0)
    has_audio = models.BooleanField(default=False)
    # The whole probe result (core.media.probe.VideoInfo): read by every job, never probed again.
    probe_facts = models.JSONField(default=dict, blank=True)
    # Frames where a shot starts (after the first), from the analysis; None: not recorded.
    cuts = models.JSONField(null=True, blank=True)
    # Long videos are analysed as segment jobs on any worker, then joined, then drawn as render
    # part jobs and joined again: how many parts the stage under way has, and how many are done.
    segments = models.PositiveIntegerField(default=0)
    segments_done = models.PositiveIntegerField(default=0)
    # How far the names reach while it is processed: every face up to this second of the
    # player's clock is named for good (None: not yet); names_ready once all of it is.
    named_until = models.FloatField(null=True, blank=True)
    names_ready = models.BooleanField(default=False)
    # Seconds the analysis and the render took, for the curious and for benchmarks.
    timings = models.JSONField(default=dict, blank=True)
    # The lease of the one worker drawing the labelled MP4 now (a token and until when), so
    # two workers never render the same video at once; a dead worker's lease runs out.
    render_lease = models.CharField(max_length=64, blank=True, editable=False)
    render_lease_until = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created"]

    def __str__(self):
        return self.title or self.original_name or f"video {self.pk}"

    def get_absolute_url(self):
        return reverse("videos:watch", args=[self.uuid])

    def storage_folder(self) -> str:
        """Where every file of the video is stored: the original and all that is made from it."""
        return f"videos/{self.uuid.hex}"

    def info(self) -> VideoInfo | None:
        """The stored probe result, or None for a video stored before it was kept."""
        return VideoInfo.from_json(self.probe_facts) if self.probe_facts else None

    def clock(self) -> Clock:
        """When each frame is shown, on the player's clock; a video probed before clocks were
        kept gets frame / fps, as it was analysed."""
        info = self.info()
        if info is not None and info.first_time is not None:
            return info.clock()
        return Clock.regular(0.0, self.fps or 30.0, self.frames or 0)

    @property
    def all_named(self) -> bool:
        """Whether every face of the video is named (a processed video always is)."""
        return self.names_ready or self.state == self.State.DONE

    def job_progress(self) -> dict:
        """The progress pages poll, with how far the names reach (seconds on the player's
        clock) and whether the whole video is named."""
        return {
            **super().job_progress(),
            "named_until": self.named_until,
            "names_ready": self.all_named,
            "labelled_ready": self.state == self.State.DONE,
        }

    def download_name(self, suffix: str) -> str:
        """A download's file name from the title the fan gave ("Stage-labelled.mp4"), made safe:
        a title is free text, and may hold slashes, quotes or control characters."""
        return safe_filename(str(self), suffix)

    def duration_label(self) -> str:
        if self.duration is None:
            return "—"
        minutes, seconds = divmod(round(self.duration), 60)
        return f"{minutes}:{seconds:02d}"


class Track(models.Model):
    """One face followed through the video; the label is a decision about the whole track."""

    video = models.ForeignKey(Video, on_delete=models.CASCADE, related_name="tracks")
    number = models.PositiveIntegerField(help_text="track id in exports, unique within the video")
    member = models.ForeignKey(
        "gallery.Member", null=True, blank=True, on_delete=models.SET_NULL, related_name="tracks"
    )
    confidence = models.FloatField(default=0.0)
    # The model's best guess even when it said unknown, for review pages.
    candidate = models.ForeignKey(
        "gallery.Member", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    first_frame = models.PositiveIntegerField()
    last_frame = models.PositiveIntegerField()
    thumbnail = models.ImageField(upload_to=thumbnail_upload_to, blank=True, max_length=200)
    embedding = models.BinaryField(help_text="mean embedding of the track's samples")
    samples = models.BinaryField(help_text="the sample embeddings, (n, D) float32")
    embedding_model = models.CharField(max_length=64)
    # Frames and boxes the samples were taken from, [[frame, l, t, r, b], ...], for gallery crops.
    sample_boxes = models.JSONField(default=list, blank=True)
    # A person's correction wins over the model from then on: relabelling leaves the track alone.
    corrected = models.BooleanField(default=False)
    is_face = models.BooleanField(default=True)
    # Tracks the analysis split from one track (where the face seemed to change person) share
    # this, and are named together where they agree (tracking.naming); null if never split.
    kin = models.PositiveIntegerField(null=True, blank=True)
    # Members a person said this track is not: no model decision names it one of them again.
    not_members = models.ManyToManyField("gallery.Member", blank=True, related_name="+")
    # Merged into another track by a person: its boxes are that track's now, so it shows
    # nowhere; kept (not deleted) so the merge can be undone.
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="merged"
    )

    class Meta:
        ordering = ["video", "number"]
        constraints = [
            models.UniqueConstraint(fields=["video", "number"], name="track_number_unique_in_video")
        ]

    def __str__(self):
        return f"track {self.number} of {self.video}"

    def sample_vectors(self) -> np.ndarray:
        """(n, D) float32: D is the embedding model's (the mean embedding has D values)."""
        dimensions = max(1, len(bytes(self.embedding)) // 4)
        return np.frombuffer(bytes(self.samples), dtype=np.float32).reshape(-1, dimensions)


class DetectionQuerySet(models.QuerySet):
    COLUMNS = ("video", "track", "frame", "time", "left", "top", "right", "bottom")

    def insert_rows(self, rows: list[tuple]) -> None:
        """Add detections given as plain tuples, one value per field of COLUMNS (ids for the
        video and the track), in one executemany. A video's analysis stores every box of every
        frame, and bulk_create, which builds a model and an SQL fragment per row, took 1.2-1.4 s
        per 50,000 rows against 0.18 s this way (SQLite): on a 10-minute video that was a third
        of what the job did outside its analysis processes, while those waited for a core."""
        if not rows:
            return
        connection = connections[router.db_for_write(self.model)]
        quote = connection.ops.quote_name
        columns = ", ".join(quote(self.model._meta.get_field(name).column) for name in self.COLUMNS)
        marks = ", ".join(["%s"] * len(self.COLUMNS))
        table = quote(self.model._meta.db_table)
        with connection.cursor() as cursor:
            cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)


class Detection(models.Model):
    """A face box in one frame, belonging to a track."""

    video = models.ForeignKey(Video, on_delete=models.CASCADE, related_name="detections")
    track = models.ForeignKey(Track, on_delete=models.CASCADE, related_name="detections")
    frame = models.PositiveIntegerField()
    time = models.FloatField()
    left = models.IntegerField()
    top = models.IntegerField()
    right = models.IntegerField()
    bottom = models.IntegerField()

    objects = DetectionQuerySet.as_manager()

    class Meta:
        ordering = ["video", "frame"]
        indexes = [models.Index(fields=["video", "frame"])]

    def __str__(self):
        return f"frame {self.frame} of track {self.track_id}"

    def box(self) -> list[int]:
        return [self.left, self.top, self.right, self.bottom]


class Correction(models.Model):
    """A person's fix to a track (its label, its extent, or its box in one frame): recorded,
    undoable, and (once approved) training data."""

    class Kind(models.TextChoices):
        CONFIRM = "confirm"
        MEMBER = "member", "another member"
        UNKNOWN = "unknown", "unknown person"
        NOT_FACE = "not_face", "not a face"
        NOT_MEMBER = "not_member", "not this member"
        SPLIT = "split", "split the track"
        MERGE = "merge", "merge two tracks"
        BOX = "box", "fix a box"

    class Review(models.TextChoices):
        PENDING = "pending"
        APPROVED = "approved"
        REJECTED = "rejected"
        UNDONE = "undone", "undone (nothing to review)"

    video = models.ForeignKey(Video, on_delete=models.CASCADE, related_name="corrections")
    track = models.ForeignKey(Track, on_delete=models.CASCADE, related_name="corrections")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    kind = models.CharField(max_length=10, choices=Kind)
    before_member = models.ForeignKey(
        "gallery.Member", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    before_corrected = models.BooleanField(default=False)
    before_is_face = models.BooleanField(default=True)
    after_member = models.ForeignKey(
        "gallery.Member", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    split_frame = models.PositiveIntegerField(null=True, blank=True)
    new_track = models.ForeignKey(
        Track, null=True, blank=True, on_delete=models.SET_NULL, related_name="split_from"
    )
    # A box fix (kind "box"): the frame, and the track's box there before and after as
    # [left, top, right, bottom] (None: no box), so undo puts back exactly what was there.
    box_frame = models.PositiveIntegerField(null=True, blank=True)
    before_box = models.JSONField(null=True, blank=True)
    after_box = models.JSONField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    undone = models.DateTimeField(null=True, blank=True)
    review = models.CharField(max_length=8, choices=Review, default=Review.PENDING, db_index=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed = models.DateTimeField(null=True, blank=True)
    # Faces the training job took from the track into the gallery; None until it ran.
    samples_added = models.PositiveIntegerField(null=True, blank=True)
    # The gallery images its faces became (videos.harvest), rejected again if it is undone.
    sample_images = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self):
        return f"{self.get_kind_display()} on {self.track}"

    def describe(self) -> str:
        if self.kind == self.Kind.MERGE:
            other = self.new_track.number if self.new_track else "?"
            return f"track {other} merged into it"
        if self.kind == self.Kind.BOX:
            if self.before_box is None:
                return f"box at frame {self.box_frame} drawn"
            done = "removed" if self.after_box is None else "moved"
            return f"box at frame {self.box_frame} {done}"
        return change_text(self.kind, self.before_member, self.after_member, self.split_frame)


def change_text(kind: str, before, after, split_frame=None) -> str:
    """A change in words, for status lines, suggestion lists and the admin."""
    before_name = before.name if before else "unknown"
    if kind == Correction.Kind.SPLIT:
        return f"split at frame {split_frame}"

    if kind == Correction.Kind.NOT_FACE:
        return f"{before_name} → not a face"
    if kind == Correction.Kind.NOT_MEMBER:
        return f"not {before_name}"
    if kind == Correction.Kind.CONFIRM:
        return f"confirmed {before_name}"
    return f"{before_name} → {after.name if after else 'unknown'}"


class Suggestion(models.Model):
    """A change proposed by someone who may see a video but not change it: stored, not applied
    (the track, the labelled MP4 and screen time stay as they are) until the owner or a
    curator accepts it, which applies it as their own correction."""

    class State(models.TextChoices):
        PENDING = "pending", "waiting for the owner"
        ACCEPTED = "accepted"
        REJECTED = "rejected"
        WITHDRAWN = "withdrawn"

    video = models.ForeignKey(Video, on_delete=models.CASCADE, related_name="suggestions")
    track = models.ForeignKey(Track, on_delete=models.CASCADE, related_name="suggestions")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    kind = models.CharField(max_length=10, choices=Correction.Kind)
    # The track's label when it was suggested, and the member it should be (kind "member").
    before_member = models.ForeignKey(
        "gallery.Member", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    member = models.ForeignKey(
        "gallery.Member", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    split_frame = models.PositiveIntegerField(null=True, blank=True)
    state = models.CharField(max_length=9, choices=State, default=State.PENDING, db_index=True)
    created = models.DateTimeField(auto_now_add=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided = models.DateTimeField(null=True, blank=True)
    # The correction accepting it made (its user is the one who accepted).
    correction = models.OneToOneField(
        Correction, null=True, blank=True, on_delete=models.SET_NULL, related_name="suggestion"
    )

    class Meta:
        ordering = ["created"]

    def __str__(self):
        return f"suggestion on {self.track}: {self.describe()}"

    def describe(self) -> str:
        return change_text(self.kind, self.before_member, self.member, self.split_frame)


class Relabel(models.Model):
    """What a newly active model version changed in one stored video."""

    version = models.ForeignKey(
        "recognition.ModelVersion", on_delete=models.CASCADE, related_name="relabels"
    )
    video = models.ForeignKey(Video, on_delete=models.CASCADE, related_name="relabels")
    tracks_changed = models.PositiveIntegerField()
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self):
        return f"{self.version} changed {self.tracks_changed} track(s) of {self.video}"


class RenderRun(Job):
    """A re-render of a video's labelled MP4 after its labels changed; requests made while one
    waits join it."""

    job_function = "videos.jobs.render_video_job"
    job_queue = "video"

    video = models.ForeignKey(Video, on_delete=models.CASCADE, related_name="renders")
    requests = models.PositiveIntegerField(default=1, help_text="requests coalesced into this run")
    reason = models.CharField(max_length=200, blank=True)
    # The latest request it took: the job waits until requests have been quiet for a moment,
    # so a burst of corrections is drawn once.
    last_request = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self):
        return f"re-render of {self.video}"


class RelabelRun(Job):
    """Naming a group's stored tracks again with a model version that became active."""

    job_function = "videos.jobs.relabel_group_job"

    version = models.ForeignKey(
        "recognition.ModelVersion", on_delete=models.CASCADE, related_name="relabel_runs"
    )
    videos_changed = models.PositiveIntegerField(default=0)
    tracks_changed = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created"]

    def __str__(self):
        return f"relabel with {self.version}"


class HarvestRun(Job):
    """The faces of a group's approved corrections cut from their videos into its gallery,
    then, when asked, a retrain; requests made while one waits join it."""

    job_function = "videos.jobs.harvest_job"

    group = models.ForeignKey("gallery.Group", on_delete=models.CASCADE, related_name="+")
    train = models.BooleanField(default=False, help_text="retrain once the faces are in")
    requests = models.PositiveIntegerField(default=1, help_text="requests coalesced into this run")
    reason = models.CharField(max_length=200, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    faces_added = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self):
        return f"faces from corrections for {self.group}"


def fancam_upload_to(instance, filename):
    return f"{instance.video.storage_folder()}/fancams/{instance.pk}-{uuid.uuid4().hex[:8]}.mp4"


class Fancam(Job):
    """One member followed through a video: a cropped MP4 made from the stored boxes."""

    class Aspect(models.TextChoices):
        PORTRAIT = "9:16", "9:16 (phone)"
        SQUARE = "1:1", "1:1"
        WIDE = "16:9", "16:9"

    job_function = "videos.jobs.fancam_job"
    job_queue = "video"
    job_timeout = 3 * 3600

    video = models.ForeignKey(Video, on_delete=models.CASCADE, related_name="fancams")
    member = models.ForeignKey("gallery.Member", on_delete=models.CASCADE, related_name="+")
    aspect = models.CharField(max_length=5, choices=Aspect, default=Aspect.PORTRAIT)
    highlights = models.BooleanField(default=False, help_text="only the shots she is in")
    labels = models.BooleanField(default=False, help_text="name tags and boxes drawn")
    # What the fancam was made from (her tracks and boxes); a change makes it again.
    source_key = models.CharField(max_length=64, blank=True)
    file = models.FileField(upload_to=fancam_upload_to, blank=True, max_length=200)
    frames = models.PositiveIntegerField(null=True, blank=True)
    duration = models.FloatField(null=True, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created"]
        constraints = [
            models.UniqueConstraint(
                fields=["video", "member", "aspect", "highlights", "labels"],
                name="one_fancam_per_setting",
            )
        ]

    def __str__(self):
        return f"{self.member} fancam of {self.video}"

    def settings_label(self) -> str:
        parts = [self.aspect]
        if self.highlights:
            parts.append("highlights")
        if self.labels:
            parts.append("labels")
        return " · ".join(parts)

    def asked_by(self) -> list[str]:
        """Who had it made, by name, first asker first (from prefetched `requests__user`)."""
        names = [r.user.username for r in sorted(self.requests.all(), key=lambda r: r.created)]
        return list(dict.fromkeys(names))

    def download_name(self) -> str:
        extra = "-highlights" if self.highlights else ""
        aspect = self.aspect.replace(":", "x")
        return self.video.download_name(f"-{self.member.slug}-fancam-{aspect}{extra}.mp4")


class FancamRequest(models.Model):
    """A fancam someone's request had made (or made again): who asked, and when. A person's
    requests on videos of others count against their hourly limit, as uploads do."""

    fancam = models.ForeignKey(Fancam, on_delete=models.CASCADE, related_name="requests")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="fancam_requests"
    )
    created = models.DateTimeField(default=timezone.now, editable=False, db_index=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self):
        return f"{self.user} asked for the {self.fancam}"
