"""Finance pages: overview with the risk chart, single application, batch upload, results table, application
page, review queue, exports (CSV, XLSX, PDF) and scorecard versions."""
from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from apps.finance import fields as catalogue
from apps.finance import selectors, services
from apps.finance.forms import ApplicationForm, BatchUploadForm, ReviewForm, TrainingForm
from apps.finance.models import Assessment, CreditModelVersion, ModelTraining
from core import exports
from core.auth import role_required
from core.errors import AppError, ConflictError, form_add_error
from core.htmx import job_status_response
from core.models import Batch
from core.roles import user_has_role
from core.selectors import batch_get_for_user, batch_list_for_user, batch_progress
from core.uploads import upload_check

PAGE_SIZE = 25


def _lang() -> str:
    return "zh-hans" if (get_language() or "en").startswith("zh") else "en"


def _upload_check(form, field: str = "file") -> None:
    """core's upload check (nothing sent, empty, over ``UPLOAD_MAX_BYTES``) on a valid form's file; it
    raises an :class:`AppError` with its status (400, or 413 over the limit)."""
    upload_check([form.cleaned_data[field]], field=field)


# --- overview -----------------------------------------------------------------------------------
@role_required("finance")
def index(request):
    qs = selectors.assessments_for_user(request.user)
    return render(request, "finance/index.html", {
        "counts": selectors.assessment_counts(qs),
        "distribution": selectors.risk_distribution(qs),
        "active_model": selectors.credit_model_active(),
        "recent": qs.order_by("-queued_at")[:10],
        "batches": batch_list_for_user(user=request.user, app="finance", limit=5),
    })


# --- one application --------------------------------------------------------------------------------
@role_required("finance")
def assessment_new(request):
    form = ApplicationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            job = services.assessment_create(
                owner=request.user, applicant=form.applicant(), report=form.cleaned_data["report"],
                language=form.cleaned_data["language"], application_id=form.cleaned_data["application_id"],
                source=Assessment.Source.FORM, request=request,
            )
        except AppError as exc:
            form_add_error(form, exc)
        else:
            messages.success(request, _("Application queued for assessment."))
            return redirect(job.get_absolute_url())
    return render(request, "finance/assessment_new.html", {"form": form,
                                                           "active_model": selectors.credit_model_active()})


def _assessment_or_404(request, job_id) -> Assessment:
    job = selectors.assessment_get_for_user(user=request.user, job_id=job_id)
    if job is None:
        raise Http404(_("No such assessment."))
    return job


def _detail_context(job: Assessment, lang: str) -> dict:
    result = job.result or {}
    text_key = "text_zh" if lang == "zh-hans" else "text_en"
    reasons = [{"code": r.get("code"), "text": r.get(text_key) or r.get("text_en"), "impact": r.get("impact")}
               for r in result.get("reason_codes") or []]
    applicant = result.get("applicant") or job.applicant or {}
    extraction = result.get("extraction") or {}
    extracted = set((extraction.get("fields") or {}).keys())
    quotes = extraction.get("evidence") or {}
    rejected = extraction.get("rejected") or {}
    missing = set(result.get("missing_fields") or [])
    rows = []
    for f in catalogue.FIELDS:
        value = applicant.get(f.name)
        if f.kind == "categorical" and value:
            shown = f.category_label(value, lang)
        elif f.codes and value is not None:
            shown = f.code_label(value, lang)
        else:
            shown = value
        rows.append({"name": f.name, "label": f.label(lang), "value": shown, "protected": f.protected,
                     "extracted": f.name in extracted, "missing": f.name in missing and not f.protected,
                     "quote": quotes.get(f.name, ""),
                     "rejected": (rejected.get(f.name) or {}).get("reason", "") if f.name in missing else ""})
    llm = result.get("llm") or None
    probs = []
    if llm and llm.get("label_probs"):
        for level in ("1", "2", "3"):
            p = llm["label_probs"].get(level)
            probs.append({"level": level, "p": p, "percent": round(100 * p, 1) if p is not None else None})
    notes = [n.get(text_key) or n.get("text_en") for n in result.get("notes") or [] if isinstance(n, dict)]
    review_reasons = [r.get(text_key) or r.get("text_en") for r in result.get("review_reasons") or []
                      if isinstance(r, dict)]
    return {"result": result, "reasons": reasons, "notes": notes, "review_reasons": review_reasons,
            "fields": rows, "llm": llm, "label_probs": probs,
            "scorecard": result.get("scorecard") or {}, "versions": result.get("versions") or {}}


@role_required("finance")
def assessment_detail(request, job_id):
    job = _assessment_or_404(request, job_id)
    services.read_audit(request, action="view", obj=job)
    lang = _lang()
    context = {"job": job, "reviews": selectors.assessment_reviews(job), "review_form": ReviewForm(),
               **_detail_context(job, lang)}
    return render(request, "finance/assessment_detail.html", context)


@role_required("finance")
def assessment_status(request, job_id):
    """The live status (htmx polls it until the job finishes, then the page reloads)."""
    return job_status_response(request, job=_assessment_or_404(request, job_id),
                               template="finance/_assessment_status.html")


@require_POST
@role_required("finance")
def assessment_review(request, job_id):
    """Record a review. A refusal (an override without a comment...) shows the page the form was sent from
    again with the reviewer's choices and the error, status 400, instead of losing them."""
    job = _assessment_or_404(request, job_id)
    form = ReviewForm(request.POST)
    from_queue = request.POST.get("next") == "queue"
    if form.is_valid():
        try:
            services.assessment_review(assessment=job, reviewer=request.user,
                                       decision=form.cleaned_data["decision"],
                                       final_risk_level=form.cleaned_data.get("final_risk_level"),
                                       comment=form.cleaned_data.get("comment") or "", request=request)
        except ConflictError as exc:  # the assessment's state, not the choices: said on the page it is
            messages.error(request, exc.message)
            return redirect("finance:review_queue" if from_queue else job.get_absolute_url())
        except AppError as exc:
            form_add_error(form, exc)
            status = exc.status
        else:
            messages.success(request, _("Decision recorded."))
            return redirect("finance:review_queue" if from_queue else job.get_absolute_url())
    else:
        status = 400
    for field, errors in form.errors.items():  # also said on top of the page, with the other messages
        label = form.fields[field].label if field in form.fields else ""
        for error in errors:
            messages.error(request, f"{label}: {error}" if label else error)
    if from_queue:
        return _review_queue_render(request, failed=job, failed_form=form, status=status)
    context = {"job": job, "reviews": selectors.assessment_reviews(job), "review_form": form,
               **_detail_context(job, _lang())}
    return render(request, "finance/assessment_detail.html", context, status=status)


@role_required("finance")
def assessment_pdf(request, job_id):
    from apps.finance.pdf import assessment_pdf_bytes

    job = _assessment_or_404(request, job_id)
    lang = _lang()
    data = assessment_pdf_bytes(job, reviews=selectors.assessment_reviews(job), lang=lang)
    services.read_audit(request, action="export", obj=job, detail={"format": "pdf"})
    response = HttpResponse(data, content_type="application/pdf")
    name = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in job.title())[:60] or "assessment"
    response["Content-Disposition"] = f'attachment; filename="credit-assessment-{name}.pdf"'
    return response


# --- results table, exports, chart -------------------------------------------------------------------------
def _filtered(request):
    qs = selectors.assessments_for_user(request.user)
    try:
        return selectors.assessment_filter(qs, request.GET), None
    except selectors.FilterError as exc:
        return selectors.assessment_sort(qs, ""), exc


@role_required("finance")
def assessment_list(request):
    qs, error = _filtered(request)
    if error:
        messages.error(request, str(error))
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    params = request.GET.copy()
    params.pop("page", None)
    sort_params = request.GET.copy()
    sort_params.pop("page", None)
    sort_params.pop("sort", None)
    return render(request, "finance/assessment_list.html", {
        "page": page, "query": params.urlencode(), "sort_query": sort_params.urlencode(),
        "sort": request.GET.get("sort", ""), "filters": request.GET, "statuses": Assessment._meta.get_field(
            "status").choices, "sources": Assessment.Source.choices,
        "distribution": selectors.risk_distribution(qs),
        "judgment": selectors.judgment_information(selectors.credit_model_active()),
        "judgment_rate": selectors.judgment_review_rate(qs),
    })


@role_required("finance")
def assessment_export(request, fmt):
    qs, error = _filtered(request)
    if error:
        messages.error(request, str(error))
        return redirect(reverse("finance:assessment_list"))
    lang = _lang()
    rows = (selectors.assessment_export_row(a, lang=lang) for a in qs.iterator(chunk_size=500))
    services.read_audit(request, action="export", object_type="finance.assessment", object_id="list",
                        detail={"format": fmt, "filters": request.GET.dict()})
    if fmt == "xlsx":
        return exports.rows_to_xlsx_response("credit-assessments.xlsx", selectors.EXPORT_COLUMNS, rows)
    return exports.rows_to_csv_response("credit-assessments.csv", selectors.EXPORT_COLUMNS, rows)


# --- review queue ------------------------------------------------------------------------------------
@role_required("finance")
def review_queue(request):
    return _review_queue_render(request)


def _review_queue_render(request, *, failed: Assessment | None = None, failed_form: ReviewForm | None = None,
                         status: int = 200):
    """The queue; after a refused review the row of ``failed`` keeps the submitted choices and errors."""
    page = Paginator(selectors.review_queue(request.user), PAGE_SIZE).get_page(request.GET.get("page"))
    rows = []
    for a in page.object_list:
        form = failed_form if failed is not None and a.pk == failed.pk else None
        rows.append({"a": a, "form": form or ReviewForm(auto_id=f"id_{a.pk}_%s")})
    on_page = failed is not None and any(r["a"].pk == failed.pk for r in rows)
    return render(request, "finance/review_queue.html", {
        "page": page, "rows": rows, "failed": failed, "failed_form": failed_form, "failed_on_page": on_page,
    }, status=status)


# --- batches -------------------------------------------------------------------------------------
@role_required("finance")
def batch_upload(request):
    form = BatchUploadForm(request.POST or None, request.FILES or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                _upload_check(form)
                batch = services.batch_create(owner=request.user, upload=form.cleaned_data["file"],
                                              language=form.cleaned_data["language"], request=request)
            except AppError as exc:
                form_add_error(form, exc)
                status = exc.status
            else:
                messages.success(request, _("File uploaded; the applications are being assessed."))
                return redirect("finance:batch_detail", batch_id=batch.pk)
        else:
            status = 400
    return render(request, "finance/batch_upload.html", {
        "form": form, "batches": batch_list_for_user(user=request.user, app="finance", limit=20),
        "columns": [f for f in catalogue.FIELDS], "active_model": selectors.credit_model_active(),
    }, status=status)


@role_required("finance")
def csv_template(request):
    """A CSV template of a batch upload: every column it accepts and example rows that parse cleanly."""
    return exports.rows_to_csv_response("credit-applications-template.csv", catalogue.TEMPLATE_COLUMNS,
                                        catalogue.TEMPLATE_EXAMPLES)


def _batch_or_404(request, batch_id) -> Batch:
    batch = batch_get_for_user(user=request.user, batch_id=batch_id)
    if batch is None or batch.app != "finance":
        raise Http404(_("No such upload."))
    return batch


@role_required("finance")
def batch_detail(request, batch_id):
    batch = _batch_or_404(request, batch_id)
    return render(request, "finance/batch_detail.html", {
        "batch": batch, "progress": batch_progress(batch=batch),
        "items": Assessment.objects.filter(batch_id=batch.pk).order_by("row_number")[:50],
    })


@role_required("finance")
def batch_results(request, batch_id):
    batch = _batch_or_404(request, batch_id)
    services.read_audit(request, action="export", obj=batch, detail={"format": "csv"})
    name = (batch.original_filename or "batch").rsplit(".", 1)[0][:60]
    return exports.rows_to_csv_response(f"{name}-results.csv", selectors.EXPORT_COLUMNS,
                                        selectors.batch_result_rows(batch))


# --- scorecard versions --------------------------------------------------------------------------------
@role_required("finance")
def model_list(request):
    is_admin = user_has_role(request.user, "admin")
    form = TrainingForm(request.POST or None, request.FILES or None)
    status = 200
    if request.method == "POST":
        if not is_admin:
            raise PermissionDenied(_("Only administrators can train scorecard versions."))
        if form.is_valid():
            try:
                _upload_check(form)
            except AppError as exc:
                form_add_error(form, exc)
                status = exc.status
            else:
                job = services.model_training_create(owner=request.user, upload=form.cleaned_data["file"],
                                                     activate=form.cleaned_data["activate"],
                                                     note=form.cleaned_data["note"], request=request)
                messages.success(request, _("Training started."))
                return redirect(job.get_absolute_url())
        else:
            status = 400
    return render(request, "finance/model_list.html", {
        "versions": selectors.credit_model_list(), "form": form, "is_admin": is_admin,
        "trainings": ModelTraining.objects.order_by("-queued_at")[:10] if is_admin else [],
    }, status=status)


def _version_or_404(version: int) -> CreditModelVersion:
    model = selectors.credit_model_get(version)
    if model is None:
        raise Http404(_("No such scorecard version."))
    return model


@role_required("finance")
def model_detail(request, version):
    model = _version_or_404(version)
    lang = _lang()
    fairness = []
    for attr, rows in (model.fairness.get("groups") or {}).items():
        if attr == "age_band":
            title = _("Age band")
        else:
            title = catalogue.field_label(attr, lang)
        if attr in catalogue.FIELDS_BY_NAME:
            f = catalogue.FIELDS_BY_NAME[attr]
            rows = [{**r, "group_label": f.category_label(r["group"], lang)} for r in rows]
        else:
            rows = [{**r, "group_label": r["group"]} for r in rows]
        fairness.append({"attr": attr, "title": title, "rows": rows})
    importance = [{**r, "label": catalogue.field_label(r["field"], lang)}
                  for r in (model.metadata.get("feature_importance") or [])]
    return render(request, "finance/model_detail.html", {
        "model": model, "fairness": fairness, "importance": importance,
        "is_admin": user_has_role(request.user, "admin"), "m": model.metrics,
        "scale": model.metadata.get("score_scale") or {}, "cutoffs": model.metadata.get("cutoffs") or [],
        "used": model.assessments.count(),
        "judgment": selectors.judgment_information(model),
        "judgment_rate": selectors.judgment_review_rate(model.assessments.all()),
    })


@role_required("finance")
def model_calibration_png(request, version):
    model = CreditModelVersion.objects.filter(version=version).only("calibration_png").first()
    if model is None or not model.calibration_png:
        raise Http404
    response = HttpResponse(bytes(model.calibration_png), content_type="image/png")
    response["Cache-Control"] = "private, max-age=3600"
    return response


@require_POST
@role_required("admin")
def model_activate(request, version):
    model = _version_or_404(version)
    services.credit_model_activate(version=model, actor=request.user, request=request)
    messages.success(request, _("Scorecard v%(version)s is now active.") % {"version": model.version})
    return redirect(model.get_absolute_url())


@role_required("admin")
def training_detail(request, job_id):
    job = ModelTraining.objects.filter(pk=job_id).select_related("credit_model").first()
    if job is None:
        raise Http404
    return render(request, "finance/training_detail.html", {"job": job})
