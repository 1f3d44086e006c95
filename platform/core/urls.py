from django.urls import path

from core import views

app_name = "core"
urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("dashboard/activity/", views.dashboard_activity, name="dashboard_activity"),
    path("jobs/<uuid:job_id>/", views.job_detail, name="job_detail"),
    path("jobs/<uuid:job_id>/status/", views.job_status_partial, name="job_status"),
    path("batches/<uuid:batch_id>/", views.batch_detail, name="batch_detail"),
    path("batches/<uuid:batch_id>/progress/", views.batch_progress_partial, name="batch_progress"),
    path("diagnostics/run/", views.diagnostic_run, name="diagnostic_run"),
    path("tokens/", views.tokens, name="tokens"),
    path("help/", views.help_page, name="help"),
    path("prompts/", views.prompts_page, name="prompts"),
    path("status/", views.service_status, name="service_status"),
]
