"""DICOMweb endpoints (mounted at /dicomweb/): STOW-RS store."""
from django.urls import path

from apps.medical.dicomweb import StowIntoStudyView, StowView

urlpatterns = [
    path("studies", StowView.as_view(), name="dicomweb-stow"),
    path("studies/<str:study_uid>", StowIntoStudyView.as_view(), name="dicomweb-stow-study"),
]
