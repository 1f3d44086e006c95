"""Platform pages: dashboard, job and batch pages (with live partials), tokens, login, health."""
from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from core import selectors, services
from core.api.errors import json_error
from core.audit import audit_record, client_ip
from core.auth import role_required
from core.errors import AppError
from core.health import readiness
from core.htmx import batch_status_response, job_status_response
from core.models import ApiToken
from core.roles import user_has_role


# --- health ---------------------------------------------------------------------------------------
def healthz(request):
    """The process is up (no dependencies checked)."""
    return JsonResponse({"ok": True})


@never_cache
def readyz(request):
    """Database, Redis and the model service; 200 when all answer, else 503 with each check."""
    report = readiness()
    return JsonResponse(report, status=200 if report["ok"] else 503)


# --- auth ---------------------------------------------------------------------------------------
class LoginView(auth_views.LoginView):
    """Django's login with a per-IP limit on failed attempts and audit records."""

    template_name = "registration/login.html"
    redirect_authenticated_user = True

    def _key(self) -> str:
        return f"login-fail:{client_ip(self.request)}"

    def post(self, request, *args, **kwargs):
        if (cache.get(self._key()) or 0) >= settings.LOGIN_RATE_LIMIT:
            audit_record(actor=request.POST.get("username", "")[:150] or None, action="login_failed",
                         detail={"reason": "rate_limited"}, request=request)
            response = render(request, self.template_name, {
                "form": self.get_form(), "rate_limited": True,
            }, status=429)
            response["Retry-After"] = "900"
            return response
        return super().post(request, *args, **kwargs)

    def form_valid(self, form):
        cache.delete(self._key())
        response = super().form_valid(form)
        audit_record(actor=form.get_user(), action="login", request=self.request)
        return response

    def form_invalid(self, form):
        key = self._key()
        cache.add(key, 0, timeout=900)
        try:
            cache.incr(key)
        except ValueError:
            cache.set(key, 1, timeout=900)
        audit_record(actor=self.request.POST.get("username", "")[:150] or None, action="login_failed",
                     request=self.request)
        return super().form_invalid(form)


@require_POST
def logout_view(request):
    if request.user.is_authenticated:
        audit_record(actor=request.user, action="logout", request=request)
    logout(request)
    return redirect("login")


# --- dashboard ------------------------------------------------------------------------------------
@login_required
def dashboard(request):
    return render(request, "core/dashboard.html", {
        "attention": selectors.attention_for_user(user=request.user),
        "jobs": selectors.job_list_for_user(user=request.user, limit=15),
        "batches": selectors.batch_list_for_user(user=request.user, limit=10),
        "is_admin": user_has_role(request.user, "admin"),
    })


@login_required
def dashboard_activity(request):
    """The dashboard's live part (htmx polls it every few seconds)."""
    return render(request, "core/_activity.html", {
        "jobs": selectors.job_list_for_user(user=request.user, limit=15),
        "batches": selectors.batch_list_for_user(user=request.user, limit=10),
    })


@login_required
def job_detail(request, job_id):
    job = selectors.job_get_for_user(user=request.user, job_id=job_id)
    if job is None:
        raise Http404(_("No such job, or not one your roles allow."))
    own_page = job.get_absolute_url()
    if own_page != request.path:
        return redirect(own_page)
    audit_record(actor=request.user, action="view", obj=job, request=request)
    return render(request, "core/job_detail.html", {"job": job})


@login_required
def job_status_partial(request, job_id):
    job = selectors.job_get_for_user(user=request.user, job_id=job_id)
    if job is None:
        raise Http404
    return job_status_response(request, job=job, on_finish="event")


@login_required
def batch_detail(request, batch_id):
    batch = selectors.batch_get_for_user(user=request.user, batch_id=batch_id)
    if batch is None:
        raise Http404(_("No such batch, or not one your roles allow."))
    from django.urls import NoReverseMatch, reverse

    try:
        return redirect(reverse(f"{batch.app}:batch_detail", kwargs={"batch_id": batch.pk}))
    except NoReverseMatch:
        return render(request, "core/batch_detail.html", {"batch": batch,
                                                          "progress": selectors.batch_progress(batch=batch)})


@login_required
def batch_progress_partial(request, batch_id):
    batch = selectors.batch_get_for_user(user=request.user, batch_id=batch_id)
    if batch is None:
        raise Http404
    return batch_status_response(request, batch=batch, template="core/_batch_progress.html",
                                 context={"batch": batch, "progress": selectors.batch_progress(batch=batch)})


@require_POST
@role_required("admin")
def diagnostic_run(request):
    try:
        delay = float(request.POST.get("delay_seconds", "3") or 0)
    except ValueError:
        delay = 3.0
    job = services.diagnostic_job_create(owner=request.user, prompt=request.POST.get("prompt") or "Say OK.",
                                         delay_seconds=delay,
                                         use_model=request.POST.get("use_model", "1") == "1")
    audit_record(actor=request.user, action="submit", obj=job, request=request)
    messages.success(request, _("Diagnostic job queued."))
    return redirect(job.get_absolute_url())


@login_required
def tokens(request):
    """The user's own API tokens: create (shown once) and revoke."""
    new_secret = None
    if request.method == "POST":
        if "revoke" in request.POST:
            token = get_object_or_404(ApiToken, pk=request.POST["revoke"], user=request.user)
            services.api_token_revoke(token=token)
            audit_record(actor=request.user, action="token_revoke", obj=token, request=request)
            messages.success(request, _("Token revoked."))
            return redirect("core:tokens")
        name = (request.POST.get("name") or "").strip() or "token"
        token, new_secret = services.api_token_create(user=request.user, name=name)
        audit_record(actor=request.user, action="token_create", obj=token, request=request)
    return render(request, "core/tokens.html", {
        "tokens": ApiToken.objects.filter(user=request.user), "new_secret": new_secret,
    })


@login_required
def help_page(request):
    return render(request, "core/help.html")


# --- errors -----------------------------------------------------------------------------------------
def _wants_json(request) -> bool:
    return request.path.startswith("/api/") or request.path.startswith("/dicomweb/")


def permission_denied(request, exception=None):
    if _wants_json(request):
        return json_error(403, "permission_denied", str(exception) or "permission denied")
    return render(request, "core/error.html", {"code": 403, "message": str(exception) if exception else ""},
                  status=403)


def page_not_found(request, exception=None):
    if _wants_json(request):
        return json_error(404, "not_found", "not found")
    return render(request, "core/error.html", {"code": 404, "message": ""}, status=404)


def server_error(request):
    if _wants_json(request):
        return json_error(500, "server_error", "internal error; it has been logged")
    return HttpResponse(render(request, "core/error.html", {"code": 500, "message": ""}).content, status=500)


@login_required
def service_status(request):
    """The degraded-state banner (htmx polls it): empty when everything answers."""
    report = cache.get("readiness-report")
    if report is None:
        report = readiness()
        cache.set("readiness-report", report, timeout=10)
    return render(request, "core/_service_status.html", {"report": report})


# --- prompt quality (administrators) -----------------------------------------------------------------
@role_required("admin")
def prompts_page(request):
    """Each template's versions with their measured figures; activate a version that measured well."""
    if request.method == "POST":
        name = request.POST.get("name", "")
        try:
            version = int(request.POST.get("version", ""))
        except ValueError:
            messages.error(request, _("Choose a version to activate."))
            return redirect("core:prompts")
        try:
            services.prompt_template_activate(name=name, version=version, user=request.user,
                                              force=request.POST.get("force") == "1", request=request)
        except AppError as exc:
            messages.error(request, _("%(name)s v%(version)s was not activated: %(reason)s")
                           % {"name": name, "version": version, "reason": exc.message})
        else:
            messages.success(request, _("%(name)s v%(version)s is now active.")
                             % {"name": name, "version": version})
        return redirect("core:prompts")
    return render(request, "core/prompts.html", {"templates": selectors.prompt_overview()})
