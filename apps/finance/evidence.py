"""Evidence for extracted fields (Django-free): a value the language model extracts from a report is kept
only when the words it quotes occur in the report and support the value.

A quote *occurs* when, after normalisation (Unicode NFKC, lower case, whitespace runs collapsed, the
quote's outer punctuation dropped), it is a substring of the report. A quote *supports* a value when:

- numbers: the quote names the field (a cue such as "months", "years old", "DM", "岁", "个月") and the
  number nearest to that cue is the value (digits with thousands separators, English number words,
  Chinese numerals; a duration given in years counts as 12 × years);
- categories: among the field's coded values, the one whose cue matches the quote (the longest match
  wins when several do) is the value: "overdrawn" supports ``... < 0 DM``, "rents a flat" ``rent``.

Anything else stays missing, with the reason. The cue lists are deliberately narrow: a true value said
in words they do not know is lost (a missing field, imputed as average risk), never invented.
"""
from __future__ import annotations

import re
import unicodedata
from typing import Any

_WS = re.compile(r"\s+")
_EDGE = " \t\"'“”‘’.,;:。，；：、!?！？()（）[]【】"


def normalise(text: str) -> str:
    """NFKC, lower case, whitespace runs collapsed to one space."""
    return _WS.sub(" ", unicodedata.normalize("NFKC", text or "")).strip().lower()


def quote_occurs(quote: str, report_norm: str) -> bool:
    """Whether ``quote`` (normalised, outer punctuation dropped) occurs in the normalised report."""
    q = normalise(quote).strip(_EDGE)
    return bool(q) and q in report_norm


# --- numbers -----------------------------------------------------------------------------------------
_WORDS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine ten eleven "
                                     "twelve".split())}
_ZH_DIGITS = {"零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8,
              "九": 9}
_NUMBER_RE = re.compile(r"\d{1,3}(?:[,.]\d{3})+(?!\d)|\d+(?:\.\d+)?|\b(?:" + "|".join(_WORDS) + r")\b"
                        r"|[零一二两三四五六七八九十]+")


def _number_value(token: str) -> float | None:
    if token in _WORDS:
        return float(_WORDS[token])
    if token[0].isdigit():
        if re.fullmatch(r"\d{1,3}(?:[,.]\d{3})+", token):
            return float(re.sub(r"[,.]", "", token))
        return float(token)
    if "十" in token:  # 十, 十二, 二十, 二十五
        head, _, tail = token.partition("十")
        if any(c not in _ZH_DIGITS for c in head + tail) or len(head) > 1 or len(tail) > 1:
            return None
        return float((_ZH_DIGITS[head] if head else 1) * 10 + (_ZH_DIGITS[tail] if tail else 0))
    return float(_ZH_DIGITS[token]) if len(token) == 1 else None


def numbers_in(text: str) -> list[tuple[float, int, int]]:
    """``(value, start, end)`` of every number written in ``text`` (normalised)."""
    out = []
    for m in _NUMBER_RE.finditer(text):
        value = _number_value(m.group(0))
        if value is not None:
            out.append((value, m.start(), m.end()))
    return out


# Where a quote names the field: regular expressions on the normalised quote.
NUMERIC_CUES: dict[str, str] = {
    "duration_in_month": r"months?|years?|term|个月|月|年|期限",
    "credit_amount": r"\bdm\b|deutsche mark|amount|马克|金额",
    "installment_rate_in_percentage_of_disposable_income": r"instal+ments?|分期还款|还款比例|还款占",
    "present_residence_since": r"residence|address|lived|居住|住址",
    "age_in_years": r"years? old|\baged?\b|岁|年龄",
    "number_of_existing_credits_at_this_bank": r"credits?|loans?|贷款",
    "number_of_people_being_liable_to_provide_maintenance_for": r"dependants?|dependents?|maintenance|"
                                                                 r"supports?|抚养|赡养",
}
_YEARS_RE = re.compile(r"years?|年")

# Cues of each coded value; the longest match in a quote decides which value the quote states.
CATEGORY_CUES: dict[str, dict[str, str]] = {
    "status_of_existing_checking_account": {
        "... < 0 DM": r"overdrawn|overdraft|negative|(below|under|less than) 0\b|< ?0 ?dm|透支|为负|低于0",
        "0 <= ... < 200 DM": r"0 and 200|(below|under|less than) 200|< ?200|"
                             r"0 ?(至|到|-) ?200|不足200|低于200",
        "... >= 200 DM / salary assignments for at least 1 year": (
            r"at least 200|200 dm or more|(more than|over) 200|salary|>= ?200|不少于200|200马克以上|工资"),
        "no checking account": r"no (checking|current) account|without a (checking|current) account|"
                               r"(没有|无)支票账户",
    },
    "credit_history": {
        "no credits taken/ all credits paid back duly": r"no credits taken|never taken a (credit|loan)|"
                                                        r"从未贷款|没有贷款记录",
        "all credits at this bank paid back duly": r"(all|every) (existing )?(credits?|loans?) (at|"
                                                   r"with) this bank|"
                                                   r"本行(的)?(所有|全部)?贷款(均|全部)",
        "existing credits paid back duly till now": r"existing credits|current loans repaid|(so far|"
                                                    r"till now)|"
                                                    r"现有贷款",
        "delay in paying off in the past": r"delays?|late repayments?|arrears|延迟还款|逾期",
        "critical account/ other credits existing (not at this bank)": r"critical|other (banks?|credits?)|"
                                                                       r"关键账户|他行|其他银行",
    },
    "purpose": {
        "car (new)": r"new car|新车", "car (used)": r"used car|second-hand car|二手车",
        "furniture/equipment": r"furniture|equipment|家具|设备", "radio/television": r"radio|television|"
                                                                                 r"\btv\b|电视|收音机",
        "domestic appliances": r"appliances|家用电器|家电", "repairs": r"repairs?|维修",
        "education": r"education|tuition|教育", "retraining": r"retraining|再培训",
        "business": r"business|商业|生意", "others": r"purpose( is|:) other|其他用途|用途:其他|用途: 其他",
    },
    "savings_account_and_bonds": {
        "... < 100 DM": r"(below|under|less than) 100|< ?100|不足100|低于100",
        "100 <= ... < 500 DM": r"100 (and|to|-) 500|100 ?(至|到) ?500",
        "500 <= ... < 1000 DM": r"500 (and|to|-) 1,?000|500 ?(至|到) ?1000",
        "... >= 1000 DM": r"(at least|more than|over) 1,?000|1,?000 dm or more|不少于1000|超过1000|"
                          r"1000马克以上",
        "unknown/ no savings account": r"no savings|savings: none|(没有|无)储蓄",
    },
    "present_employment_since": {
        "unemployed": r"unemployed|no (job|work|employment)|employment: none|失业",
        "... < 1 year": r"(less than|under|below) (1|one|a) year|不满1年|不到一年|不满一年",
        "1 <= ... < 4 years": r"(1|one) (and|to|-) (4|four) years|1 ?(至|到) ?4 ?年",
        "4 <= ... < 7 years": r"(4|four) (and|to|-) (7|seven) years|4 ?(至|到) ?7 ?年",
        "... >= 7 years": r"(7|seven) years or (more|longer)|(at least|more than|over) (7|seven) years|"
                          r"7年以上|"
                          r"不少于7年",
    },
    "other_debtors_or_guarantors": {
        "none": r"no (guarantor|co-applicant|other debtor)|without (a )?(guarantor|co-applicant)|"
                r"(没有|无)(担保人|其他债务人)",
        "co-applicant": r"(?<!no )co-applicant|(?<!没有)共同申请人",
        "guarantor": r"(?<!no )guarantor|(?<!没有)担保人为|由担保人",
    },
    "property": {
        "real estate": r"real estate|不动产",
        "building society savings agreement/ life insurance": r"life insurance|building society|人寿保险|"
                                                              r"住房储蓄",
        "car or other, not in attribute Savings account/bonds": r"(property|asset)\W.{0,20}\bcar\b|"
                                                                r"car or other|"
                                                                r"财产.{0,6}汽车|汽车或其他",
        "unknown / no property": r"no property|property: none|(没有|无)财产",
    },
    "other_installment_plans": {
        "bank": r"instal+ment plan (at|with) (another|a) bank|plans?: one with a bank|其他银行有分期|"
                r"银行分期",
        "stores": r"instal+ment plan at a (store|shop)|store credit|商店.{0,4}分期",
        "none": r"no other instal+ment|(没有|无)其他分期",
    },
    "housing": {
        "rent": r"\brents?\b|rented|renting|租房|租住",
        "own": r"owns? (her |his |their |the |a )?(own )?(home|flat|house|apartment)|own home|homeowner|"
               r"housing: own|自有住房",
        "for free": r"for free|rent-free|免费居住",
    },
    "job": {
        "unemployed/ unskilled - non-resident": r"non-resident|非居民",
        "unskilled - resident": r"unskilled (resident|worker)|unskilled worker \(resident\)|非技术工人(\(|"
                                r"（)居民|本地非技术",
        "skilled employee / official": r"(?<!un)skilled employee|official|(?<!非)技术工人|职员",
        "management/ self-employed/ highly qualified employee/ officer": r"self-employed|management|highly "
                                                                          r"qualified|officer|自雇|管理层|"
                                                                          r"高级专业",
    },
    "telephone": {
        "none": r"no telephone( is registered| registered)?|no phone|telephone: none|没有(登记)?电话|电话:无|"
                r"电话: 无",
        "yes, registered under the customers name": r"telephone (is )?registered|registered (under|in)|"
                                                    r"telephone: yes|名下的电话|登记在(申请人|客户)名下",
    },
}
_CATEGORY_RES = {f: {v: re.compile(p) for v, p in cues.items()} for f, cues in CATEGORY_CUES.items()}
_NUMERIC_RES = {f: re.compile(p) for f, p in NUMERIC_CUES.items()}


def category_stated(name: str, quote_norm: str) -> str | None:
    """The coded value of field ``name`` a normalised quote states (longest cue wins), or None."""
    best, best_len = None, 0
    for value, pattern in _CATEGORY_RES[name].items():
        for m in pattern.finditer(quote_norm):
            if len(m.group(0)) > best_len:
                best, best_len = value, len(m.group(0))
    return best


def number_stated(name: str, quote_norm: str) -> list[float]:
    """The numbers a normalised quote gives for field ``name``: for each cue, the nearest number."""
    numbers = numbers_in(quote_norm)
    out: list[float] = []
    for m in _NUMERIC_RES[name].finditer(quote_norm):
        if not numbers:
            break
        value, start, end = min(numbers, key=lambda n: min(abs(n[1] - m.end()), abs(m.start() - n[2])))
        if name == "duration_in_month" and _YEARS_RE.fullmatch(m.group(0)):
            value *= 12
        out.append(value)
    return out


def evidence_problem(name: str, value: Any, quote: Any, report_norm: str) -> str | None:
    """Why ``value`` of field ``name`` is not supported by ``quote`` in the report, or None when it is."""
    if not isinstance(quote, str) or not quote.strip():
        return "no quote from the report"
    if not quote_occurs(quote, report_norm):
        return f"the quote {quote.strip()[:60]!r} does not occur in the report"
    q = normalise(quote)
    if name in _CATEGORY_RES:
        stated = category_stated(name, q)
        if stated is None:
            return f"the quote {quote.strip()[:60]!r} does not state a value of this field"
        if stated != value:
            return f"the quote states {stated!r}, not {value!r}"
        return None
    if name in _NUMERIC_RES:
        stated = number_stated(name, q)
        if not stated:
            return f"the quote {quote.strip()[:60]!r} gives no number for this field"
        if not any(abs(s - float(value)) < 1e-9 for s in stated):
            return f"the number in the quote ({stated[0]:g}) is not {float(value):g}"
        return None
    return "this field cannot be extracted"


_CLAUSE_SPLIT = re.compile(r"(?<=[.;!?])\s+|[。；！？;\n]+")


def supporting_span(name: str, value: Any, report: str) -> str | None:
    """The first sentence of the report that supports ``value`` of field ``name``, or None.

    Small models often give the right value with a quote that is not the report's words (the prompt's
    own wording, a reformatted number); the value is then kept only when a sentence of the report itself
    states it, by the same rules as a quote, and that sentence becomes the cited span.
    """
    report_norm = normalise(report or "")
    for clause in _CLAUSE_SPLIT.split(report or ""):
        clause = clause.strip()
        if clause and evidence_problem(name, value, clause, report_norm) is None:
            return clause
    return None
