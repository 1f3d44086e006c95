"""Medical reads: the worklist, one study with its parts, an upload's studies and files."""
from __future__ import annotations

from django.db.models import Q, QuerySet

from apps.medical.models import Instance, KeyImage, Report, Series, Study
from core.models import Batch
from core.roles import user_has_role

WORKLIST_FILTERS = ("todo", "draft", "final", "failed", "processing", "all")


def study_queryset_for_user(*, user) -> QuerySet[Study]:
    """Every study a medical-role user may see (the department's worklist), else none."""
    if not user_has_role(user, "medical"):
        return Study.objects.none()
    return Study.objects.all()


def study_first_upload(*, study_instance_uid: str, original_study_instance_uid: str = "",
                       exclude_batch_id=None) -> Study | None:
    """The first stored upload of a study, for a new upload of it (``Study.duplicate_of``).

    The de-identified Study Instance UID is a keyed hash of the original (HMAC with the installation's
    salt), so equal originals give equal de-identified UIDs; the identity row's original UID is the
    fallback for studies stored under another salt (a changed ``SECRET_KEY``). The worklist is the
    department's (every medical user sees every study), so an earlier upload by anyone counts.
    """
    match = Q(study_instance_uid=study_instance_uid) if study_instance_uid else Q(pk__in=[])
    if original_study_instance_uid:
        match |= Q(identity__original_study_instance_uid=original_study_instance_uid)
    qs = Study.objects.filter(match)
    if exclude_batch_id is not None:
        qs = qs.exclude(batch_id=exclude_batch_id)
    return qs.order_by("queued_at", "pk").first()


def study_get_for_user(*, user, study_id) -> Study | None:
    return (study_queryset_for_user(user=user).select_related("batch", "duplicate_of")
            .filter(pk=study_id).first())


def worklist(*, user, status: str = "todo", query: str = "", limit: int = 200) -> list[Study]:
    """The radiologist's worklist, newest first.

    ``todo``: drafts awaiting review and studies still processing; ``draft``; ``final``; ``failed``;
    ``processing``; ``all``. ``query`` matches patient name or ID, accession number (original
    identifiers: the caller has the medical role), modality or description.
    """
    qs = study_queryset_for_user(user=user).select_related("report", "identity", "duplicate_of")
    if status == "todo":
        qs = qs.filter(Q(report__status=Report.Status.DRAFT) | Q(status__in=["queued", "running"]))
    elif status == "draft":
        qs = qs.filter(report__status=Report.Status.DRAFT)
    elif status == "final":
        qs = qs.filter(report__status=Report.Status.FINAL)
    elif status == "failed":
        qs = qs.filter(status="failed")
    elif status == "processing":
        qs = qs.filter(status__in=["queued", "running"])
    query = (query or "").strip()
    if query:
        qs = qs.filter(Q(identity__patient_name__icontains=query) | Q(identity__patient_id__icontains=query)
                       | Q(identity__accession_number__icontains=query) | Q(modality__icontains=query)
                       | Q(description__icontains=query) | Q(body_part__icontains=query))
    return list(qs.order_by("-queued_at")[:limit])


def study_report(*, study: Study) -> Report | None:
    return Report.objects.filter(study=study).first()


def study_series(*, study: Study) -> list[Series]:
    return list(study.series.order_by("order"))


def study_key_images(*, study: Study) -> list[KeyImage]:
    return list(study.key_images.select_related("series", "instance").defer("png").order_by("order"))


def study_stacks(*, study: Study) -> list[dict]:
    """Per series, every frame in slice order as (instance id, frame): what the viewer scrolls through."""
    out = []
    for series in study_series(study=study):
        frames = []
        for inst in series.instances.filter(status=Instance.Status.OK).order_by("order").only("pk", "frames"):
            frames.extend([inst.pk, f] for f in range(max(inst.frames, 1)))
        out.append({"series": series, "frames": frames})
    return out


def batch_studies(*, batch: Batch) -> list[Study]:
    studies = list(Study.objects.filter(batch=batch).select_related("report", "duplicate_of")
                   .order_by("queued_at"))
    for s in studies:
        report = getattr(s, "report", None) if has_report(s) else None
        s.report_status = report.status if report else None
    return studies


def batch_studies_already_uploaded(*, batch: Batch) -> int:
    """How many of an upload's studies repeat a study uploaded before."""
    return Study.objects.filter(batch=batch, duplicate_of__isnull=False).count()


def has_report(study: Study) -> bool:
    try:
        study.report  # noqa: B018 - reading the reverse one-to-one
    except Report.DoesNotExist:
        return False
    return True


def batch_files(*, batch: Batch) -> list[Instance]:
    files = Instance.objects.filter(batch=batch).select_related("series")
    return list(files.order_by("study_id", "series__order", "order", "file_name"))


def medical_batches_for_user(*, user, limit: int = 10) -> list[Batch]:
    if not user_has_role(user, "medical"):
        return []
    return list(Batch.objects.filter(app="medical", owner=user).order_by("-created_at")[:limit])


def attention(*, user) -> list[dict]:
    """The dashboard's registry hook (``MedicalConfig.attention``): what waits for this radiologist."""
    from django.urls import reverse
    from django.utils.translation import gettext as _

    studies = study_queryset_for_user(user=user)
    index = reverse("medical:index")
    return [
        {"label": _("Drafts waiting for signature"),
         "count": studies.filter(report__status=Report.Status.DRAFT).count(), "url": f"{index}?status=draft"},
        {"label": _("Studies that failed"), "count": studies.filter(status="failed").count(),
         "url": f"{index}?status=failed"},
    ]
