from django.apps import AppConfig
from django.db.models.signals import post_delete


class GalleryConfig(AppConfig):
    name = "gallery"
    verbose_name = "Galleries"

    def ready(self):
        from gallery.models import GalleryImage, ImageUpload

        # A signal rather than delete(): it also fires for admin bulk deletes and for the
        # cascade when a member or group goes, which never call the model's delete().
        post_delete.connect(_delete_image_files, sender=GalleryImage, dispatch_uid="gallery-files")
        post_delete.connect(_delete_upload_file, sender=ImageUpload, dispatch_uid="upload-files")


def _delete_image_files(sender, instance, **kwargs):
    from base.storage import delete_files_on_commit

    delete_files_on_commit([instance.file.name], instance.file.storage)  # skips an empty name


def _delete_upload_file(sender, instance, **kwargs):
    from base.storage import delete_files_on_commit

    delete_files_on_commit([instance.file.name], instance.file.storage)  # skips an empty name
