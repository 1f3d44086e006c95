"""The allowlist vocabulary of the free-text PHI filter: clinical and common English words, Chinese
clinical terms. A descriptor token outside it is redacted before the model sees it (over-redacting a
descriptor is acceptable, leaking a name is not). Personal names are deliberately absent; eponyms of
diseases (Hodgkin, Parkinson, Crohn...) are listed."""

from __future__ import annotations

import functools
from pathlib import Path

_HERE = Path(__file__).resolve().parent


def _words(name: str) -> frozenset[str]:
    out: set[str] = set()
    for line in (_HERE / name).read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("#"):
            continue
        out.update(w.strip().lower() for w in line.split() if w.strip())
    return frozenset(out)


@functools.cache
def english() -> frozenset[str]:
    """Lower-case English words kept in descriptors."""
    return _words("clinical_en.txt") | _words("common_en.txt")


@functools.cache
def chinese() -> frozenset[str]:
    """Chinese clinical terms (whole words; the descriptor filter segments by longest match)."""
    return _words("clinical_zh.txt")


@functools.cache
def _chinese_max_len() -> int:
    return max((len(w) for w in chinese()), default=1)


def english_known(word: str) -> bool:
    """True when an English token (any case, trailing punctuation ignored) is in the vocabulary;
    plurals, possessives and hyphenated compounds of known words count."""
    w = word.lower().strip(".,;:!?()[]{}\"'+")
    if not w:
        return True
    vocab = english()
    if w in vocab:
        return True
    for suffix in ("'s", "s", "es"):
        if w.endswith(suffix) and w[: -len(suffix)] in vocab:
            return True
    if "-" in w or "/" in w:
        parts = [p for p in w.replace("/", "-").split("-") if p]
        return bool(parts) and all(english_known(p) or p.isdigit() for p in parts)
    return False


def chinese_segments(run: str) -> list[tuple[str, bool]]:
    """A run of CJK characters split by longest match into (piece, known) pairs; unknown characters
    are grouped together."""
    vocab, longest = chinese(), _chinese_max_len()
    out: list[tuple[str, bool]] = []
    i = 0
    while i < len(run):
        for size in range(min(longest, len(run) - i), 0, -1):
            piece = run[i : i + size]
            if piece in vocab:
                out.append((piece, True))
                i += size
                break
        else:
            if out and not out[-1][1]:
                out[-1] = (out[-1][0] + run[i], False)
            else:
                out.append((run[i], False))
            i += 1
    return out
