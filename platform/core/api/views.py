"""Platform endpoints: the caller's jobs across apps, one job, diagnostics, who am I."""
from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import generics, status
from rest_framework import serializers as drf_serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from core import services
from core.api.serializers import DiagnosticCreateSerializer, DiagnosticSerializer, GenericJobSerializer
from core.audit import audit_record
from core.auth import HasRole
from core.models import JobStatus
from core.roles import user_roles
from core.selectors import job_get_for_user, job_list_for_user


class JobListView(generics.ListAPIView):
    """The caller's jobs of every app their roles allow, newest first (``?status=`` filters)."""

    serializer_class = GenericJobSerializer

    def get_queryset(self):
        wanted = self.request.query_params.get("status") or None
        if wanted and wanted not in JobStatus.values:
            from rest_framework.exceptions import ValidationError

            raise ValidationError({"status": f"must be one of {', '.join(JobStatus.values)}"})
        return job_list_for_user(user=self.request.user, limit=500, status=wanted)


class JobDetailView(APIView):
    @extend_schema(responses=GenericJobSerializer)
    def get(self, request, job_id):
        job = job_get_for_user(user=request.user, job_id=job_id)
        if job is None:
            raise Http404
        return Response(GenericJobSerializer(job, context={"request": request}).data)


class DiagnosticCreateView(APIView):
    """Run a platform self-test job (admin): web → queue → worker → model service → database."""

    permission_classes = [HasRole("admin")]

    @extend_schema(request=DiagnosticCreateSerializer, responses={202: DiagnosticSerializer})
    def post(self, request):
        form = DiagnosticCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        job = services.diagnostic_job_create(owner=request.user, **form.validated_data)
        audit_record(actor=request.user, action="submit", obj=job, request=request)
        return Response(DiagnosticSerializer(job, context={"request": request}).data,
                        status=status.HTTP_202_ACCEPTED)


class MeView(APIView):
    """Who the caller is and which roles they have."""

    @extend_schema(responses=inline_serializer("Me", {
        "username": drf_serializers.CharField(),
        "roles": drf_serializers.ListField(child=drf_serializers.CharField()),
    }))
    def get(self, request):
        return Response({"username": request.user.username, "roles": sorted(user_roles(request.user))})
