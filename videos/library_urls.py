from django.urls import path

from videos import library_views

app_name = "library"
urlpatterns = [
    path("groups/", library_views.groups, name="groups"),
    path("groups/<slug:group>/", library_views.group_page, name="group"),
    path("groups/<slug:group>/<slug:member>/", library_views.member_page, name="member"),
]
