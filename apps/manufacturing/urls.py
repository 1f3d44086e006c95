from django.urls import path

from apps.manufacturing import views

app_name = "manufacturing"
urlpatterns = [
    path("", views.index, name="index"),
    path("fleet.<str:fmt>", views.fleet_export, name="fleet_export"),
    path("upload/", views.upload, name="upload"),
    path("upload/template.csv", views.csv_template, name="csv_template"),
    path("uploads/<uuid:batch_id>/", views.batch_detail, name="batch_detail"),
    path("uploads/<uuid:batch_id>/results/", views.batch_results_partial, name="batch_results"),
    path("uploads/<uuid:batch_id>/results.<str:fmt>", views.batch_export, name="batch_export"),
    path("machines/<str:machine_id>/", views.machine_detail, name="machine_detail"),
    path("predictions/<uuid:prediction_id>/", views.prediction_detail, name="prediction_detail"),
    path("predictions/<uuid:prediction_id>/status/", views.prediction_status_partial,
         name="prediction_status"),
    path("alerts/", views.alerts, name="alerts"),
    path("alerts.<str:fmt>", views.alerts_export, name="alerts_export"),
    path("alerts/<uuid:alert_id>/<str:action>/", views.alert_action, name="alert_action"),
    path("models/", views.models_page, name="models"),
    path("models/<int:version_id>/activate/", views.model_activate, name="model_activate"),
    path("training/<uuid:training_id>/", views.training_detail, name="training_detail"),
    path("training/<uuid:training_id>/status/", views.training_status_partial, name="training_status"),
]
