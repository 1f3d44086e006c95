"""Measured prompt quality of the radiology draft templates (the ``prompt_evaluate`` hook of ``manage.py
evaluate_prompts``, see :class:`core.registry.SuiteApp`).

The labelled set (:data:`STUDIES`) is a list kept here of single-file studies among the files pydicom
and pydicom-data ship (four per template, each with a clinical indication in English and Chinese);
their facts (modality, body part, series, images, slice thickness, contrast, the features a finding may
cite) are the DICOM headers and pixel features, read by the app's own pipeline (ingest, de-identify,
features). Each study goes through the real model service with :func:`apps.medical.services.drafts.
draft_step` (the version asked for, the gate and its one retry, as a study job runs it). Measured:

- ``gate_pass_rate`` (primary): drafts that pass the gates, i.e. would be shown;
- ``first_try_pass_rate``: drafts that passed without the retry;
- ``fact_agreement``: answers (last try, parsed) with no fact problem: nothing the headers contradict,
  no lesion or disease stated, every cited feature offered, every number the cited feature's;
- ``answered``: answers that parsed and had the draft's shape.
"""
from __future__ import annotations

import os
import warnings
from functools import lru_cache
from typing import Any

TEMPLATES = ("radiology_draft_ct", "radiology_draft_mr", "radiology_draft_xr", "radiology_draft_other")

#: (file, indication in English, indication in Chinese) per template; files are looked up in pydicom's
#: test files and pydicom-data's data store
STUDIES: dict[str, list[tuple[str, str, str]]] = {
    "radiology_draft_ct": [
        ("CT_small.dcm", "Chest pain, rule out pulmonary embolism", "胸痛，排除肺栓塞"),
        ("693_UNCI.dcm", "Headache for two weeks", "头痛两周"),
        ("dicomdirtests/77654033/CT2/17106", "Abdominal pain after a meal", "餐后腹痛"),
        ("eCT_Supplemental.dcm", "Trauma, rule out fracture", "外伤，排除骨折"),
    ],
    "radiology_draft_mr": [
        ("MR_small.dcm", "Headache and dizziness", "头痛伴头晕"),
        ("emri_small.dcm", "First seizure", "首次癫痫发作"),
        ("MR2_UNCI.dcm", "Low back pain for a month", "腰痛一个月"),
        ("dicomdirtests/98892003/MR1/4919", "Knee pain after a fall", "跌倒后膝关节疼痛"),
    ],
    "radiology_draft_xr": [
        ("RG1_UNCR.dcm", "Cough and fever", "咳嗽发热"),
        ("RG3_UNCR.dcm", "Shortness of breath", "气短"),
        ("dicomdirtests/77654033/CR1/6154", "Neck pain after a fall", "跌倒后颈部疼痛"),
        ("dicomdirtests/77654033/CR2/6247", "Pre-operative check", "术前检查"),
    ],
    "radiology_draft_other": [
        ("ExplVR_BigEnd.dcm", "Right upper quadrant pain", "右上腹痛"),
        ("JPEG2000.dcm", "Bone pain, staging", "骨痛，分期"),
        ("examples_ybr_color.dcm", "Palpable lump", "可触及肿块"),
        ("liver_1frame.dcm", "Liver lesion follow-up", "肝脏病灶随访"),
    ],
}


def _roots() -> list[str]:
    import data_store
    from pydicom.data import get_testdata_file

    return [os.path.dirname(get_testdata_file("CT_small.dcm")),
            os.path.join(os.path.dirname(data_store.__file__), "data")]


@lru_cache(maxsize=64)
def study_summary_of(name: str) -> dict[str, Any]:
    """The de-identified study summary of one bundled file, read by the app's own pipeline."""
    from apps.medical.deidentify import deidentify
    from apps.medical.imaging import series_features, study_summary
    from apps.medical.ingest import ingest, load_dataset

    path = next((os.path.join(r, name) for r in _roots() if os.path.isfile(os.path.join(r, name))), None)
    if path is None:
        raise LookupError(f"the bundled file {name} is not installed")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = ingest([path])
        if not result.instances:
            raise LookupError(f"the bundled file {name} gives no image: {result.errors}")
        deid = deidentify(load_dataset(result.instances[0]), "prompt-evaluation")
        features = series_features([deid.dataset], key_images=0).features
    return study_summary([features])


def study_state(name: str, indication: str, language: str, template: str) -> dict[str, Any]:
    """The draft state of a study job for one labelled study (as ``study_process`` builds it)."""
    from apps.medical.prompting import draft_variables

    summary = study_summary_of(name)
    return {"summary": summary, "lang": language, "template": f"medical.{template}",
            "variables": draft_variables(summary, indication, language), "problems": []}


def prompt_evaluate(*, template: str, version: int, language: str, limit: int | None = None) -> dict:
    """Run medical.``template`` v``version`` in ``language`` over its labelled studies (the first
    ``limit``); ``{"n", "model", "metrics", "primary", "higher_is_better", "failures"}``."""
    from apps.medical.decisions import draft_fact_problems
    from apps.medical.services.drafts import draft_step, draft_validate

    if template not in STUDIES:
        raise LookupError(f"medical has no labelled set for {template!r}")
    items = STUDIES[template][:limit]
    passed = first = agreed = answered = 0
    failures: list[dict] = []
    model = ""
    for name, indication_en, indication_zh in items:
        indication = indication_zh if language == "zh-hans" else indication_en
        state = study_state(name, indication, language, template)
        step = draft_step(state=state, version=version)
        model = model or step.model
        passed += step.ok
        first += step.first_try_accepted
        try:
            value = draft_validate(step.parsed)
        except ValueError:
            value = None
        if value is not None:
            answered += 1
            agreed += not draft_fact_problems(value, summary=state["summary"], lang=language)
        if not step.ok:
            failures.append({"item": name, "problem": "; ".join(step.problems)[:500]})
    n = len(items)
    metrics = {"gate_pass_rate": passed / n if n else 0.0, "first_try_pass_rate": first / n if n else 0.0,
               "fact_agreement": agreed / answered if answered else 0.0,
               "answered": answered / n if n else 0.0}
    return {"n": n, "model": model, "metrics": metrics, "primary": "gate_pass_rate",
            "higher_is_better": True, "failures": failures}
