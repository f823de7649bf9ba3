from django.apps import AppConfig
from django.db.models.signals import post_delete


class RecognitionConfig(AppConfig):
    name = "recognition"
    verbose_name = "Recognition"

    def ready(self):
        from base.worker import worker_warm
        from recognition.models import ModelVersion

        post_delete.connect(_delete_version_file, sender=ModelVersion, dispatch_uid="model-files")
        worker_warm.connect(_warm, dispatch_uid="recognition-warm")


def _warm(sender, **kwargs):
    from recognition.services import models_warm

    models_warm()


def _delete_version_file(sender, instance, **kwargs):
    from base.storage import delete_files_on_commit

    delete_files_on_commit([instance.file.name], instance.file.storage)
