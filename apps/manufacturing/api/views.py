"""Manufacturing REST endpoints: uploads (sensor CSV), machines (ranked, readings push, thresholds),
predictions, alerts (acknowledge, resolve) and failure-model versions."""
from __future__ import annotations

from django.http import Http404
from django.utils.translation import get_language
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.manufacturing import selectors, services
from apps.manufacturing.api.serializers import (
    FailureModelVersionSerializer,
    FailurePredictionSerializer,
    MachineAlertActionSerializer,
    MachineAlertSerializer,
    MachineSerializer,
    MachineThresholdsSerializer,
    SensorUploadCreateSerializer,
    SensorUploadSerializer,
)
from apps.manufacturing.models import Alert, FailureModelVersion
from core.auth import HasRole
from core.exports import rows_to_csv_response
from core.selectors import batch_get_for_user
from core.uploads import upload_check

ROLE = "manufacturing"


def _machine_or_404(machine_id: str):
    machine = selectors.machine_get(machine_id=machine_id)
    if machine is None:
        raise NotFound(f"unknown machine '{machine_id}': upload a sensor file that names it first, or check "
                       "the id")
    return machine


def _language(request) -> str:
    return get_language() or "en"


class UploadCreateView(APIView):
    """Upload a sensor CSV (multipart field ``file``); one prediction per machine is queued."""

    permission_classes = [HasRole(ROLE)]
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(request=SensorUploadCreateSerializer, responses={202: SensorUploadSerializer})
    def post(self, request):
        upload = request.FILES.get("file")
        upload_check([upload] if upload else [], field="file")
        batch = services.upload_create(owner=request.user, upload=upload, language=_language(request),
                                       request=request)
        return Response(SensorUploadSerializer(batch, context={"request": request}).data,
                        status=status.HTTP_202_ACCEPTED)


def _batch_or_404(request, batch_id):
    batch = batch_get_for_user(user=request.user, batch_id=batch_id)
    if batch is None or batch.app != "manufacturing":
        raise NotFound("no such upload, or not one your roles allow")
    return batch


class UploadDetailView(APIView):
    permission_classes = [HasRole(ROLE)]

    @extend_schema(responses=SensorUploadSerializer)
    def get(self, request, batch_id):
        batch = _batch_or_404(request, batch_id)
        return Response(SensorUploadSerializer(batch, context={"request": request}).data)


class UploadResultsView(APIView):
    """The upload's results: one CSV row per machine, keyed by ``machine_id`` (``llm_*`` columns
    flattened)."""

    permission_classes = [HasRole(ROLE)]

    @extend_schema(responses={(200, "text/csv"): str})
    def get(self, request, batch_id):
        batch = _batch_or_404(request, batch_id)
        rows = [selectors.prediction_row(p) for p in selectors.batch_predictions(batch=batch)]
        services.read_audit(request, action="export", obj=batch, detail={"format": "csv"})
        return rows_to_csv_response(f"manufacturing-{batch.pk}.csv", selectors.RESULT_COLUMNS, rows)


class MachineListView(generics.ListAPIView):
    """Machines ranked by risk (calibrated failure probability, then remaining life, then anomaly score)."""

    permission_classes = [HasRole(ROLE)]
    serializer_class = MachineSerializer

    def get_queryset(self):
        return selectors.fleet_ranked()

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        offset = 0
        if self.paginator is not None and getattr(self.paginator, "page", None) is not None:
            offset = (self.paginator.page.number - 1) * self.paginator.get_page_size(request)
        for i, machine in enumerate(page):
            machine._rank = offset + i + 1
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


class MachineDetailView(APIView):
    permission_classes = [HasRole(ROLE)]

    @extend_schema(responses=MachineSerializer)
    def get(self, request, machine_id):
        machine = _machine_or_404(machine_id)
        services.read_audit(request, action="view", obj=machine)
        return Response(MachineSerializer(machine, context={"request": request}).data)

    @extend_schema(request=MachineThresholdsSerializer, responses=MachineSerializer)
    def patch(self, request, machine_id):
        """Set the machine's alert thresholds (null returns to the default), name or location."""
        machine = _machine_or_404(machine_id)
        form = MachineThresholdsSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        p = data.get("probability_threshold", machine.probability_threshold)
        r = data.get("rul_threshold", machine.rul_threshold)
        machine = services.machine_thresholds_update(
            machine=machine, probability_threshold=p, rul_threshold=r, name=data.get("name"),
            location=data.get("location"), user=request.user, request=request)
        return Response(MachineSerializer(machine, context={"request": request}).data)


#: The OpenAPI request body of a readings push.
READINGS_REQUEST = {"application/json": {
    "type": "object",
    "properties": {"readings": {"type": "array", "items": {"type": "object"}}},
    "example": {"readings": [{"cycle": 201, "sensor": "sensor_2", "value": 642.9}]},
}}


class MachineReadingsView(APIView):
    """Push readings for one known machine (JSON); stores them and queues a new prediction (202)."""

    permission_classes = [HasRole(ROLE)]
    parser_classes = [JSONParser]

    @extend_schema(request=READINGS_REQUEST, responses={202: FailurePredictionSerializer})
    def post(self, request, machine_id):
        machine = _machine_or_404(machine_id)
        payload = request.data
        if not isinstance(payload, (list, dict)) or (isinstance(payload, dict) and "readings" not in payload):
            raise ValidationError(
                {"readings": 'send a JSON list of readings, or an object {"readings": [...]}'})
        # ReadingsRejected (an InputError) is answered by core's handler: 400 with details.readings
        prediction, result = services.readings_push(owner=request.user, machine=machine, payload=payload,
                                                    language=_language(request), request=request)
        data = FailurePredictionSerializer(prediction, context={"request": request}).data
        data["ingest"] = {"readings": result.readings, "readings_kept": result.readings_kept,
                          "errors": [services.issue_text(e) for e in result.errors],
                          "warnings": [services.issue_text(w) for w in result.warnings]}
        return Response(data, status=status.HTTP_202_ACCEPTED)


class PredictionDetailView(APIView):
    permission_classes = [HasRole(ROLE)]

    @extend_schema(responses=FailurePredictionSerializer)
    def get(self, request, prediction_id):
        prediction = selectors.prediction_get(prediction_id=prediction_id)
        if prediction is None:
            raise Http404
        services.read_audit(request, action="view", obj=prediction)
        return Response(FailurePredictionSerializer(prediction, context={"request": request}).data)


class AlertListView(generics.ListAPIView):
    """Alerts, open first (``?status=open|acknowledged|resolved``, ``?machine_id=``)."""

    permission_classes = [HasRole(ROLE)]
    serializer_class = MachineAlertSerializer

    @extend_schema(parameters=[OpenApiParameter("status", str), OpenApiParameter("machine_id", str)])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        wanted = self.request.query_params.get("status") or None
        if wanted and wanted not in Alert.Status.values:
            raise ValidationError({"status": f"must be one of {', '.join(Alert.Status.values)}"})
        machine = None
        if self.request.query_params.get("machine_id"):
            machine = _machine_or_404(self.request.query_params["machine_id"])
        return selectors.alert_list(status=wanted, machine=machine)


class AlertDetailView(APIView):
    permission_classes = [HasRole(ROLE)]

    @extend_schema(responses=MachineAlertSerializer)
    def get(self, request, alert_id):
        alert = selectors.alert_get(alert_id=alert_id)
        if alert is None:
            raise Http404
        return Response(MachineAlertSerializer(alert, context={"request": request}).data)


class AlertActionView(APIView):
    """Acknowledge or resolve an alert (with an optional note)."""

    permission_classes = [HasRole(ROLE)]
    action = "acknowledge"

    @extend_schema(request=MachineAlertActionSerializer, responses=MachineAlertSerializer)
    def post(self, request, alert_id):
        alert = selectors.alert_get(alert_id=alert_id)
        if alert is None:
            raise Http404
        form = MachineAlertActionSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        # an already resolved alert: AlertAlreadyResolved (a ConflictError), 409 from core's handler
        act = services.alert_resolve if self.action == "resolve" else services.alert_acknowledge
        alert = act(alert=alert, user=request.user, note=form.validated_data["note"], request=request)
        return Response(MachineAlertSerializer(alert, context={"request": request}).data)


class ModelVersionListView(generics.ListAPIView):
    """Failure-model versions (the active one first) with their cross-validation metrics."""

    permission_classes = [HasRole(ROLE)]
    serializer_class = FailureModelVersionSerializer

    def get_queryset(self):
        return FailureModelVersion.objects.order_by("-is_active", "-created_at")


class ModelActivateView(APIView):
    """Make a version the one predictions use (admin)."""

    permission_classes = [HasRole("admin")]

    @extend_schema(request=None, responses=FailureModelVersionSerializer)
    def post(self, request, version_id):
        version = FailureModelVersion.objects.filter(pk=version_id).first()
        if version is None:
            raise Http404
        services.failure_model_activate(version=version, user=request.user, request=request)
        return Response(FailureModelVersionSerializer(version, context={"request": request}).data)
