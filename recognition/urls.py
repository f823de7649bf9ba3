from django.urls import path

from recognition import views

app_name = "recognition"
urlpatterns = [
    path("identify/", views.identify_page, name="identify"),
    path("api/groups/<slug:slug>/identify", views.identify_api, name="identify_api"),
]
