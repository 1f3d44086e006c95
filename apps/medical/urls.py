from django.urls import path

from apps.medical import views

app_name = "medical"
urlpatterns = [
    path("", views.index, name="index"),
]
