"""REST endpoints of the medical app (Bearer token or session; the ``medical`` role)."""
from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.medical import selectors, services
from apps.medical.api.serializers import (
    AddendumSerializer,
    ReportEditSerializer,
    SignSerializer,
    StudySerializer,
    StudySummarySerializer,
    UploadCreateSerializer,
    UploadSerializer,
)
from apps.medical.models import Instance, Study
from core.api.pagination import Pagination
from core.auth import HasRole
from core.errors import ConflictError
from core.exports import rows_to_csv_response
from core.models import Batch

MEDICAL = [HasRole("medical")]
# Refusals are core.errors.AppError subclasses (apps.medical.errors): the API's exception handler answers
# each with its status in the one error shape, so the views here only call the services.


def _study_or_404(request, study_id) -> Study:
    study = selectors.study_get_for_user(user=request.user, study_id=study_id)
    if study is None:
        raise NotFound("no such study")
    return study


def _report_or_409(study: Study):
    report = selectors.study_report(study=study)
    if report is None:
        raise ConflictError(f"the study has no report yet (status {study.status})", code="report_not_ready")
    return report


def _flag(request, name: str) -> bool:
    return request.query_params.get(name, "").lower() in ("1", "true", "yes")


class StudyListCreateView(APIView):
    """``GET``: the studies (worklist filters ``?status=todo|draft|final|failed|processing|all``).
    ``POST``: upload DICOM files and/or ZIPs (repeated field ``files``) plus an optional ``indication``;
    answers 202 with the upload (one upload may hold several studies)."""

    permission_classes = MEDICAL
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(responses=StudySummarySerializer(many=True),
                   parameters=[OpenApiParameter("status", str, enum=list(selectors.WORKLIST_FILTERS)),
                               OpenApiParameter("q", str)])
    def get(self, request):
        wanted = request.query_params.get("status", "all")
        if wanted not in selectors.WORKLIST_FILTERS:
            raise ValidationError({"status": f"must be one of {', '.join(selectors.WORKLIST_FILTERS)}"})
        studies = selectors.worklist(user=request.user, status=wanted,
                                     query=request.query_params.get("q", ""), limit=5000)
        paginator = Pagination()
        page = paginator.paginate_queryset(studies, request, view=self)
        return paginator.get_paginated_response(
            StudySummarySerializer(page, many=True, context={"request": request}).data)

    @extend_schema(request={"multipart/form-data": UploadCreateSerializer},
                   responses={202: UploadSerializer, 400: OpenApiResponse(description="no file, hostile ZIP"),
                              413: OpenApiResponse(description="over the upload limit")})
    def post(self, request):
        services.upload_length_check(request.META.get("CONTENT_LENGTH"))
        files = request.FILES.getlist("files") or request.FILES.getlist("file")
        services.upload_files_check(files)
        form = UploadCreateSerializer(data={"files": files, "indication": request.data.get("indication", ""),
                                            "language": request.data.get("language") or "en"})
        form.is_valid(raise_exception=True)
        batch = services.upload_create(owner=request.user, files=files, source="api", request=request,
                                       indication=form.validated_data.get("indication", ""),
                                       language=form.validated_data["language"])
        return Response(UploadSerializer(batch, context={"request": request}).data,
                        status=status.HTTP_202_ACCEPTED)


class StudyDetailView(APIView):
    permission_classes = MEDICAL

    @extend_schema(responses=StudySerializer,
                   parameters=[OpenApiParameter("include", str, description="'identity' adds the original "
                                                "patient identifiers (audited)")])
    def get(self, request, study_id):
        study = _study_or_404(request, study_id)
        include_identity = "identity" in request.query_params.get("include", "").split(",")
        services.study_view_record(user=request.user, study=study, request=request, via="api",
                                   identity=include_identity)
        return Response(StudySerializer(study, context={"request": request,
                                                        "include_identity": include_identity}).data)


class ReportEditView(APIView):
    """Edit the draft's sections (a signed report answers 409: add an addendum instead)."""

    permission_classes = MEDICAL
    parser_classes = [JSONParser]

    @extend_schema(request=ReportEditSerializer, responses=StudySerializer)
    def patch(self, request, study_id):
        study = _study_or_404(request, study_id)
        report = _report_or_409(study)
        form = ReportEditSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        services.report_edit(report=report, user=request.user, sections=form.validated_data, request=request)
        return Response(StudySerializer(study, context={"request": request}).data)


class SignView(APIView):
    """Sign the report (name, time): it becomes final, COMPLETE/VERIFIED in the SR, never edited again."""

    permission_classes = MEDICAL
    parser_classes = [JSONParser, FormParser, MultiPartParser]

    @extend_schema(request=SignSerializer, responses=StudySerializer)
    def post(self, request, study_id):
        study = _study_or_404(request, study_id)
        report = _report_or_409(study)
        form = SignSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        services.report_sign(report=report, user=request.user, name=form.validated_data["name"],
                             organization=form.validated_data.get("organization", ""), request=request)
        return Response(StudySerializer(study, context={"request": request}).data)


class AddendumView(APIView):
    permission_classes = MEDICAL
    parser_classes = [JSONParser, FormParser, MultiPartParser]

    @extend_schema(request=AddendumSerializer, responses={201: StudySerializer})
    def post(self, request, study_id):
        study = _study_or_404(request, study_id)
        report = _report_or_409(study)
        form = AddendumSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        services.addendum_add(report=report, user=request.user, text=form.validated_data["text"],
                              name=form.validated_data.get("name", ""), request=request)
        return Response(StudySerializer(study, context={"request": request}).data,
                        status=status.HTTP_201_CREATED)


class _Download(APIView):
    """Report downloads; ``?deidentified=1`` gives the de-identified variant (default: the hospital's
    own identifiers, for its PACS and EHR)."""

    permission_classes = MEDICAL
    kind = ""

    def perform_content_negotiation(self, request, force=False):
        # Clients ask for application/pdf, application/dicom or application/fhir+json: errors stay JSON.
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(parameters=[OpenApiParameter("deidentified", bool)],
                   responses={(200, "application/octet-stream"): OpenApiResponse(description="the document")})
    def get(self, request, study_id):
        study = _study_or_404(request, study_id)
        _report_or_409(study)
        identified = not _flag(request, "deidentified")
        return download_response(request, study, self.kind, identified, via="api")


def download_response(request, study: Study, kind: str, identified: bool, *, via: str) -> HttpResponse:
    """The PDF, SR or FHIR document of a study's report as an attachment, its download audited once
    (shared by the page and the API). Raises :class:`~core.errors.ConflictError` (409) when the report
    cannot be turned into that document."""
    doc = services.study_document(study=study, kind=kind, identified=identified)
    services.study_export_record(user=request.user, study=study, request=request, kind=kind,
                                 identified=identified, via=via)
    response = HttpResponse(doc.body, content_type=doc.content_type)
    response["Content-Disposition"] = f'attachment; filename="{doc.filename}"'
    response["Cache-Control"] = "private, no-store"
    return response


class PdfView(_Download):
    kind = "pdf"


class SrView(_Download):
    kind = "sr"


class FhirView(_Download):
    kind = "fhir"


def _batch_or_404(request, batch_id) -> Batch:
    batch = Batch.objects.filter(pk=batch_id, app="medical").first()
    if batch is None:
        raise NotFound("no such upload")
    return batch


class UploadDetailView(APIView):
    permission_classes = MEDICAL

    @extend_schema(responses=UploadSerializer)
    def get(self, request, batch_id):
        batch = _batch_or_404(request, batch_id)
        return Response(UploadSerializer(batch, context={"request": request}).data)


RESULT_COLUMNS = ["file_name", "status", "error_code", "error", "study_id", "study_status", "modality",
                  "transfer_syntax", "frames", "series_instance_uid", "sop_instance_uid", "report_status",
                  "report_ai_generated", "report_impression", "report_postcheck_warnings"]


def upload_result_rows(batch: Batch) -> list[dict]:
    """One row per uploaded file (keyed by its name), with its study's status and draft impression."""
    rows = []
    studies = {s.pk: s for s in selectors.batch_studies(batch=batch)}
    reports = {}
    for inst in selectors.batch_files(batch=batch):
        study = studies.get(inst.study_id)
        report = None
        if study is not None:
            if study.pk not in reports:
                reports[study.pk] = selectors.study_report(study=study)
            report = reports[study.pk]
        error = inst.error_message
        if not error and study is not None and study.error_code:
            error = f"study failed: {study.error_message}"
        study_failed = inst.status == Instance.Status.OK and study is not None and study.status == "failed"
        rows.append({
            "file_name": inst.file_name,
            "status": "failed" if study_failed else inst.status,
            "error_code": inst.error_code or (study.error_code if study else ""),
            "error": error,
            "study_id": str(study.pk) if study else "",
            "study_status": study.status if study else "",
            "modality": inst.modality,
            "transfer_syntax": inst.transfer_syntax,
            "frames": inst.frames,
            "series_instance_uid": inst.series.series_instance_uid if inst.series_id else "",
            "sop_instance_uid": inst.sop_instance_uid,
            "report_status": report.status if report else "",
            "report_ai_generated": report.ai_generated if report else "",
            "report_impression": report.sections.get("impression", "") if report else "",
            "report_postcheck_warnings": "; ".join(report.postcheck_warnings) if report else "",
        })
    if not rows and batch.errors:
        rows = [{"file_name": batch.original_filename, "status": "error", "error": "; ".join(batch.errors)}]
    return rows


class UploadResultsView(APIView):
    permission_classes = MEDICAL

    def perform_content_negotiation(self, request, force=False):
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(responses={(200, "text/csv"): OpenApiResponse(description="one row per uploaded file")})
    def get(self, request, batch_id):
        batch = _batch_or_404(request, batch_id)
        services.upload_results_export_record(user=request.user, batch=batch, request=request, via="api")
        return rows_to_csv_response(f"medical-upload-{str(batch.pk)[:8]}.csv", RESULT_COLUMNS,
                                    upload_result_rows(batch))
