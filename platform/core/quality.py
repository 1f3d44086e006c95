"""Quality gates for language-model output: what makes a text unusable before anyone sees it.

``text_problems(text, sources=, facts=)`` answers the reasons a text must not be shown (an empty list
when it passes); ``json_problems(value, sources=, fields=)`` applies it to every string of a parsed
answer and names the field. Each reason is a short, translatable sentence. The checks, each usable alone:

- :func:`loop_problems`: a sentence repeated, a word n-gram repeated over a threshold, a phrase
  repeating itself ("a report of a report of a report");
- :func:`debris_problems`: JSON debris in prose (``{{``, ``"key":``, brackets, escaped quotes);
- :func:`placeholder_problems`: "None available", "N/A", "[insert", "TBD", "XXX", empty text;
- :func:`gap_problems`: a hole where a value was left out ("the number of images is ,");
- :func:`copy_problems`: text copied from the input (a long run of words shared with any source, or the
  whole text found in one);
- :func:`fact_problems`: claims that contradict structured facts (numbers that match none of the facts,
  names that do not exist, app-given contradiction patterns).

Texts are tokenised as words for Latin scripts and as single characters for Chinese, so the same
thresholds hold for English and Simplified Chinese.
"""
from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

from django.utils.translation import gettext as _

CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
TOKEN_RE = re.compile(rf"[{CJK}]|[^\W{CJK}]+")
SENTENCE_SPLIT_RE = re.compile(r"(?<=[.!?;])\s+|[。！？；\n]+")
NGRAM_WORDS, NGRAM_CJK, NGRAM_REPEATS = 6, 10, 3
SENTENCE_MIN_TOKENS = 3
PHRASE_MIN_PERIOD, PHRASE_MAX_PERIOD, PHRASE_MIN_SPAN = 2, 60, 6
COPY_RUN_WORDS, COPY_RUN_CJK = 6, 12
COPY_WHOLE_WORDS, COPY_WHOLE_CJK = 3, 6
EXCERPT = 40

DEBRIS = [
    (re.compile(r"\{\{|\}\}"), "doubled braces"),
    (re.compile(r'"[^"\s]{1,40}"\s*:'), "a JSON key"),
    (re.compile(r"[{}\[\]]"), "brackets"),
    (re.compile(r'\\["nt/\\]'), "escape sequences"),
]
PLACEHOLDERS = re.compile(
    r"\bnone available\b|\bnot available\b|(?<![\w/])n/?a(?![\w/])|\[\s*insert|<\s*insert|\{\{|\bTBD\b|"
    r"\bTBC\b|\bXXX+\b|lorem ipsum|\bplaceholder\b|\bto be determined\b|\binsert [a-z ]{0,20}here\b|"
    r"待定|待补充|此处填写|【\s*插入|\[\s*插入",
    re.IGNORECASE)
EMPTY_WORDS = {"", "none", "null", "nil", "n/a", "na", "-", "--", "...", "…", "无", "空"}
GAP_RE = re.compile(r"\w\s+[,.;:!?](?=\s|$)")
NUMBER_RE = re.compile(r"(?<![\w.])[-+]?\d+(?:[.,]\d+)?(?:\s?%)?(?!\d)")
FACT_KEYS = {"numbers", "exempt_numbers", "names", "name_pattern", "contradictions"}


def text_problems(text: str, *, sources: Iterable[str] = (), facts: dict | None = None) -> list[str]:
    """Why ``text`` must not be shown: loops, debris, placeholders, copies of ``sources``, contradictions
    with ``facts`` (see :func:`fact_problems`). An empty list when the text passes."""
    if not isinstance(text, str):
        return [_("the text is missing")]
    problems = placeholder_problems(text)
    if text.strip():
        problems += loop_problems(text) + debris_problems(text) + gap_problems(text)
        problems += copy_problems(text, sources=sources)
        if facts:
            problems += fact_problems(text, facts=facts)
    return _unique(problems)


def json_problems(value: Any, *, sources: Iterable[str] = (), fields: Iterable[str] | None = None,
                  facts: dict | None = None) -> list[str]:
    """:func:`text_problems` of every string in a parsed answer, each reason prefixed by its field
    (``findings[2].text: ...``), plus strings repeated across items of one list.

    ``fields`` limits the check to the paths starting with one of the names (``"findings"`` covers
    ``findings[1].text``); None checks every string.
    """
    sources = list(sources)
    wanted = list(fields) if fields is not None else None
    problems: list[str] = []
    for path, text in _strings(value, ""):
        if wanted is not None and not any(_path_under(path, name) for name in wanted):
            continue
        problems += [f"{path or _('answer')}: {p}" for p in text_problems(text, sources=sources, facts=facts)]
    problems += _duplicate_items(value, "", wanted)
    return _unique(problems)


# --- loops ----------------------------------------------------------------------------------------

def loop_problems(text: str) -> list[str]:
    """A sentence said twice, a word n-gram said three times, or a phrase repeating itself."""
    problems: list[str] = []
    counts = Counter(_norm_sentence(s) for s in SENTENCE_SPLIT_RE.split(text))
    for sentence, n in counts.items():
        if n > 1 and len(tokens(sentence)) >= SENTENCE_MIN_TOKENS:
            problems.append(_("the sentence “%(s)s” is repeated %(n)d times")
                            % {"s": _excerpt(sentence), "n": n})
    toks = tokens(text)
    size = NGRAM_CJK if _mostly_cjk(toks) else NGRAM_WORDS
    grams = Counter(tuple(toks[i:i + size]) for i in range(len(toks) - size + 1))
    looped = [g for g, n in grams.most_common(3) if n >= NGRAM_REPEATS]
    if looped:
        problems.append(_("the words “%(s)s” come back %(n)d times") % {
            "s": _excerpt(_join(looped[0])), "n": grams[looped[0]]})
    phrase = repeating_phrase(text)
    if phrase:
        problems.append(_("the phrase “%(s)s” repeats itself") % {"s": _excerpt(phrase)})
    return problems


def repeating_phrase(text: str) -> str:
    """The unit of the first stretch of ``text`` that repeats itself back to back at least two and a
    half times (a period of 2 to 60 characters containing a letter), or ''."""
    low = re.sub(r"\s+", " ", text.lower())
    n = len(low)
    for period in range(PHRASE_MIN_PERIOD, min(PHRASE_MAX_PERIOD, n // 2) + 1):
        run = 0
        for k in range(n - period):
            if low[k] == low[k + period]:
                run += 1
                span = run + period
                if span >= max(PHRASE_MIN_SPAN, math.ceil(2.5 * period)):
                    start = k + period - span + 1
                    # Start the unit at a word start when the stretch allows it ("a report of").
                    shift = next((i for i in range(period) if start + i == 0
                                  or not low[start + i - 1].isalnum() and low[start + i].isalnum()), 0)
                    if start + shift + period > k + period + 1:
                        shift = 0
                    unit = low[start + shift:start + shift + period]
                    if any(ch.isalpha() for ch in unit) and unit.strip():
                        return unit.strip()
            else:
                run = 0
    return ""


# --- debris and placeholders ------------------------------------------------------------------------

def debris_problems(text: str) -> list[str]:
    """JSON or template debris left in prose."""
    found = [label for pattern, label in DEBRIS if pattern.search(text)]
    if not found:
        return []
    labels = {"doubled braces": _("doubled braces"), "a JSON key": _("a JSON key"),
              "brackets": _("brackets"), "escape sequences": _("escape sequences")}
    return [_("the text contains JSON debris (%(what)s)") % {"what": ", ".join(labels[f] for f in found)}]


def placeholder_problems(text: str) -> list[str]:
    """An empty text, or a placeholder instead of content."""
    if text.strip().strip(".,;:").strip().lower() in EMPTY_WORDS:
        return [_("the text is empty or a placeholder")]
    match = PLACEHOLDERS.search(text)
    if match:
        return [_("the text contains a placeholder (“%(s)s”)") % {"s": match.group(0)}]
    return []


def gap_problems(text: str) -> list[str]:
    """A hole where a value was left out: a word, a space, then punctuation ("the number of images is ,",
    "reduced to just .")."""
    match = GAP_RE.search(text)
    if match:
        return [_("the text has a gap where a value is missing (“%(s)s”)")
                % {"s": text[max(0, match.start() - 20):match.end()].strip()}]
    return []


# --- copies of the input ----------------------------------------------------------------------------

def copy_problems(text: str, *, sources: Iterable[str] = ()) -> list[str]:
    """Text pasted from the input: a run of 6 words (12 Chinese characters) shared with a source, the
    whole text (3 words or more, 6 Chinese characters) found inside one, or a whole short source (2 words
    or more) making up nearly all of the text ("First seizure." for the indication "First seizure")."""
    toks = tokens(text)
    if not toks:
        return []
    cjk = _mostly_cjk(toks)
    run_min, whole_min = (COPY_RUN_CJK, COPY_WHOLE_CJK) if cjk else (COPY_RUN_WORDS, COPY_WHOLE_WORDS)
    for source in sources:
        src = tokens(source or "")
        if not src:
            continue
        run = _longest_common_run(toks, src)
        whole_source = len(src) >= 2 and len(run) == len(src) and len(toks) <= len(src) + 2
        if len(run) >= run_min or (len(run) == len(toks) and len(toks) >= whole_min) or whole_source:
            return [_("the text copies the input (“%(s)s”)") % {"s": _excerpt(_join(run))}]
    return []


def _longest_common_run(a: list[str], b: list[str]) -> list[str]:
    best, end = 0, 0
    prev = [0] * (len(b) + 1)
    for i in range(1, len(a) + 1):
        cur = [0] * (len(b) + 1)
        ai = a[i - 1]
        for j in range(1, len(b) + 1):
            if ai == b[j - 1]:
                cur[j] = prev[j - 1] + 1
                if cur[j] > best:
                    best, end = cur[j], i
        prev = cur
    return a[end - best:end]


# --- facts ----------------------------------------------------------------------------------------

def fact_problems(text: str, *, facts: dict) -> list[str]:
    """Claims of ``text`` that contradict structured facts. ``facts`` keys (all optional):

    - ``names``: the names that exist (sensor names, feature names); with ``name_pattern`` (a regex), any
      match of the pattern that is not one of the names is a problem. Names are removed before numbers
      are read, so ``sensor_11`` is not the number 11.
    - ``numbers``: the numbers the text may quote; a number in the text that matches none of them
      (within the rounding it is quoted with, or as a percentage of a fraction) is a problem.
    - ``exempt_numbers``: numbers that may appear anyway (counts such as "top 3").
    - ``contradictions``: ``[(regex, reason), ...]``: a match is a claim the facts contradict; the
      reason is reported.
    """
    unknown = set(facts) - FACT_KEYS
    if unknown:
        raise ValueError(f"unknown fact keys: {sorted(unknown)}")
    problems: list[str] = []
    names = [str(n) for n in facts.get("names") or ()]
    known = {n.lower() for n in names}
    if facts.get("name_pattern"):
        for match in re.finditer(facts["name_pattern"], text, re.IGNORECASE):
            if match.group(0).lower() not in known:
                problems.append(_("“%(s)s” does not exist in the data") % {"s": match.group(0)})
    stripped = text
    for name in sorted(names, key=len, reverse=True):
        stripped = re.sub(re.escape(name), " ", stripped, flags=re.IGNORECASE)
    if "numbers" in facts:
        allowed = [float(x) for x in facts["numbers"] if _finite(x)]
        exempt = {float(x) for x in facts.get("exempt_numbers") or ()}
        for quoted in numbers_in(stripped):
            value, decimals, percent = quoted
            if value in exempt or _number_matches(value, decimals, percent, allowed):
                continue
            problems.append(_("the number %(n)s matches none of the facts") % {"n": _fmt(quoted)})
    for pattern, reason in facts.get("contradictions") or ():
        match = re.search(pattern, text, re.IGNORECASE)
        if match:
            problems.append(_("“%(s)s” contradicts the facts: %(why)s")
                            % {"s": match.group(0), "why": reason})
    return problems


def numbers_in(text: str) -> Iterator[tuple[float, int, bool]]:
    """``(value, decimals quoted, is a percentage)`` of each number in ``text``."""
    for match in NUMBER_RE.finditer(text):
        raw = match.group(0).replace(" ", "")
        percent = raw.endswith("%")
        raw = raw.rstrip("%").replace(",", ".") if re.fullmatch(r"[-+]?\d+,\d{1,2}%?", raw) else \
            raw.rstrip("%").replace(",", "")
        try:
            value = float(raw)
        except ValueError:
            continue
        decimals = len(raw.split(".", 1)[1]) if "." in raw else 0
        yield value, decimals, percent


def _number_matches(value: float, decimals: int, percent: bool, allowed: list[float]) -> bool:
    tol = 0.5 * 10 ** -decimals + 1e-9
    for fact in allowed:
        candidates = [fact * 100] if percent else [fact, fact * 100] if abs(fact) <= 1 else [fact]
        if percent and abs(fact) > 1:
            candidates.append(fact)
        for c in candidates:
            if abs(abs(c) - abs(value)) <= tol or abs(round(abs(c), decimals) - abs(value)) <= tol:
                return True
    return False


def _finite(x: Any) -> bool:
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def _fmt(quoted: tuple[float, int, bool]) -> str:
    value, decimals, percent = quoted
    return f"{value:.{decimals}f}{'%' if percent else ''}"


# --- helpers --------------------------------------------------------------------------------------

def tokens(text: str) -> list[str]:
    """Lower-cased words (Latin scripts) and single characters (Chinese), punctuation dropped."""
    return [t.lower() for t in TOKEN_RE.findall(text or "")]


def _mostly_cjk(toks: list[str]) -> bool:
    cjk = sum(1 for t in toks if re.fullmatch(f"[{CJK}]", t))
    return cjk * 2 > len(toks)


def _join(toks: Iterable[str]) -> str:
    out = ""
    for t in toks:
        if out and not (re.fullmatch(f"[{CJK}]", t) and re.search(f"[{CJK}]$", out)):
            out += " "
        out += t
    return out


def _norm_sentence(sentence: str) -> str:
    return _join(tokens(sentence))


def _excerpt(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= EXCERPT else text[:EXCERPT - 1] + "…"


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value, 1):
            yield from _strings(item, f"{path}[{i}]")


def _path_under(path: str, name: str) -> bool:
    return path == name or path.startswith(name + ".") or path.startswith(name + "[")


def _duplicate_items(value: Any, path: str, wanted: list[str] | None) -> list[str]:
    """Items of a list whose text repeats an earlier item's (three identical findings)."""
    problems: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            problems += _duplicate_items(item, f"{path}.{key}" if path else str(key), wanted)
    elif isinstance(value, (list, tuple)):
        seen: dict[str, int] = {}
        for i, item in enumerate(value, 1):
            item_path = f"{path}[{i}]"
            if wanted is not None and not any(_path_under(item_path, n) or _path_under(n, path)
                                              for n in wanted):
                continue
            texts = " ".join(t for _p, t in _strings(item, ""))
            key = _norm_sentence(texts)
            if key and key in seen:
                problems.append(_("%(path)s repeats item %(first)d")
                                % {"path": item_path, "first": seen[key]})
            else:
                seen.setdefault(key, i)
            problems += _duplicate_items(item, item_path, wanted)
    return problems
