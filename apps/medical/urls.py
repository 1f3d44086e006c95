from django.urls import path

from apps.medical import views

app_name = "medical"
urlpatterns = [
    path("", views.index, name="index"),
    path("upload/", views.upload, name="upload"),
    path("uploads/<uuid:batch_id>/", views.batch_detail, name="batch_detail"),
    path("uploads/<uuid:batch_id>/live/", views.batch_partial, name="batch_partial"),
    path("studies/<uuid:study_id>/", views.study_detail, name="study_detail"),
    path("studies/<uuid:study_id>/status/", views.study_status, name="study_status"),
    path("studies/<uuid:study_id>/edit/", views.report_edit, name="report_edit"),
    path("studies/<uuid:study_id>/sign/", views.report_sign, name="report_sign"),
    path("studies/<uuid:study_id>/addenda/", views.addendum_add, name="addendum_add"),
    path("studies/<uuid:study_id>/download/<str:kind>/", views.download, name="download"),
    path("instances/<int:instance_id>/image.png", views.instance_image, name="instance_image"),
    path("key-images/<int:key_id>.png", views.key_image, name="key_image"),
]
