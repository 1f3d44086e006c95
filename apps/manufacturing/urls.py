from django.urls import path

from apps.manufacturing import views

app_name = "manufacturing"
urlpatterns = [
    path("", views.index, name="index"),
]
