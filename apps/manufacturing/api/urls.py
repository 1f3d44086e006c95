from django.urls import path

from apps.manufacturing.api import views

urlpatterns = [
    path("uploads/", views.UploadCreateView.as_view(), name="manufacturing-upload-create"),
    path("uploads/<uuid:batch_id>/", views.UploadDetailView.as_view(), name="manufacturing-batch-detail"),
    path("uploads/<uuid:batch_id>/results.csv", views.UploadResultsView.as_view(),
         name="manufacturing-batch-results"),
    path("machines/", views.MachineListView.as_view(), name="manufacturing-machine-list"),
    path("machines/<str:machine_id>/", views.MachineDetailView.as_view(),
         name="manufacturing-machine-detail"),
    path("machines/<str:machine_id>/readings/", views.MachineReadingsView.as_view(),
         name="manufacturing-machine-readings"),
    path("predictions/<uuid:prediction_id>/", views.PredictionDetailView.as_view(),
         name="manufacturing-prediction-detail"),
    path("alerts/", views.AlertListView.as_view(), name="manufacturing-alert-list"),
    path("alerts/<uuid:alert_id>/", views.AlertDetailView.as_view(), name="manufacturing-alert-detail"),
    path("alerts/<uuid:alert_id>/acknowledge/", views.AlertActionView.as_view(action="acknowledge"),
         name="manufacturing-alert-acknowledge"),
    path("alerts/<uuid:alert_id>/resolve/", views.AlertActionView.as_view(action="resolve"),
         name="manufacturing-alert-resolve"),
    path("models/", views.ModelVersionListView.as_view(), name="manufacturing-model-list"),
    path("models/<int:version_id>/activate/", views.ModelActivateView.as_view(),
         name="manufacturing-model-activate"),
]
