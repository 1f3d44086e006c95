"""The free-text PHI filter (presidio + patterns + allowlist) and the independent last check: measured
recall and false-positive rate on the labelled sets, clinical words kept, offline, and the last check
catching what the filter misses without firing on a clean prompt."""
from __future__ import annotations

import string
import subprocess
import sys
from pathlib import Path

import pytest

from apps.medical.deidentify import privacy_findings, redact
from apps.medical.deidentify.evaluation import evaluate, load_records

DATA = Path(__file__).resolve().parent / "data" / "phi_eval"
PROMPTS = Path(__file__).resolve().parents[1] / "prompts"
ROOT = Path(__file__).resolve().parents[3]

# Floors/ceilings from the measured values (docs/medical_pipeline.md, Privacy): dev 63/63 and 0/68,
# holdout (written after the rules were fixed) 49/51 on its first run, 50/51 after one bug fix, 0/59.
RECALL_FLOOR = {"dev": 0.98, "holdout": 0.94}
FALSE_POSITIVE_CEILING = {"dev": 0.02, "holdout": 0.03}


@pytest.mark.parametrize("name", ["dev", "holdout"])
def test_recall_and_false_positive_rate_on_the_labelled_sets(name: str) -> None:
    records = load_records(DATA / f"{name}.jsonl")
    result = evaluate(records)
    assert result.identifiers >= 50 and result.phrases >= 25
    assert result.recall >= RECALL_FLOOR[name], result.missed
    assert result.false_positive_rate <= FALSE_POSITIVE_CEILING[name], result.damaged_phrases


def test_the_sets_together_are_large_enough_and_bilingual() -> None:
    records = load_records(DATA / "dev.jsonl") + load_records(DATA / "holdout.jsonl")
    identifiers = [p for r in records for p in r.get("phi") or []]
    phrases = [p for r in records for p in r.get("keep") or []]
    assert len(identifiers) >= 100 and len(phrases) >= 50
    assert any("\u4e00" <= ch <= "\u9fff" for p in identifiers for ch in p)
    assert any("\u4e00" <= ch <= "\u9fff" for p in phrases for ch in p)


@pytest.mark.parametrize("descriptor", [False, True])
@pytest.mark.parametrize("text", ["mass", "Hodgkin lymphoma", "Parkinson disease", "右肺上叶结节",
                                  "Crohn disease", "AX T2 FLAIR", "CT CHEST W/O CONTRAST"])
def test_clinical_words_are_kept(text: str, descriptor: bool) -> None:
    assert redact(text, descriptor=descriptor) == text


def test_names_without_a_cue_go_in_descriptors_and_as_known_identifiers() -> None:
    assert redact("CT chest Fenwick", descriptor=True) == "CT chest [removed]"
    assert "Fenwick" in redact("CT chest Fenwick")  # free text: one unknown word alone is no name...
    # ...unless it is one of the study's own identifiers
    assert redact("CT chest Fenwick", known={"Fenwick"}) == "CT chest [removed]"
    assert redact("Fenwick Blathers called") == "[removed] called"  # two unknown capitalised words are


def test_the_filter_runs_offline() -> None:
    """presidio with the no-op NLP engine: no model download, no public-suffix-list fetch (sockets off)."""
    code = (
        "import socket, sys\n"
        "def refuse(*a, **k):\n    raise OSError('network used')\n"
        "socket.socket.connect = refuse\nsocket.create_connection = refuse\n"
        f"sys.path.insert(0, {str(ROOT)!r}); sys.path.insert(0, {str(ROOT / 'platform')!r})\n"
        "from apps.medical.deidentify import redact\n"
        "print(redact('mail jane.doe@example.org, Mr Fenwick Blathers, tel 555-867-5309'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "mail [removed], Mr [removed], tel [removed]"


@pytest.mark.parametrize("text, kind", [
    ("Patient seen by Dr Okonkwo today", "name_after_title"),
    ("ordered by Cordelia Ravenscroft", "name_after_cue"),
    ("Blathers^Fenwick", "dicom_person_name"),
    ("患者林有才，男，62岁", "chinese_name_context"),
    ("call 555-867-5309", "phone"),
    ("手机 138 1234 5678", "phone"),
    ("ID 110101199003074514", "national_id"),
    ("write to jane.doe@example.org", "email"),
    ("lives at 42 Wallaby Way", "street_address"),
    ("住北京市朝阳区建国路88号", "street_address"),
    ("born 17 March 1958", "date"),
    ("seen 2021-11-02", "date"),
    ("MRN: 55102934", "record_number"),
])
def test_the_last_check_names_the_kind_never_the_value(text: str, kind: str) -> None:
    found = privacy_findings([{"role": "user", "content": text}])
    assert any(f.endswith(kind) for f in found), found
    value = text.split()[-1]
    assert all(value not in f for f in found)


def test_the_last_check_catches_what_the_filter_misses() -> None:
    # a given name whose second character is common in clinical Chinese: the filter's guard against
    # "患者曾行…" lets it through; the independent check does not
    text = "患者林有才，男，62岁，咳嗽两周"
    assert "林有才" in redact(text)
    assert privacy_findings([{"role": "user", "content": redact(text)}])
    # and the study's own identifiers, whatever their shape
    assert privacy_findings({"features": "series of Quux"}, known={"Quux"}) == [
        "features: one of the study's own identifiers"]


def test_the_last_check_is_quiet_on_every_rendered_template() -> None:
    """The templates themselves and clean variables never trip the check (or no draft would be made)."""
    variables = {"modality": "CT", "body_part": "CHEST", "study_description": "CT CHEST [removed]",
                 "indication": "Mr [removed], DOB [removed]: persistent cough, known Hodgkin lymphoma",
                 "features": '{"series_count":1,"series":[{"modality":"CT","description":"AX 5mm",'
                             '"pixel_mm":0.488,"intensity_HU":{"mean":-312.4,"p50":20.0}}]}'}
    bodies = sorted(PROMPTS.glob("*/v*.txt"))
    assert bodies
    for path in bodies:
        text = string.Template(path.read_text(encoding="utf-8")).safe_substitute(variables)
        assert privacy_findings([{"role": "user", "content": text}]) == [], path.name
