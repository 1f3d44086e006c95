"""REST endpoints of the finance app under /api/v1/finance/.

The services' refusals (``apps.finance.errors``: core's ``AppError``) propagate to the API's exception
handler, which answers them in the one error shape with their status; writes audit themselves.
"""
from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.finance import selectors, services
from apps.finance.api.serializers import (
    AssessmentCreateSerializer,
    AssessmentDetailSerializer,
    AssessmentSerializer,
    BatchCreateSerializer,
    FinanceBatchSerializer,
    ReviewCreateSerializer,
    ReviewSerializer,
)
from apps.finance.models import Assessment
from core import exports
from core.auth import HasRole
from core.selectors import batch_get_for_user
from core.uploads import upload_check

FinanceRole = HasRole("finance")


FILTER_PARAMS = [
    OpenApiParameter(name, description=desc, required=False, type=str) for name, desc in (
        ("q", "application id contains"), ("status", "queued, running, succeeded, failed, needs_review"),
        ("risk_level", "1, 2 or 3 (combined)"), ("llm_risk_level", "1, 2 or 3"),
        ("needs_review", "true/false"), ("review", "pending, reviewed, not_required"), ("batch", "batch id"),
        ("from", "YYYY-MM-DD"), ("to", "YYYY-MM-DD"), ("min_pd", "0-1"), ("max_pd", "0-1"),
        ("sort", "queued_at, application_id, risk_level, probability_of_default, score, status (- for desc)"),
    )
]


class AssessmentListCreateView(generics.GenericAPIView):
    """Submit one application (202) or list assessments (filtered, sorted, paginated)."""

    permission_classes = [FinanceRole]
    serializer_class = AssessmentSerializer

    def get_queryset(self):
        return selectors.assessment_filter(selectors.assessments_for_user(self.request.user),
                                           self.request.query_params)

    @extend_schema(parameters=FILTER_PARAMS, responses=AssessmentSerializer(many=True))
    def get(self, request):
        page = self.paginate_queryset(self.get_queryset())
        data = AssessmentSerializer(page, many=True, context={"request": request}).data
        return self.get_paginated_response(data)

    @extend_schema(request=AssessmentCreateSerializer, responses={202: AssessmentDetailSerializer})
    def post(self, request):
        form = AssessmentCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        job = services.assessment_create(
            owner=request.user, applicant=data.get("applicant") or {}, report=data.get("report") or "",
            language=data.get("language") or "en", application_id=data.get("application_id") or "",
            source=Assessment.Source.API, request=request,
        )
        return Response(AssessmentDetailSerializer(job, context={"request": request}).data,
                        status=status.HTTP_202_ACCEPTED)


def _assessment(request, job_id) -> Assessment:
    job = selectors.assessment_get_for_user(user=request.user, job_id=job_id)
    if job is None:
        raise Http404
    return job


class AssessmentDetailView(APIView):
    permission_classes = [FinanceRole]

    @extend_schema(responses=AssessmentDetailSerializer)
    def get(self, request, job_id):
        job = _assessment(request, job_id)
        services.read_audit(request, action="view", obj=job)
        return Response(AssessmentDetailSerializer(job, context={"request": request}).data)


class AssessmentReviewView(APIView):
    """Approve the model's risk level or override it (comment required); the final decision is stored
    apart."""

    permission_classes = [FinanceRole]

    @extend_schema(request=ReviewCreateSerializer, responses={201: ReviewSerializer})
    def post(self, request, job_id):
        job = _assessment(request, job_id)
        form = ReviewCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        review = services.assessment_review(
            assessment=job, reviewer=request.user, decision=form.validated_data["decision"],
            final_risk_level=form.validated_data.get("final_risk_level"),
            comment=form.validated_data.get("comment") or "", request=request,
        )
        job.refresh_from_db()
        return Response({"review": ReviewSerializer(review).data,
                         "assessment": AssessmentDetailSerializer(job, context={"request": request}).data},
                        status=status.HTTP_201_CREATED)


class BatchCreateView(APIView):
    """Upload a CSV of applications (multipart field ``file``); 202 with the batch and its ``results_url``."""

    permission_classes = [FinanceRole]
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(request={"multipart/form-data": BatchCreateSerializer},
                   responses={202: FinanceBatchSerializer})
    def post(self, request):
        upload_check(request.FILES.getlist("file"), field="file")
        form = BatchCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        batch = services.batch_create(owner=request.user, upload=form.validated_data["file"],
                                      language=form.validated_data.get("language") or "en", request=request)
        return Response(FinanceBatchSerializer(batch, context={"request": request}).data,
                        status=status.HTTP_202_ACCEPTED)


def _batch(request, batch_id):
    batch = batch_get_for_user(user=request.user, batch_id=batch_id)
    if batch is None or batch.app != "finance":
        raise Http404
    return batch


class BatchDetailView(APIView):
    permission_classes = [FinanceRole]

    @extend_schema(responses=FinanceBatchSerializer)
    def get(self, request, batch_id):
        return Response(FinanceBatchSerializer(_batch(request, batch_id), context={"request": request}).data)


class BatchResultsView(APIView):
    """The batch's results as CSV: one row per application (good and bad rows), keyed by application_id."""

    permission_classes = [FinanceRole]

    @extend_schema(responses={(200, "text/csv"): str})
    def get(self, request, batch_id):
        batch = _batch(request, batch_id)
        services.read_audit(request, action="export", obj=batch, detail={"format": "csv"})
        name = (batch.original_filename or "batch").rsplit(".", 1)[0][:60]
        return exports.rows_to_csv_response(f"{name}-results.csv", selectors.EXPORT_COLUMNS,
                                            selectors.batch_result_rows(batch))


class CreditModelListView(APIView):
    """Scorecard versions with their metrics (which one is active)."""

    permission_classes = [FinanceRole]

    @extend_schema(responses=dict)
    def get(self, request):
        return Response({"results": [
            {"version": m.version, "algorithm": m.algorithm, "is_active": m.is_active, "metrics": m.metrics,
             "data_sha256": m.data_sha256, "rows": m.data_rows, "created_at": m.created_at,
             "activated_at": m.activated_at, "cutoffs": m.metadata.get("cutoffs"),
             "score_scale": m.metadata.get("score_scale")}
            for m in selectors.credit_model_list()
        ]})
