from django.apps import AppConfig
from django.db.models.signals import post_delete


class VideosConfig(AppConfig):
    name = "videos"
    verbose_name = "Videos"

    def ready(self):
        from base.jobs import on_failed_for_good
        from base.worker import worker_warm
        from recognition.signals import group_naming_changed, model_version_activated
        from videos.models import Fancam, Track, Video

        # Signals rather than delete(): they also fire for admin bulk deletes and for the
        # cascade when an owner or group goes, which never call a model's delete().
        post_delete.connect(_delete_video_files, sender=Video, dispatch_uid="video-files")
        post_delete.connect(_delete_track_files, sender=Track, dispatch_uid="track-files")
        post_delete.connect(_delete_fancam_file, sender=Fancam, dispatch_uid="fancam-files")
        model_version_activated.connect(_relabel, dispatch_uid="videos-relabel")
        group_naming_changed.connect(_relabel, dispatch_uid="videos-relabel-naming")
        on_failed_for_good(Video, _tidy)
        worker_warm.connect(_warm, dispatch_uid="videos-warm")


def _delete_video_files(sender, instance, **kwargs):
    from base.storage import delete_tree_on_commit

    # The original, the labelled MP4, the track strips and anything made later all live here.
    delete_tree_on_commit(instance.storage_folder())


def _delete_track_files(sender, instance, **kwargs):
    from base.storage import delete_files_on_commit

    delete_files_on_commit([instance.thumbnail.name])


def _delete_fancam_file(sender, instance, **kwargs):
    from base.storage import delete_files_on_commit

    delete_files_on_commit([instance.file.name])


def _warm(sender, **kwargs):
    """What every video job imports on first use, imported once in the worker instead."""
    import scipy.optimize  # noqa: F401  the tracker's assignment
    import scipy.special  # noqa: F401  the classifier's calibration

    import core.fancam.render  # noqa: F401
    import videos.fancams  # noqa: F401
    import videos.processing  # noqa: F401
    import videos.rendering  # noqa: F401


def _relabel(sender, version, **kwargs):
    from videos.relabel import group_relabel_request

    group_relabel_request(version=version)


def _tidy(video):
    from videos.folders import video_remove_unowned_files

    video_remove_unowned_files(video=video)
