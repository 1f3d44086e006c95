from django.urls import path

from apps.medical.api import views

urlpatterns = [
    path("studies/", views.StudyListCreateView.as_view(), name="medical-study-list"),
    path("studies/<uuid:study_id>/", views.StudyDetailView.as_view(), name="medical-study-detail"),
    path("studies/<uuid:study_id>/report/", views.ReportEditView.as_view(), name="medical-study-report"),
    path("studies/<uuid:study_id>/sign/", views.SignView.as_view(), name="medical-study-sign"),
    path("studies/<uuid:study_id>/addenda/", views.AddendumView.as_view(), name="medical-study-addenda"),
    path("studies/<uuid:study_id>/report.pdf", views.PdfView.as_view(), name="medical-study-pdf"),
    path("studies/<uuid:study_id>/report-sr.dcm", views.SrView.as_view(), name="medical-study-sr"),
    path("studies/<uuid:study_id>/report-fhir.json", views.FhirView.as_view(), name="medical-study-fhir"),
    path("uploads/<uuid:batch_id>/", views.UploadDetailView.as_view(), name="medical-batch-detail"),
    path("uploads/<uuid:batch_id>/results.csv", views.UploadResultsView.as_view(),
         name="medical-batch-results"),
]
