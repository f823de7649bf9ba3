"""Member pages and the together search on a library of 1,000 videos and 100,000 tracks (#27).

Run with `.venv/bin/python -m bench.bench_library` (PostgreSQL on 127.0.0.1:5432, trust auth).
The rows are built once in a database of their own (`--database-url`, created if missing; made
again with `--rebuild`): ten fans with 100 videos each, 2 to 10 minutes at 25, 29.97 or 60 fps,
one in twenty with every frame's time stored (a variable rate); 100 tracks a video, 70 of them
named (nine members, a member's tracks never overlapping in one video, as the clash rule keeps
them) and 30 unknown; one named track in a hundred with a box removed by a person, so its boxes
are stored and read; a fancam per member a fan. Per-frame boxes of the other tracks are not
made: the pages never read them.

Each case is a whole request through Django's test client (middleware, view, queries and
template) with DEBUG off, run once to warm up and then `--runs` times: min, median and max in
ms, the number of queries, and the part spent in the selectors alone. Target: under 200 ms.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time

TARGET_MS = 200.0
VIDEOS = 1000
FANS = 10
TRACKS_PER_VIDEO = 100
NAMED_PER_VIDEO = 70
MEMBERS = ["nayeon", "jeongyeon", "momo", "sana", "jihyo", "mina", "dahyun", "chaeyoung", "tzuyu"]
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/bench_library"


def setup(url: str) -> None:
    os.environ.update(
        DATABASE_URL=url,
        DJANGO_SETTINGS_MODULE="twicesite.settings",
        DEBUG="false",
        SECRET_KEY="bench-library-" + "x" * 40,
        STATIC_MANIFEST="false",
        SECURE_SSL_REDIRECT="false",
        SESSION_COOKIE_SECURE="false",
        CSRF_COOKIE_SECURE="false",
        LOG_LEVEL="WARNING",
    )
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    import django

    django.setup()
    from django.test.utils import setup_test_environment

    setup_test_environment()  # the test client's host is allowed


def probe_facts(rng: random.Random, seconds: float, fps: float, irregular: bool) -> dict:
    frames = round(seconds * fps)
    first = rng.choice([0.0, 0.0, 0.0, 0.85, 0.04])
    facts = {
        "width": 1920, "height": 1080, "fps": fps, "frames": frames, "duration": frames / fps,
        "rotation": 0, "has_audio": True, "audio_codec": "aac", "video_codec": "h264",
        "pix_fmt": "yuv420p", "vfr": irregular, "stream_index": 0, "audio_index": 1,
        "first_time": first, "frame_times": None, "media_duration": frames / fps,
        "container": "mov,mp4,m4a,3gp,3g2,mj2", "sar": [1, 1],
    }  # fmt: skip
    if irregular:  # a phone's recording: frames 28 to 40 ms apart
        times, at = [], first
        for _ in range(frames):
            times.append(round(at, 6))
            at += rng.uniform(0.028, 0.040)
        facts |= {"frame_times": times, "duration": at - first, "fps": frames / (at - first)}
    return facts


def placed(rng: random.Random, frames: int, count: int) -> list[tuple[int, int]]:
    """`count` tracks that never overlap: one in each of `count` slots of the video."""
    slot = frames // max(count, 1)
    out = []
    for k in range(count):
        length = rng.randint(min(30, slot), max(min(450, slot), 1))
        start = k * slot + rng.randint(0, max(slot - length, 0))
        out.append((start, min(frames - 1, start + length - 1)))
    return out


def build() -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from gallery.models import Group, Member
    from videos.models import Correction, Detection, Fancam, Track, Video

    rng = random.Random(27)
    users = get_user_model()
    started = time.perf_counter()
    with transaction.atomic():
        users.objects.create_superuser("curator", password="bench")
        fans = [users.objects.create_user(f"fan{i}", password="bench") for i in range(FANS)]
        group = Group.objects.create(name="Twice", slug="twice")
        members = [
            Member.objects.create(group=group, slug=s, name=s.title(), color="#ff5fa2", order=i)
            for i, s in enumerate(MEMBERS)
        ]
        videos = []
        for n in range(VIDEOS):
            seconds = rng.uniform(120, 600)
            fps = rng.choice([29.97, 29.97, 25.0, 60.0])
            facts = probe_facts(rng, seconds, fps, irregular=n % 20 == 7)
            videos.append(
                Video(
                    owner=fans[n % FANS],
                    group=group,
                    title=f"Stage {n}",
                    original=f"videos/bench/{n}/original.mp4",
                    state=Video.State.DONE,
                    progress=100,
                    fps=facts["fps"],
                    frames=facts["frames"],
                    duration=facts["duration"],
                    width=1920,
                    height=1080,
                    probe_facts=facts,
                )
            )
        videos = Video.objects.bulk_create(videos, batch_size=200)
        tracks = []
        for video in videos:
            per_member = [0] * len(members)
            for _ in range(NAMED_PER_VIDEO):
                per_member[rng.randrange(len(members))] += 1
            spans = [(m, s) for m, count in zip(members, per_member, strict=True)
                     for s in placed(rng, video.frames, count)]  # fmt: skip
            for _ in range(TRACKS_PER_VIDEO - NAMED_PER_VIDEO):
                start = rng.randrange(video.frames - 40)
                spans.append((None, (start, min(video.frames - 1, start + rng.randint(10, 300)))))
            for number, (member, (first, last)) in enumerate(spans, start=1):
                tracks.append(
                    Track(
                        video=video,
                        number=number,
                        member=member,
                        candidate=member,
                        confidence=rng.uniform(0.5, 0.99),
                        first_frame=first,
                        last_frame=last,
                        embedding=bytes(2048),
                        samples=bytes(3 * 2048),
                        embedding_model="arcface-bench",
                    )
                )
        Track.objects.bulk_create(tracks, batch_size=5000)
        named = [t for t in tracks if t.member_id is not None]
        edited = rng.sample(named, len(named) // 100)
        detections, corrections = [], []
        clocks = {v.pk: v.clock() for v in videos}
        for track in edited:
            gone = (track.first_frame + track.last_frame) // 2
            clock = clocks[track.video_id]
            detections += [
                Detection(
                    video_id=track.video_id,
                    track=track,
                    frame=f,
                    time=clock.time(f),
                    left=10,
                    top=10,
                    right=110,
                    bottom=110,
                )
                for f in range(track.first_frame, track.last_frame + 1)
                if f != gone
            ]
            corrections.append(
                Correction(
                    video_id=track.video_id,
                    track=track,
                    user=fans[0],
                    kind="box",
                    box_frame=gone,
                    before_box=[10, 10, 110, 110],
                    after_box=None,
                    review="approved",
                )
            )
        Detection.objects.bulk_create(detections, batch_size=10000)
        Correction.objects.bulk_create(corrections)
        Fancam.objects.bulk_create(
            [
                Fancam(
                    video=videos[f],
                    member=m,
                    state=Fancam.State.DONE,
                    progress=100,
                    file=f"videos/bench/{f}/fancams/{m.slug}.mp4",
                    duration=60.0,
                )
                for f in range(FANS)
                for m in members
            ]
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(
        f"built {len(videos)} videos, {len(tracks)} tracks ({len(named)} named), "
        f"{len(detections)} boxes of {len(edited)} edited tracks in "
        f"{time.perf_counter() - started:.0f} s"
    )


def ms(seconds: float) -> float:
    return 1000 * seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--rebuild", action="store_true", help="drop and build the rows again")
    args = parser.parse_args()
    if not args.database_url.startswith("postgres"):
        sys.exit("bench_library measures PostgreSQL: give a postgres:// URL")
    setup(args.database_url)

    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    from gallery.models import Member
    from videos import library
    from videos.models import Track, Video

    if args.rebuild:
        call_command("flush", interactive=False, verbosity=0)
    call_command("migrate", verbosity=0)
    if not Video.objects.exists():
        build()
    from django.contrib.auth import get_user_model

    users = get_user_model()
    curator, fan = users.objects.get(username="curator"), users.objects.get(username="fan0")
    mina, nayeon, sana = (Member.objects.get(slug=s) for s in ("mina", "nayeon", "sana"))
    print(
        f"library: {Video.objects.count()} videos, {Track.objects.count()} tracks; "
        f"Mina has {Track.objects.filter(member=mina).count()} tracks"
    )

    def group(*slugs):
        return reverse("library:group", args=["twice"]) + "?" + "&".join(f"m={s}" for s in slugs)

    member = reverse("library:member", args=["twice", "mina"])
    cases = [
        ("member page, curator: all 1,000 videos", curator, member + "?all=1",
         lambda: library.member_library(curator, mina, everyone=True)),
        ("member page, a fan: 100 videos", fan, member,
         lambda: library.member_library(fan, mina)),
        ("together Mina+Nayeon, curator", curator, group("mina", "nayeon") + "&all=1",
         lambda: library.together(curator, [mina, nayeon], everyone=True)),
        ("together Mina+Nayeon, a fan", fan, group("mina", "nayeon"),
         lambda: library.together(fan, [mina, nayeon])),
        ("together Mina+Nayeon+Sana, curator", curator, group("mina", "nayeon", "sana") + "&all=1",
         lambda: library.together(curator, [mina, nayeon, sana], everyone=True)),
    ]  # fmt: skip
    print(f"\n{'case':<40} {'first':>7} {'min':>7} {'median':>7} {'max':>7} {'queries':>7} "
          f"{'selectors':>9} {'kB':>5}")  # fmt: skip
    met = True
    for name, user, url, selector in cases:
        client = Client()
        client.force_login(user)
        start = time.perf_counter()
        response = client.get(url)
        first = time.perf_counter() - start
        assert response.status_code == 200, response.status_code
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            with CaptureQueriesContext(connection) as queries:
                response = client.get(url)
            times.append(time.perf_counter() - start)
        reads = []
        for _ in range(args.runs):
            start = time.perf_counter()
            selector()
            reads.append(time.perf_counter() - start)
        median = statistics.median(times)
        met &= median * 1000 < TARGET_MS
        print(
            f"{name:<40} {ms(first):>7.1f} {ms(min(times)):>7.1f} {ms(median):>7.1f} "
            f"{ms(max(times)):>7.1f} {len(queries):>7} {ms(statistics.median(reads)):>9.1f} "
            f"{len(response.content) / 1e3:>5.0f}"
        )
    print(f"\ntarget: median under {TARGET_MS:g} ms: {'met' if met else 'NOT met'}")


if __name__ == "__main__":
    main()
