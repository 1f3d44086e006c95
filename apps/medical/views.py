"""Radiology pages: worklist, upload with live progress, study viewer beside the draft, edit, sign,
addenda, on-demand image rendering and report downloads. Every page needs the ``medical`` role."""
from __future__ import annotations

import json

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from apps.medical import selectors, services
from apps.medical.api.views import download_response
from apps.medical.errors import ReportError
from apps.medical.forms import AddendumForm, ReportEditForm, SignForm, UploadForm
from apps.medical.imaging import PRESETS, ImagingError
from apps.medical.models import Instance, KeyImage
from core import selectors as core_selectors
from core.auth import role_required
from core.errors import AppError, ConflictError, form_add_error
from core.htmx import batch_status_response, job_status_response
from core.models import Batch

PRESET_CHOICES = ["auto", *PRESETS]


def _study_or_404(request, study_id):
    study = selectors.study_get_for_user(user=request.user, study_id=study_id)
    if study is None:
        raise Http404(_("No such study."))
    return study


@role_required("medical")
def index(request):
    """The radiologist's worklist."""
    wanted = request.GET.get("status", "todo")
    if wanted not in selectors.WORKLIST_FILTERS:
        wanted = "todo"
    query = request.GET.get("q", "")[:100]
    studies = selectors.worklist(user=request.user, status=wanted, query=query)
    return render(request, "medical/index.html", {
        "studies": studies, "status_filter": wanted, "query": query,
        "filters": [("todo", _("To do")), ("draft", _("Drafts")), ("final", _("Signed")),
                    ("processing", _("Processing")), ("failed", _("Failed")), ("all", _("All"))],
        "uploads": selectors.medical_batches_for_user(user=request.user, limit=5),
    })


@role_required("medical")
@require_http_methods(["GET", "POST"])
def upload(request):
    """Upload DICOM files or ZIPs; a refused upload is shown on the form with its status (400, 413)."""
    language = "zh-hans" if get_language() == "zh-hans" else "en"
    form = UploadForm(request.POST if request.method == "POST" else None, initial={"language": language})
    if request.method == "GET":
        return render(request, "medical/upload.html", {"form": form})
    status = 400
    try:
        services.upload_length_check(request.META.get("CONTENT_LENGTH"))
        files = request.FILES.getlist("files")
        services.upload_files_check(files)
        if form.is_valid():
            batch = services.upload_create(owner=request.user, files=files, request=request,
                                           indication=form.cleaned_data.get("indication", ""),
                                           language=form.cleaned_data.get("language") or "en")
            messages.success(request, _("Upload received: the files are being de-identified and read."))
            return redirect("medical:batch_detail", batch_id=batch.pk)
    except AppError as exc:
        form_add_error(form, exc)
        status = exc.status
    return render(request, "medical/upload.html", {"form": form}, status=status)


def _batch_or_404(request, batch_id) -> Batch:
    batch = core_selectors.batch_get_for_user(user=request.user, batch_id=batch_id)
    if batch is None or batch.app != "medical":
        raise Http404(_("No such upload."))
    return batch


def _batch_context(batch: Batch) -> dict:
    files = selectors.batch_files(batch=batch)
    studies = selectors.batch_studies(batch=batch)
    return {
        "batch": batch, "progress": core_selectors.batch_progress(batch=batch),
        "studies": studies, "files": files,
        "already_uploaded": sum(1 for s in studies if s.duplicate_of_id),
        "file_counts": {s: sum(1 for f in files if f.status == s) for s in Instance.Status.values},
        "finished": batch.status in (Batch.Status.DONE, Batch.Status.FAILED),
    }


@role_required("medical")
def batch_detail(request, batch_id):
    """An upload: live progress, every file's status and error, links to its studies."""
    batch = _batch_or_404(request, batch_id)
    return render(request, "medical/batch_detail.html", _batch_context(batch))


@role_required("medical")
def batch_partial(request, batch_id):
    batch = _batch_or_404(request, batch_id)
    return batch_status_response(request, batch=batch, template="medical/_batch_live.html",
                                 context=_batch_context(batch))


@role_required("medical")
def study_detail(request, study_id):
    """The viewer: key images and every slice/frame with window presets, beside the draft."""
    study = _study_or_404(request, study_id)
    report = selectors.study_report(study=study)
    identity = getattr(study, "identity", None)
    services.study_view_record(user=request.user, study=study, request=request, via="web",
                               identity=identity is not None)
    stacks = selectors.study_stacks(study=study)
    viewer = [{"series": i, "frames": s["frames"]} for i, s in enumerate(stacks)]
    signer = request.user.get_full_name() or request.user.get_username()
    return render(request, "medical/study_detail.html", {
        "study": study, "report": report, "identity": identity,
        "series": selectors.study_series(study=study), "key_images": selectors.study_key_images(study=study),
        "stacks": stacks, "viewer_json": json.dumps(viewer), "presets": PRESET_CHOICES,
        "is_ct": "CT" in (study.modality or "").split("/"),
        "files": list(study.instances.select_related("series").order_by("series__order", "order")),
        "sign_form": SignForm(initial={"name": signer,
                                       "organization": services.organization_name()}),
        "addendum_form": AddendumForm(initial={"name": signer}),
        "addenda": list(report.addenda.all()) if report else [],
    })


@role_required("medical")
def study_status(request, study_id):
    """The processing card (htmx polls it); tells the page to reload when the job is done."""
    return job_status_response(request, job=_study_or_404(request, study_id))


@role_required("medical")
@require_http_methods(["GET", "POST"])
def report_edit(request, study_id):
    study = _study_or_404(request, study_id)
    report = selectors.study_report(study=study)
    if report is None:
        raise Http404(_("This study has no report yet."))
    if report.is_final:
        messages.error(request, _("This report is signed and final; add an addendum instead."))
        return redirect(study.get_absolute_url())
    form = ReportEditForm(request.POST or None, initial=ReportEditForm.initial_from(report.sections))
    if request.method == "POST" and form.is_valid():
        try:
            services.report_edit(report=report, user=request.user, sections=form.cleaned_data["sections"],
                                 request=request)
        except ConflictError:
            messages.error(request, _("This report is signed and final; add an addendum instead."))
            return redirect(study.get_absolute_url())
        except ReportError as exc:
            form_add_error(form, exc)
        else:
            messages.success(request, _("Report saved (still a draft until you sign it)."))
            return redirect(study.get_absolute_url())
    return render(request, "medical/report_edit.html", {"study": study, "report": report, "form": form},
                  status=400 if request.method == "POST" else 200)


@role_required("medical")
@require_POST
def report_sign(request, study_id):
    study = _study_or_404(request, study_id)
    report = selectors.study_report(study=study)
    if report is None:
        raise Http404(_("This study has no report yet."))
    form = SignForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("To sign, give your name and tick the confirmation."))
        return redirect(study.get_absolute_url())
    try:
        services.report_sign(report=report, user=request.user, name=form.cleaned_data["name"],
                             organization=form.cleaned_data.get("organization", ""), request=request)
    except ConflictError:
        messages.error(request, _("This report is already signed."))
        return redirect(study.get_absolute_url())
    # any other refusal (a report without the draft's shape: ReportError, 400) is an AppError that
    # core.errors.AppErrorMiddleware answers with its status and message
    messages.success(request, _("Report signed. It is final; later changes become addenda."))
    return redirect(study.get_absolute_url())


@role_required("medical")
@require_POST
def addendum_add(request, study_id):
    study = _study_or_404(request, study_id)
    report = selectors.study_report(study=study)
    form = AddendumForm(request.POST)
    if report is None or not form.is_valid():
        messages.error(request, _("The addendum needs some text."))
        return redirect(study.get_absolute_url())
    try:
        services.addendum_add(report=report, user=request.user, text=form.cleaned_data["text"],
                              name=form.cleaned_data.get("name", ""), request=request)
    except ConflictError:
        messages.error(request, _("Addenda are for signed reports; edit a draft directly."))
        return redirect(study.get_absolute_url())
    messages.success(request, _("Addendum added."))
    return redirect(study.get_absolute_url())


def _int(value, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


@role_required("medical")
def instance_image(request, instance_id):
    """One frame of one de-identified instance as PNG, with the chosen window preset (rendered now)."""
    inst = Instance.objects.select_related("study").filter(pk=instance_id, status=Instance.Status.OK).first()
    if inst is None or selectors.study_get_for_user(user=request.user, study_id=inst.study_id) is None:
        raise Http404(_("No such image."))
    preset = request.GET.get("preset", "auto")
    if preset not in PRESET_CHOICES:
        preset = "auto"
    size = min(max(_int(request.GET.get("size"), 768), 64), 1024)
    try:
        png = services.instance_png(instance=inst, frame=_int(request.GET.get("frame")), preset=preset,
                                    max_size=size)
    except (ImagingError, ValueError) as exc:
        return HttpResponse(str(exc).encode(), status=400, content_type="text/plain; charset=utf-8")
    response = HttpResponse(png, content_type="image/png")
    response["Cache-Control"] = "private, max-age=3600"
    return response


@role_required("medical")
def key_image(request, key_id):
    key = KeyImage.objects.filter(pk=key_id).first()
    if key is None or selectors.study_get_for_user(user=request.user, study_id=key.study_id) is None:
        raise Http404(_("No such image."))
    response = HttpResponse(bytes(key.png), content_type="image/png")
    response["Cache-Control"] = "private, max-age=3600"
    return response


@role_required("medical")
def download(request, study_id, kind):
    study = _study_or_404(request, study_id)
    if kind not in services.DOCUMENT_KINDS or selectors.study_report(study=study) is None:
        raise Http404(_("No such document."))
    identified = request.GET.get("deidentified") not in ("1", "true", "yes")
    try:
        return download_response(request, study, kind, identified, via="web")
    except ConflictError as exc:
        messages.error(request, exc.message)
        return redirect(study.get_absolute_url())
