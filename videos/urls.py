from django.urls import path, re_path

from videos import exports, review_views, views

app_name = "videos"
urlpatterns = [
    path("videos/", views.video_list, name="list"),
    path("videos/upload/", views.upload, name="upload"),
    path("videos/<uuid:uuid>/", views.watch, name="watch"),
    path("videos/<uuid:uuid>/progress.json", views.progress, name="progress"),
    path("videos/<uuid:uuid>/panels/", views.panels, name="panels"),
    path("videos/<uuid:uuid>/retry/", views.retry, name="retry"),
    path("videos/<uuid:uuid>/delete/", views.delete, name="delete"),
    path("videos/<uuid:uuid>/edit/", views.edit, name="edit"),
    path("videos/<uuid:uuid>/review/", review_views.review, name="review"),
    path("videos/<uuid:uuid>/corrections/", review_views.correct, name="correct"),
    path(
        "videos/<uuid:uuid>/suggestions/<int:pk>/",
        review_views.suggestion_decide,
        name="suggestion",
    ),
    path("videos/<uuid:uuid>/tracks/<int:number>.jpg", review_views.thumbnail, name="thumbnail"),
    path("videos/<uuid:uuid>/fancams/", views.fancam_create, name="fancams"),
    path("videos/<uuid:uuid>/fancams/<int:pk>.json", views.fancam_status, name="fancam_status"),
    path("videos/<uuid:uuid>/fancams/<int:pk>.mp4", views.fancam_file, name="fancam_file"),
    re_path(
        r"^videos/(?P<uuid>[0-9a-f-]{36})/(?P<kind>labelled|original|preview)\.mp4$",
        views.media_file,
        name="file",
    ),
    re_path(
        rf"^api/videos/(?P<uuid>[0-9a-f-]{{36}})/predictions\.(?P<fmt>{'|'.join(exports.FORMATS)})$",
        views.predictions,
        name="predictions",
    ),
    path("curate/unknown-faces/", review_views.unknown_faces_any, name="unknowns_any"),
    path("curate/<slug:slug>/unknown-faces/", review_views.unknown_faces, name="unknowns"),
    path("accounts/signup/", views.signup, name="signup"),
]
