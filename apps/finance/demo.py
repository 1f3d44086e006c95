"""First-run setup of the finance app (called by ``manage.py setup_demo``).

- ``demo_models``: train and activate the default scorecard from the German Credit training file
  (:func:`training_csv_path`: the shared file, or the copy shipped in ``data/``) if no version exists
  (deterministic: seed 0, so every setup builds the same model from the same data).
- ``demo_seed``: the same, then queue one worked example assessment (a short English credit report)
  if there is none.
"""
from __future__ import annotations

import os
from pathlib import Path

from django.conf import settings

from apps.finance import services
from apps.finance.models import Assessment, CreditModelVersion
from core import shipped_data

DEMO_APPLICATION_ID = "DEMO-0001"
DEMO_REPORT = (
    "Credit application report. The applicant, 35 years old, asks for 4,500 DM over 24 months to buy a used "
    "car. She has worked as a skilled employee for 5 years and owns her flat. Her checking account is "
    "overdrawn (balance below 0 DM) and she has less than 100 DM in savings. She has repaid all existing "
    "credits at this bank duly; she has one credit with us and no other instalment plans. The instalment "
    "would take class 3 of 4 of her disposable income. One dependant; telephone registered in her name; no "
    "guarantor; at her present address for 4 years."
)


def training_csv_path() -> Path:
    """The default scorecard's training file: ``$FINANCE_TRAIN_CSV`` when set (used as given, even when
    missing), else the configured ``FINANCE_TRAIN_CSV`` setting (``../shared/data/...``) when it is there,
    else the copy shipped in the repository's ``data/`` folder (``core.shipped_data``)."""
    explicit = os.environ.get("FINANCE_TRAIN_CSV", "")
    if explicit:
        return Path(explicit)
    configured = getattr(settings, "FINANCE_TRAIN_CSV", "")
    if configured and Path(configured).is_file():
        return Path(configured)
    return shipped_data.demo_data_file("finance/german_credit_train.csv")


def demo_models(*, stdout=None) -> CreditModelVersion | None:
    """Train and activate the default scorecard if no version exists; returns the active version."""
    active = CreditModelVersion.objects.filter(is_active=True).first()
    if active is not None:
        _say(stdout, f"finance: scorecard v{active.version} is active")
        return active
    if CreditModelVersion.objects.exists():
        _say(stdout, "finance: scorecard versions exist but none is active; activate one on the Models page")
        return None
    path = training_csv_path()
    if not path.is_file():
        _say(stdout, f"finance: no training data at {path} (set FINANCE_TRAIN_CSV); no scorecard trained")
        return None
    version = services.credit_model_train(data=path.read_bytes(), filename=path.name, activate=True,
                                          note="default version (setup_demo)")
    m = version.metrics
    _say(stdout, f"finance: trained and activated scorecard v{version.version} ({version.algorithm}) on "
                 f"{version.data_rows} rows: CV AUC {m.get('cv_auc')}, KS {m.get('ks')}, "
                 f"Brier {m.get('brier')}")
    return version


def demo_seed(*, owner, stdout=None) -> None:
    """Default scorecard, then one worked example assessment (queued) if none exists."""
    if demo_models(stdout=stdout) is None:
        return
    if Assessment.objects.filter(application_id=DEMO_APPLICATION_ID).exists():
        _say(stdout, f"finance: example {DEMO_APPLICATION_ID} exists")
        return
    applicant = {} if settings.LLM_ENABLED else _demo_applicant()
    job = services.assessment_create(owner=owner, applicant=applicant, report=DEMO_REPORT, language="en",
                                     application_id=DEMO_APPLICATION_ID, source=Assessment.Source.DEMO)
    _say(stdout, f"finance: queued the worked example {DEMO_APPLICATION_ID} ({job.pk})")


def _demo_applicant() -> dict:
    """The demo report's facts as fields (used when the language model is switched off)."""
    return {
        "status_of_existing_checking_account": "... < 0 DM", "duration_in_month": 24,
        "credit_history": "all credits at this bank paid back duly", "purpose": "car (used)",
        "credit_amount": 4500, "savings_account_and_bonds": "... < 100 DM",
        "present_employment_since": "4 <= ... < 7 years",
        "installment_rate_in_percentage_of_disposable_income": 3, "other_debtors_or_guarantors": "none",
        "present_residence_since": 4, "property": "real estate", "age_in_years": 35,
        "other_installment_plans": "none", "housing": "own", "number_of_existing_credits_at_this_bank": 1,
        "job": "skilled employee / official", "number_of_people_being_liable_to_provide_maintenance_for": 1,
        "telephone": "yes, registered under the customers name",
    }


def _say(stdout, text: str) -> None:
    if stdout is not None:
        stdout.write(text)
