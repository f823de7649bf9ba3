from django.contrib import admin
from django.urls import include, path

from twicesite import views

urlpatterns = [
    path("", views.home, name="home"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("gallery/", include("gallery.urls")),
    path("", include("videos.urls")),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/rq/", include("django_rq.urls")),
    path("admin/", admin.site.urls),
]
