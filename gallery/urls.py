from django.urls import path

from gallery import views

app_name = "gallery"
urlpatterns = [
    path("images/<uuid:uuid>/file/", views.image_file, name="file"),
    path("images/<uuid:uuid>/thumbnail.jpg", views.thumbnail, name="thumbnail"),
    path("images/<int:image_id>/face/", views.pick_face, name="pick_face"),
    path("members/<int:member_id>/photo.jpg", views.member_photo, name="member_photo"),
    path("members/<int:member_id>/uploads/", views.upload_create, name="upload_create"),
    path("uploads/<int:upload_id>.json", views.upload_status, name="upload_status"),
]
