"""The predictions export (the public format in docs/architecture.md) and the files made
from it. Every format is a row of FORMATS: a new one is a function and a row."""

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from videos.models import Detection, Video

CSV_HEADER = ["frame", "time", "left", "top", "right", "bottom", "member", "confidence", "track"]


def _rows(video: Video) -> Iterator[tuple]:
    """(frame, time, l, t, r, b, member slug or None, confidence, track number), frame order."""
    yield from (
        Detection.objects.filter(video=video, track__is_face=True)
        .order_by("frame", "track__number")
        .values_list(
            "frame",
            "time",
            "left",
            "top",
            "right",
            "bottom",
            "track__member__slug",
            "track__confidence",
            "track__number",
        )
        .iterator(chunk_size=5000)
    )


def predictions(video: Video) -> dict:
    """Every stored detection with its track's current label."""
    version = video.model_version
    clock = video.clock()
    return {
        "video": {
            "fps": video.fps,
            "frames": video.frames,
            "width": video.width,
            "height": video.height,
            "duration": video.duration,
            # The player's clock: frame 0 is shown at first_frame_time, frame n at
            # first_frame_time + n / fps, or at frame_times[n] when the rate varies.
            "first_frame_time": round(clock.first, 6),
            "frame_times": clock.to_json()["frame_times"],
            # While it is processed: every face before named_until (seconds) is named.
            "named_until": video.named_until,
            "names_ready": video.all_named,
        },
        "model": {"version": version.number if version else None, "group": video.group.slug},
        "detections": [
            {
                "frame": frame,
                "time": round(time, 6),
                "box": [left, top, right, bottom],
                "member": member,
                "confidence": round(confidence, 4),
                "track": track,
            }
            for frame, time, left, top, right, bottom, member, confidence, track in _rows(video)
        ],
    }


def predictions_csv(video: Video) -> Iterator[str]:
    """The same rows as CSV lines, streamed."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_HEADER)
    for frame, time, left, top, right, bottom, member, confidence, track in _rows(video):
        writer.writerow(
            [
                frame,
                f"{time:.6f}",
                left,
                top,
                right,
                bottom,
                member or "",
                f"{confidence:.4f}",
                track,
            ]
        )
        if buffer.tell() > 64_000:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _stamp(seconds: float) -> str:
    millis = round(seconds * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"


def webvtt(video: Video) -> str:
    """A WebVTT track naming who is on screen, one cue per change, on the player's clock."""
    lines = ["WEBVTT", ""]
    for i, (begin, end, text) in enumerate(cues(video), start=1):
        lines += [str(i), f"{_stamp(begin)} --> {_stamp(end)}", text, ""]
    return "\n".join(lines)


def subrip(video: Video) -> str:
    """The same cues as SubRip subtitles (.srt), which video editors and players take."""
    blocks = []
    for i, (begin, end, text) in enumerate(cues(video), start=1):
        span = f"{_stamp(begin).replace('.', ',')} --> {_stamp(end).replace('.', ',')}"
        blocks.append(f"{i}\n{span}\n{text}\n")
    return "\n".join(blocks)


def cues(video: Video) -> list[tuple[float, float, str]]:
    """Who is on screen, as (start, end, "Name, Name") with a new one at every change, in
    seconds on the player's clock."""
    clock = video.clock()
    names = {}
    for track in video.tracks.select_related("member").exclude(member=None):
        names[track.number] = track.member.name
    on_screen: dict[int, set[str]] = {}
    for frame, _time, *_box, member, _confidence, number in _rows(video):
        if member is not None:
            on_screen.setdefault(frame, set()).add(names[number])
    found, current, start = [], frozenset(), 0
    for frame in range((video.frames or 0) + 1):
        people = frozenset(on_screen.get(frame, ()))
        if people != current:
            if current:
                found.append((*clock.span(start, frame), ", ".join(sorted(current))))
            current, start = people, frame
    return found


@dataclass(frozen=True)
class Format:
    """One export: what the downloads panel calls it, its media type, and write(video), its
    text in one piece or (with `streamed`) in chunks, for a long video's rows."""

    label: str
    content_type: str
    write: Callable[[Video], str | Iterable[str]]
    streamed: bool = False


FORMATS: dict[str, Format] = {
    "json": Format(
        "Predictions JSON", "application/json", lambda video: json.dumps(predictions(video))
    ),
    "csv": Format("CSV", "text/csv", predictions_csv, streamed=True),
    "vtt": Format("WebVTT", "text/vtt; charset=utf-8", webvtt),
    "srt": Format("SubRip", "application/x-subrip; charset=utf-8", subrip),
}
