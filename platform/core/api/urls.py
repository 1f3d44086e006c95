from django.urls import path

from core.api import views

urlpatterns = [
    path("jobs/", views.JobListView.as_view(), name="job-list"),
    path("jobs/<uuid:job_id>/", views.JobDetailView.as_view(), name="job-detail"),
    path("diagnostics/", views.DiagnosticCreateView.as_view(), name="diagnostic-create"),
    path("me/", views.MeView.as_view(), name="me"),
]
