"""Free text cleaned of identifying strings, dates and ID-like digit runs."""

from __future__ import annotations

import re
from collections.abc import Iterable

_DATE_RE = re.compile(
    r"\b(19|20)\d{2}[-./]?(0[1-9]|1[0-2])[-./]?(0[1-9]|[12]\d|3[01])\b"
    r"|\b\d{1,2}[-./]\d{1,2}[-./]\d{2,4}\b"
    r"|\d{2,4}\s*年\s*\d{1,2}\s*月(\s*\d{1,2}\s*日)?"
)
_LONG_DIGITS = re.compile(r"\d{5,}")


def scrub_text(text: str, phi: Iterable[str]) -> str:
    """Remove identifying strings, dates and long digit runs (IDs) from free text."""
    pattern = phi_pattern(phi)
    out = pattern.sub("[removed]", text) if pattern is not None else text
    out = _DATE_RE.sub("[date]", out)
    out = _LONG_DIGITS.sub("[number]", out)
    return re.sub(r"\s+", " ", out).strip()



def phi_pattern(phi: Iterable[str]) -> re.Pattern[str] | None:
    """One case-insensitive regex matching any PHI string as a whole token (not inside a longer
    word or number: '134' does not match inside '2.25.1345'). None for an empty set."""
    needles = sorted({p.strip() for p in phi if p and p.strip()}, key=len, reverse=True)
    if not needles:
        return None
    alternation = "|".join(re.escape(n) for n in needles)
    return re.compile(rf"(?<![A-Za-z0-9])(?:{alternation})(?![A-Za-z0-9])", re.IGNORECASE)
