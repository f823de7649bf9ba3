from django.contrib import admin
from django.urls import include, path

from base import views as base_views
from twicesite import views

# Django's admin says "Django administration" unless told; curators work in twicesite's.
admin.site.site_header = "twicesite admin"
admin.site.site_title = "twicesite admin"

urlpatterns = [
    path("", views.home, name="home"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("gallery/", include("gallery.urls")),
    path("", include("videos.urls")),
    path("", include("videos.library_urls")),
    path("", include("recognition.urls")),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/rq/", include("django_rq.urls")),
    path("admin/jobs/", admin.site.admin_view(base_views.jobs_page), name="admin-jobs"),
    path(
        "admin/jobs/jobs.json", admin.site.admin_view(base_views.jobs_data), name="admin-jobs-data"
    ),
    path(
        "admin/jobs/<str:key>/<str:action>/",
        admin.site.admin_view(base_views.job_action),
        name="admin-job-action",
    ),
    path("admin/", admin.site.urls),
]
