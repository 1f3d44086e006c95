"""The study job (``medical.study_run``): features of each series (streamed slice by slice), key images,
then the constrained AI draft through core's one LLM step (:func:`core.llm.llm_step`).

Privacy: the prompt is built from de-identified features and a scrubbed indication, then checked once
more against the study's own identifiers before it is sent (fail closed); log lines name job, batch
and study ids, never file names, patient data or UIDs.
"""
from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.utils import timezone

from apps.medical import deidentify as deid
from apps.medical.decisions import draft_status
from apps.medical.imaging import ImagingError, series_features, study_summary
from apps.medical.models import Instance, KeyImage, Report, Series, Study, StudyIdentity
from apps.medical.prompting import draft_variables, normalize_report, template_name_for
from core import services as core_services
from core.jobs import AwaitLLM, JobOutcome, PermanentJobError
from core.models import JobStatus

from .config import LANGUAGES
from .drafts import (  # noqa: F401  (DRAFT_* re-exported by the package)
    DRAFT_FREQUENCY_PENALTY,
    DRAFT_MAX_TOKENS,
    draft_quality,
    draft_sections_of,
    draft_step,
    draft_warnings,
    no_draft_sections,
)
from .storage import local_path

KEY_IMAGES_PER_SERIES = 3
MAX_KEY_IMAGES_PER_STUDY = 12

def study_process(study: Study) -> JobOutcome | AwaitLLM:
    """Features of each series (streamed slice by slice), key images, then the constrained AI draft."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _study_process(study)


@dataclass
class _SeriesRead:
    """What reading a study's series gave: features per series, key images and problems."""

    features: list[dict[str, Any]] = field(default_factory=list)
    updates: dict[int, dict[str, Any]] = field(default_factory=dict)
    key_images: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _series_sources(instances: list[Instance]) -> Iterator[str]:
    """Local paths of a series' de-identified files, one at a time (a temp copy lives only while used)."""
    for inst in instances:
        with local_path(inst.file.name) as path:
            yield path


def _series_read(study: Study) -> _SeriesRead:
    out = _SeriesRead()
    series_rows = list(study.series.order_by("order"))
    total = sum(s.frame_count for s in series_rows) or 1
    done = 0
    for series in series_rows:
        instances = list(series.instances.filter(status=Instance.Status.OK).order_by("order"))
        by_sop = {i.sop_instance_uid: i for i in instances}
        try:
            result = series_features(_series_sources(instances), key_images=KEY_IMAGES_PER_SERIES)
        except ImagingError as exc:
            out.updates[series.pk] = {"features": None, "error_message": exc.message}
            out.problems.append(f"series {series.order + 1}: {exc.message}")
            continue
        features = result.features
        out.problems.extend(f"series {series.order + 1}: {err}" for err in features.get("errors") or [])
        out.updates[series.pk] = {"features": features, "error_message": ""}
        out.features.append(features)
        for k in result.key_images:
            out.key_images.append({"series_id": series.pk, "instance": by_sop.get(k.sop_instance_uid),
                                   **k.meta(), "png": k.png})
        done += series.frame_count
        core_services.job_progress(job=study, fraction=0.7 * done / total,
                                   message=f"series {series.order + 1} of {len(series_rows)} read")
    return out


def _study_phi(study: Study) -> set[str]:
    """Every identifying string of the study's originals (what must never reach the prompt)."""
    identity = StudyIdentity.objects.filter(study=study).first()
    identifiers = identity.identifiers if identity else {}
    phi = deid.phi_strings({**identifiers, "uid_map": identifiers.get("uid_map", {})})
    if identity is not None:
        phi |= {s for s in (identity.patient_name, identity.patient_id, identity.patient_birth_date,
                            identity.accession_number, identity.original_study_instance_uid) if len(s) >= 3}
    return phi


def study_privacy_check(phi: set[str], *, template: str, language: str):
    """The privacy hook of the draft's model call: the independent last check
    (:func:`apps.medical.deidentify.privacy_findings`: names after titles and cues, phone numbers, IDs,
    e-mail and street addresses, date shapes, DICOM names, and the study's own identifiers) over the
    rendered messages. Any finding stops the call (``privacy_check_failed``).

    A single word collected from the study that is also a word of the template itself (an institution
    called "… Imaging Center" and a template that says "imaging") is not searched for: the template is
    ours, not the patient's."""
    from core.selectors import prompt_template_get

    body = prompt_template_get(name=template, language=language).body
    template_words = {w.lower() for w in re.findall(r"[A-Za-z\u4e00-\u9fff]+", body)}
    known = {p for p in phi if p.lower() not in template_words}

    def check(messages: list[dict]) -> list[str]:
        return deid.privacy_findings(messages, known)

    return check


def _summary_for_result(summary: dict[str, Any]) -> dict[str, Any]:
    """The study summary without bulky key-image metadata (it has its own table)."""
    out = dict(summary)
    out["series"] = [{k: v for k, v in s.items() if k != "key_images"} for s in summary.get("series", [])]
    return out


def _study_process(study: Study) -> JobOutcome | AwaitLLM:
    """The CPU part: read every series (features, key images). With the language model on, the job is
    then handed on to the language-model pool (:func:`study_draft`) with the de-identified summary and
    prompt variables; the series features and key images are stored now."""
    started = timezone.now()
    read = _series_read(study)
    timings = {"features_s": round((timezone.now() - started).total_seconds(), 3)}
    if not read.features:
        raise PermanentJobError("no series could be read: " + "; ".join(read.problems[:5]),
                                code="undecodable")
    summary = study_summary(read.features)
    lang = study.language if study.language in LANGUAGES else "en"
    variables = draft_variables(summary, study.indication, lang, phi=_study_phi(study))
    state = {
        "summary": _summary_for_result(summary), "problems": read.problems, "variables": variables,
        "lang": lang, "modality": read.features[0].get("modality", ""),
        "template": f"medical.{template_name_for(summary.get('modalities') or [study.modality])}",
    }
    if not settings.LLM_ENABLED:
        outcome = _draft_outcome(study, state, step=None)
        outcome.timings.update(timings)
        apply_report = outcome.apply
        images = _images_apply(read)

        def apply(row: Study) -> None:
            images(row)
            apply_report(row)

        outcome.apply = apply
        return outcome
    core_services.job_progress(job=study, fraction=0.75, message="waiting for the language model")
    return AwaitLLM(finish=study_draft, state=state, apply=_images_apply(read), timings=timings)


def study_draft(study: Study, state: dict[str, Any]) -> JobOutcome:
    """The language-model part (the language-model pool): the constrained AI draft through core's one
    LLM step, checked against the study's own identifiers before anything is sent (fail closed)."""
    lang = state["lang"]
    phi = _study_phi(study)
    privacy = study_privacy_check(phi, template=state["template"], language=lang)
    step = draft_step(state=state, privacy=privacy, final_attempt=study.attempts >= settings.JOB_MAX_ATTEMPTS)
    return _draft_outcome(study, state, step=step)


def _draft_outcome(study: Study, state: dict[str, Any], *, step) -> JobOutcome:
    """The job's result from the read series and the language model's step (None: switched off)."""
    summary, lang, variables = state["summary"], state["lang"], state["variables"]
    problems = list(state["problems"])
    result_doc: dict[str, Any] = {"summary": summary, "problems": problems[:50],
                                  "indication_sent": variables["indication"], "language": lang}
    outcome = JobOutcome(result=result_doc)
    ai_generated = False
    draft: dict[str, Any]
    if step is None:
        draft = no_draft_sections(summary, "disabled", lang)
        result_doc["llm"] = {"enabled": False, "note": "LLM_ENABLED is false: no AI draft was written"}
    else:
        outcome.timings["llm_s"] = round(step.latency_s, 3)
        outcome.prompt_template, outcome.prompt_version = step.template, step.template_version
        outcome.model_name = step.model
        if step.ok:
            draft = draft_sections_of(step.value, summary=summary, lang=lang)
            ai_generated = True
        else:
            why = "rejected" if step.status == "rejected" else "unavailable"
            draft = no_draft_sections(summary, why, lang)
            problems.extend(f"the model's draft was not usable: {p}" for p in step.problems)
            result_doc["problems"] = problems[:50]
        if ai_generated and step.truncated:
            note = (f"The AI draft was cut at {DRAFT_MAX_TOKENS} tokens and may be incomplete."
                    if lang == "en" else f"AI 草稿在 {DRAFT_MAX_TOKENS} 个词元处被截断,可能不完整。")
            draft["limitations"] = " ".join(x for x in (draft.get("limitations", ""), note) if x)
        result_doc["llm"] = {"enabled": True, **step.meta()}
    draft = normalize_report(draft)
    check_warnings = (draft_warnings(step.value, sections=draft, summary=summary,
                                     indication=variables["indication"]) if ai_generated else [])
    if ai_generated and result_doc["llm"].get("truncated"):
        check_warnings.append(f"the model's answer was cut at {DRAFT_MAX_TOKENS} tokens; "
                              "the draft may be incomplete")
    result_doc["draft"] = draft
    result_doc["draft_quality"] = draft_quality(step, summary=summary, lang=lang)
    result_doc["postcheck_warnings"] = check_warnings
    result_doc["ai_generated"] = ai_generated
    outcome.status = JobStatus(draft_status(postcheck_warnings=check_warnings, problems=problems,
                                            ai_generated=ai_generated))
    burned_in = {"burned_in_annotation"} if summary.get("burned_in_annotation") else set()
    outcome.fields = {
        "body_part": (", ".join(summary.get("body_parts") or []) or study.body_part)[:64],
        "description": (summary.get("study_description") or study.description or "")[:200],
        "flags": sorted(set(study.flags) | burned_in),
    }
    if not study.modality:
        outcome.fields["modality"] = (state.get("modality") or "")[:64]
    outcome.apply = _report_apply(draft=draft, ai_generated=ai_generated, lang=lang,
                                  check_warnings=check_warnings)
    return outcome


def _images_apply(read: _SeriesRead):
    """The rows the CPU part writes (under the job's lease): series features and key images."""

    def apply(row: Study) -> None:
        for series_id, values in read.updates.items():
            Series.objects.filter(pk=series_id).update(**values)
        KeyImage.objects.filter(study=row).delete()
        for order, k in enumerate(read.key_images[:MAX_KEY_IMAGES_PER_STUDY]):
            KeyImage.objects.create(study=row, series_id=k["series_id"], instance=k["instance"],
                                    sop_instance_uid=k["sop_instance_uid"], frame=k["frame"],
                                    index=k["index"], order=order, window=k["window"], width=k["width"],
                                    height=k["height"], png=k["png"])

    return apply


def _report_apply(*, draft: dict[str, Any], ai_generated: bool, lang: str, check_warnings: list[str]):
    """The draft report the finished job writes (in the job's own transaction); a signed report is
    never replaced."""

    def apply(row: Study) -> None:
        report = Report.objects.filter(study=row).first()
        if report is not None and report.is_final:
            return
        now = timezone.now()
        Report.objects.update_or_create(study=row, defaults={
            "status": Report.Status.DRAFT, "ai_generated": ai_generated,
            "ai_sections": draft if ai_generated else None, "sections": draft, "language": lang,
            "postcheck_warnings": check_warnings, "edits": [], "edited_by": None, "edited_at": None,
            "created_at": now, "updated_at": now,
        })

    return apply
