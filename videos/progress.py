"""A video's progress bar: which stretch each stage fills, and the share of it that jobs
working side by side (segment analyses, render parts) have done."""

import time
from dataclasses import dataclass

from django.db.models import F

from base.jobs import JobGone, Progress
from videos.models import Video


@dataclass(frozen=True)
class Stretch:
    """Where a stage fills the bar, in %."""

    low: float
    high: float

    def at(self, percent: float) -> float:
        """The bar's value with the stage `percent` % done."""
        return self.low + (self.high - self.low) * percent / 100


# A video done in jobs: the analysis, then joining and saving, then the labelled video.
ANALYSIS = Stretch(0.0, 60.0)
RENDER = Stretch(62.0, 100.0)
# Done in one job, analysis and render fill the bar side by side, then predictions are saved.
OVERLAP_ANALYSIS, OVERLAP_RENDER = 55.0, 43.0


@dataclass(frozen=True)
class Parts:
    """A stage done by several jobs side by side: its stretch of the bar, what the page says
    while it runs ("finding faces: 1 of 3 segments done") and as each part ends ("found
    faces in 2 of 3 segments")."""

    stretch: Stretch
    stage: str
    what: str
    done: str


SEGMENTS = Parts(ANALYSIS, "finding faces", "segments", "found faces in {} of {} segments")
RENDER_PARTS = Parts(
    RENDER, "drawing the labelled video", "parts", "drew {} of {} parts of the labelled video"
)


def shared_progress(video: Video, attempt: int, parts: Parts, count: int = 1):
    """report(percent) for one job doing `count` of the parts: its share on top of the parts
    done, shown as soon as it is made, never backwards (the jobs run side by side)."""
    last = [0.0]

    def report(percent: float, _stage: str = "") -> None:
        now = time.monotonic()
        if now - last[0] < 1.0:
            return
        last[0] = now
        done = Video.objects.filter(pk=video.pk).values_list("segments_done", "segments").first()
        if done is None:
            raise JobGone(f"video {video.pk} was deleted")
        value = parts.stretch.at(100 * (done[0] + count * percent / 100) / max(done[1], 1))
        Video.objects.filter(pk=video.pk, attempt=attempt, progress__lt=value).update(
            progress=value, stage=f"{parts.stage}: {done[0]} of {done[1]} {parts.what} done"
        )

    return report


def parts_done(video: Video, attempt: int, parts: Parts, count: int = 1) -> None:
    """`count` more of the parts are done: the bar and the stage say so."""
    progress = Progress(video, attempt=attempt)
    progress.update(segments_done=F("segments_done") + count)
    video.refresh_from_db()
    share = 100 * video.segments_done / max(video.segments, 1)
    progress.update(
        progress=max(video.progress, parts.stretch.at(share)),
        stage=parts.done.format(video.segments_done, video.segments),
    )
