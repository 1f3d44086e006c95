from django.urls import path

from apps.finance.api import views

urlpatterns = [
    path("assessments/", views.AssessmentListCreateView.as_view(), name="finance-assessment-list"),
    path("assessments/<uuid:job_id>/", views.AssessmentDetailView.as_view(),
         name="finance-assessment-detail"),
    path("assessments/<uuid:job_id>/review/", views.AssessmentReviewView.as_view(),
         name="finance-assessment-review"),
    path("batches/", views.BatchCreateView.as_view(), name="finance-batch-create"),
    path("batches/<uuid:batch_id>/", views.BatchDetailView.as_view(), name="finance-batch-detail"),
    path("batches/<uuid:batch_id>/results.csv", views.BatchResultsView.as_view(),
         name="finance-batch-results"),
    path("models/", views.CreditModelListView.as_view(), name="finance-model-list"),
]
