from django.urls import path

from apps.finance import views

app_name = "finance"
urlpatterns = [
    path("", views.index, name="index"),
    path("new/", views.assessment_new, name="assessment_new"),
    path("assessments/", views.assessment_list, name="assessment_list"),
    path("assessments/export.csv", views.assessment_export, {"fmt": "csv"}, name="assessment_export_csv"),
    path("assessments/export.xlsx", views.assessment_export, {"fmt": "xlsx"}, name="assessment_export_xlsx"),
    path("assessments/<uuid:job_id>/", views.assessment_detail, name="assessment_detail"),
    path("assessments/<uuid:job_id>/status/", views.assessment_status, name="assessment_status"),
    path("assessments/<uuid:job_id>/review/", views.assessment_review, name="assessment_review"),
    path("assessments/<uuid:job_id>/report.pdf", views.assessment_pdf, name="assessment_pdf"),
    path("review/", views.review_queue, name="review_queue"),
    path("batches/", views.batch_upload, name="batch_upload"),
    path("upload/template.csv", views.csv_template, name="csv_template"),
    path("batches/<uuid:batch_id>/", views.batch_detail, name="batch_detail"),
    path("batches/<uuid:batch_id>/results.csv", views.batch_results, name="batch_results"),
    path("models/", views.model_list, name="model_list"),
    path("models/<int:version>/", views.model_detail, name="model_detail"),
    path("models/<int:version>/calibration.png", views.model_calibration_png, name="model_calibration"),
    path("models/<int:version>/activate/", views.model_activate, name="model_activate"),
    path("models/training/<uuid:job_id>/", views.training_detail, name="training_detail"),
]
