"""Recall and false-positive rate of the free-text PHI filter on a labelled set (JSON lines).

One record per line: ``{"mode": "free" | "descriptor", "text": ..., "phi": [identifiers],
"keep": [clinical phrases], "known": [the study's own identifiers, optional]}``.

* An identifier is **caught** when none of its parts survives in the filtered text (words of two or
  more letters, digit runs of three or more, runs of Chinese characters; case-insensitive, whole
  tokens). Recall = caught / identifiers.
* A clinical phrase is a **false positive** when it is no longer in the filtered text verbatim.
  False-positive rate = damaged phrases / clinical phrases.

Used by ``benchmarks/phi_filter_eval.py`` and by the tests (a recall floor and a false-positive
ceiling from the measured values).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .freetext import redact

_PARTS = re.compile(r"[A-Za-z]{2,}|\d{3,}|[\u4e00-\u9fff]+")


@dataclass
class EvalResult:
    identifiers: int = 0
    caught: int = 0
    phrases: int = 0
    damaged: int = 0
    missed: list[str] = field(default_factory=list)
    damaged_phrases: list[str] = field(default_factory=list)

    @property
    def recall(self) -> float:
        return self.caught / self.identifiers if self.identifiers else 1.0

    @property
    def false_positive_rate(self) -> float:
        return self.damaged / self.phrases if self.phrases else 0.0

    def line(self, label: str) -> str:
        return (f"{label}: recall {self.caught}/{self.identifiers} = {self.recall:.3f}; false positives "
                f"{self.damaged}/{self.phrases} = {self.false_positive_rate:.3f}")


def _survives(part: str, text: str) -> bool:
    if re.match(r"[\u4e00-\u9fff]", part):
        return part in text
    return re.search(rf"(?<![A-Za-z0-9]){re.escape(part)}(?![A-Za-z0-9])", text, re.IGNORECASE) is not None


def load_records(path: str | Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def evaluate(records: list[dict[str, Any]]) -> EvalResult:
    """Run the filter over each record and count caught identifiers and damaged clinical phrases."""
    result = EvalResult()
    for rec in records:
        out = redact(rec["text"], known=rec.get("known") or (), descriptor=rec.get("mode") == "descriptor")
        for phi in rec.get("phi") or []:
            result.identifiers += 1
            parts = _PARTS.findall(phi) or [phi]
            if any(_survives(p, out) for p in parts):
                result.missed.append(f"{phi!r} in {out!r}")
            else:
                result.caught += 1
        for phrase in rec.get("keep") or []:
            result.phrases += 1
            if phrase not in out:
                result.damaged += 1
                result.damaged_phrases.append(f"{phrase!r} in {out!r}")
    return result
