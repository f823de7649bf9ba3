"""A video's render lease: one worker draws its labelled MP4 at a time.

Not a database lock: a render takes minutes, and SQLite would hold every writer back
meanwhile. The lease is a token and an end on the video's row, renewed as the render draws;
the render's final write is fenced by the token, and a dead worker's lease runs out after
VIDEO_RENDER_LEASE_SECONDS (at once when the worker was a process of this machine).
"""

import time
import uuid
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from base.jobs import JobGone
from core.processes import process_token, token_process_gone
from videos.models import Video

# How often a render waiting for a video's lease asks again.
RENDER_LEASE_POLL = 0.25


class RenderLease:
    """A video's render lease held by this process: a token and until when (see Video)."""

    def __init__(self, video_pk: int):
        self.video_pk = video_pk
        # Who holds it, so a lease of a process of this machine that died (a killed work
        # horse) is taken over at once rather than when it runs out.
        self.token = f"{process_token()}:{uuid.uuid4().hex[:12]}"
        self._renewed = 0.0

    def take(self) -> bool:
        now = timezone.now()
        free = Q(render_lease="") | Q(render_lease_until__lt=now)
        claim = {"render_lease": self.token, "render_lease_until": self._until(now)}
        if Video.objects.filter(free, pk=self.video_pk).update(**claim):
            return True
        holder = Video.objects.filter(pk=self.video_pk).values_list("render_lease", flat=True)
        holder = holder.first()
        if holder and token_process_gone(holder):
            return bool(Video.objects.filter(pk=self.video_pk, render_lease=holder).update(**claim))
        return False

    def renew(self) -> None:
        """Push the lease's end on (at most every few seconds: it is a database write)."""
        if time.monotonic() - self._renewed < 10:
            return
        self._renewed = time.monotonic()
        Video.objects.filter(pk=self.video_pk, render_lease=self.token).update(
            render_lease_until=self._until(timezone.now())
        )

    def release(self) -> None:
        Video.objects.filter(pk=self.video_pk, render_lease=self.token).update(
            render_lease="", render_lease_until=None
        )

    @staticmethod
    def _until(now):
        return now + timedelta(seconds=settings.VIDEO_RENDER_LEASE_SECONDS)


@contextmanager
def render_lease(video: Video, on_wait=None):
    """Hold the video's render lease for the block, waiting while another worker holds it;
    `on_wait()` is called once if it has to wait (the page says why)."""
    lease = RenderLease(video.pk)
    said = False
    while not lease.take():
        if not Video.objects.filter(pk=video.pk).exists():
            raise JobGone(f"video {video.pk} was deleted")
        if on_wait is not None and not said:
            on_wait()
            said = True
        time.sleep(RENDER_LEASE_POLL)
    lease._renewed = time.monotonic()
    try:
        yield lease
    finally:
        lease.release()
