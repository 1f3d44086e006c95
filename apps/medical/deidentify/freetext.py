"""The free-text PHI filter: every free-text value (descriptors, protocol and series names, comments,
history, the clinical indication) passes here before it reaches a prompt or the stored de-identified
copy.

Built on ``presidio-analyzer`` with its ``NoOpNlpEngine`` (no spaCy model; fully offline: the public
suffix list is never fetched) and pattern recognizers added for what a model-free engine cannot see:
Chinese resident IDs (checksum), mainland mobile and landline numbers, other phone shapes, record
numbers after MRN/ID/病历号/住院号, numeric and written-out dates, names after titles and cues ("Mr",
"Dr", "Seen by", "Ordered by"), DICOM ``LAST^FIRST``, Chinese names by context (患者…, …医生),
addresses in English and Chinese, room and bed numbers; plus e-mail and IP addresses (presidio's own).

On top of the patterns:

* the study's own identifiers (``known``, collected from every nesting level of the data set) as
  exact, case-insensitive whole-token matches;
* runs of two or more capitalised words that are not in the vocabulary (a name with no cue);
* for descriptors (``descriptor=True``) an allowlist: a token that is not a clinical or common English
  word, a short code (T1, 3D, 5mm) or a Chinese clinical term is redacted.

Every hit becomes ``[removed]``. Measured recall and false-positive rate: ``docs/medical_pipeline.md``
(``benchmarks/phi_filter_eval.py``).
"""

from __future__ import annotations

import functools
import logging
import os
import re
import threading
from collections.abc import Iterable
from typing import Any

from . import vocabulary
from .text import phi_pattern

os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")

REDACTED = "[removed]"
_LANG = "en"  # presidio's registry key; no tokenisation happens, so Chinese text goes through it too

_MONTH = (r"(?i:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
          r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)")
_CAP_WORD = r"[A-Z][a-zA-Z'\-]+"
_NAME = rf"(?:[A-Z]\.\s*)?{_CAP_WORD}(?:\s+(?:[A-Z]\.\s*)?{_CAP_WORD}){{0,2}}"
_TITLES = r"(?i:mr|mrs|ms|miss|mx|dr|prof|professor|sir|dame|madam|nurse|rev|doctor)"
_CUES = (r"(?i:seen\s+by|ordered\s+by|referred\s+by|requested\s+by|reported\s+by|dictated\s+by|read\s+by"
         r"|signed\s+by|performed\s+by|verified\s+by|reviewed\s+by|approved\s+by|scanned\s+by|sent\s+by"
         r"|discussed\s+with|spoke\s+(?:with|to)|d/w|called|paged|attn|attention|cc|contact|son|daughter"
         r"|wife|husband|mother|father|brother|sister|partner|guardian|friend|neighbou?r|caregiver|carer"
         r"|patient|pt|name|named|physician|surgeon|radiologist|technologist|tech|resident|fellow"
         r"|attending|consultant|gp|pcp|provider|clinician|oncologist|cardiologist|neurologist|for|by"
         r"|from|to|of|with|and|re)")
_SURNAMES = ("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余"
             "杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙"
             "史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁"
             "岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆"
             "蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳穆农司卓古吉缪简车项连芦麦褚娄窦戚岑"
             "景党宫费卜冷晏席卫米柏宗瞿桂佟应臧闵苟邬边卞姬师仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖"
             "巩佘池查麻苑迟邝")
_ZH_SURNAME = rf"(?:欧阳|司马|上官|诸葛|东方|皇甫|尉迟|公孙|慕容|长孙|宇文|司徒|令狐|[{_SURNAMES}])"
_ZH_NAME_CUE = (r"(?:患者|病人|患儿|姓名|家属|联系人|申请医生|申请医师|主治医生|主治医师"
                r"|报告医生|审核医生|检查医生|送检医生|开单医生|医生|医师|护士|技师|由|经|请)")
_ZH_NAME_AFTER = r"(?:医生|医师|大夫|护士|主任|教授|先生|女士|小姐|老师|技师|同志)"
_CJK = r"\u4e00-\u9fff"
#: characters that rarely end a Chinese given name but often follow a surname-like clinical character
_ZH_NOT_NAME = set("行于因有无患诉述感觉在为以及和伴出现自经已未否既血热压请")


def _cn_id_valid(text: str) -> bool:
    digits = re.sub(r"\s", "", text).upper()
    if len(digits) != 18:
        return False
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    try:
        total = sum(int(d) * w for d, w in zip(digits[:17], weights, strict=True))
    except ValueError:
        return False
    return "10X98765432"[total % 11] == digits[17]


_PATTERNS: dict[str, list[tuple[str, str, float]]] = {
    "CN_RESIDENT_ID": [("cn_id", r"(?<![0-9A-Za-z])[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])"
                                 r"(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx](?![0-9A-Za-z])", 0.6)],
    "CN_PHONE": [
        ("mobile", r"(?<!\d)(?:\+?86[-\s]?)?1[3-9]\d(?:[-\s]?\d{4}){2}(?!\d)", 0.7),
        ("landline", r"(?<!\d)(?:\(0\d{2,3}\)|0\d{2,3}-)\s?\d{7,8}(?!\d)", 0.7),
    ],
    "PHONE": [
        ("nanp", r"(?<![\d.])(?:\+?1[-.\s]?)?(?:\(\d{3}\)\s?|\d{3}[-.\s])\d{3}[-.\s]\d{4}(?![\d])", 0.7),
        ("local", r"(?<![\d.\-/])\d{3}-\d{4}(?![\d\-/])", 0.5),
        ("intl", r"(?<![\w+])\+\d{1,3}(?:[-.\s]?\(?\d{1,5}\)?){2,5}(?!\d)", 0.6),
        ("cue", r"(?<=(?i:tel|phone|ph|mobile|mob|cell|fax|电话|手机|联系电话|联系方式)\.?\s*[:：#]?\s*)"
                r"\+?\d[\d\s\-().]{5,}\d", 0.8),
    ],
    "RECORD_NUMBER": [
        ("cue", r"(?<=(?i:mrn|med(?:ical)?\s*rec(?:ord)?(?:\s*(?:no|number|#))?|record\s*(?:no|number|#)"
                r"|chart\s*(?:no|number|#)?|acc(?:ession)?(?:\s*(?:no|number|#))?|ssn|nhs(?:\s*(?:no|number))?"
                r"|id(?:\s*(?:no|number))?|patient\s*(?:id|no|number)|hospital\s*(?:no|number)"
                r"|case\s*(?:no|number)|study\s*id|insurance(?:\s*(?:no|number))?|policy(?:\s*(?:no|number))?"
                r"|病历号|住院号|门诊号|就诊号|登记号|影像号|检查号|ID号|身份证号?|医保号|卡号|编号|床号)"
                r"\.?\s*[:#：]?\s*)(?=[A-Za-z\-/]*\d)[A-Za-z0-9][A-Za-z0-9\-/]{2,}", 0.8),
        ("token", r"(?<![A-Za-z0-9.\-])(?=(?:[A-Za-z\-_/]*\d){4})(?=[A-Za-z0-9\-_/]*[A-Za-z\-_/])"
                  r"[A-Za-z0-9]+(?:[-_/][A-Za-z0-9]+)+(?![A-Za-z0-9\-])", 0.5),
        ("letters_digits", r"(?<![A-Za-z0-9.\-])[A-Za-z]{1,4}\d{5,}[A-Za-z]{0,3}(?![A-Za-z0-9])", 0.5),
        ("digits", r"(?<![\d.])\d{5,}(?![\d.])", 0.4),
    ],
    "DATE": [
        ("iso", r"(?<!\d)(?:19|20)\d{2}[-./](?:0?[1-9]|1[0-2])[-./](?:0?[1-9]|[12]\d|3[01])(?!\d)", 0.7),
        ("dmy", r"(?<![\d.])\d{1,2}[-./]\d{1,2}[-./](?:\d{4}|\d{2})(?![\d.])", 0.6),
        ("written_dmy", rf"(?<!\w)\d{{1,2}}(?:st|nd|rd|th)?(?:\s+of)?[\s\-]+{_MONTH}\.?,?[\s\-]+"
                        r"\d{2,4}(?!\d)", 0.8),
        ("written_mdy", rf"(?<![A-Za-z]){_MONTH}\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}(?!\d)", 0.8),
        ("month_year", rf"(?<![A-Za-z]){_MONTH}\.?,?\s+(?:19|20)\d{{2}}(?!\d)", 0.7),
        ("day_month", rf"(?<!\w)\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH}(?![A-Za-z])", 0.5),
        ("zh", r"\d{2,4}\s*年\s*\d{1,2}\s*月(?:\s*\d{1,2}\s*[日号])?|\d{1,2}\s*月\s*\d{1,2}\s*[日号]", 0.8),
        ("year_cue", r"(?<=(?i:born|dob|d\.o\.b\.?|b\.|birth|since|in|出生|生于)\s*(?:in\s+)?[:：]?\s*)"
                     r"(?:19|20)\d{2}(?!\d)", 0.6),
    ],
    "PERSON": [
        ("title", rf"(?<=\b{_TITLES}\.?\s+){_NAME}", 0.8),
        ("dicom", rf"(?<![\w^])[A-Za-z{_CJK}\u00c0-\u024f'\-]+\^[A-Za-z{_CJK}\u00c0-\u024f'\-]*"
                  rf"(?:\^[A-Za-z\u00c0-\u024f'\-.]*){{0,3}}", 0.9),
        ("zh_before", rf"(?<={_ZH_NAME_CUE}[:：\s]*){_ZH_SURNAME}[{_CJK}]{{1,2}}", 0.6),
        ("zh_after", rf"{_ZH_SURNAME}[{_CJK}]{{0,2}}(?={_ZH_NAME_AFTER})", 0.6),
        ("label", r"(?<=(?i:name|姓名)\s*[:：]\s*)[^\s,;，；]{2,}(?:\s+[A-Z][^\s,;]+){0,2}", 0.8),
    ],
    "PERSON_CUE": [("cue", rf"(?<=\b{_CUES}\s+){_NAME}", 0.5)],
    "ADDRESS": [
        ("street", rf"(?<!\w)\d{{1,5}}[A-Za-z]?\s+(?:{_CAP_WORD}\.?\s+){{1,4}}"
                   r"(?i:street|st|road|rd|avenue|ave|lane|ln|drive|dr|boulevard|blvd|court|ct|way|place|pl"
                   r"|terrace|close|crescent|cres|square|sq|parkway|pkwy|highway|hwy|row|mews|gardens|grove)\b\.?"
                   rf"(?:,?\s*(?:(?i:apt|apartment|flat|unit|suite)\.?\s*#?\w+))?"
                   rf"(?:,\s*{_CAP_WORD}(?:\s+{_CAP_WORD}){{0,2}})?(?:,?\s+[A-Z]{{2}})?(?:\s+\d{{5}}(?:-\d{{4}})?)?",
         0.8),
        ("pobox", r"(?i:p\.?\s?o\.?\s*box)\s*\d+", 0.8),
        ("apt", r"(?<=\b(?i:apt|apartment|flat|suite)\.?\s*#?\s*)\d+[A-Za-z]?\b", 0.6),
        ("uk_postcode", r"\b[A-Z]{1,2}\d[A-Z\d]?\s+\d[A-Z]{2}\b", 0.6),
        ("zip_state", r"(?<=\b[A-Z]{2}\s)\d{5}(?:-\d{4})?\b", 0.5),
        ("zh_road", rf"[{_CJK}]{{1,8}}(?:路|街|大道|巷|弄|胡同)\s*\d+\s*号"
                    r"(?:\s*[\d\-]+\s*(?:栋|幢|号楼|楼|单元|室|层))*", 0.8),
        ("zh_admin", rf"[{_CJK}]{{2,4}}(?:省|自治区|市)[{_CJK}]{{1,6}}?(?:市|区|县)"
                     rf"(?:[{_CJK}]{{1,8}}?(?:路|街|镇|乡|村|小区|大道))?(?:\s*\d+\s*号)?", 0.7),
        ("zh_estate", rf"[{_CJK}]{{2,8}}(?:小区|花园|新村|公寓|大厦)"
                      r"(?:\s*\d+\s*(?:栋|幢|号楼|单元|室|层|号))*", 0.6),
    ],
    "ROOM": [
        ("room", r"(?<=\b(?i:room|rm|bed|ward|bay|cubicle|bed\s+no)\.?\s*#?\s*)[A-Za-z]?\d+[A-Za-z]?\b", 0.6),
        ("zh_room", r"\d+\s*(?:号床|床|病房|病区|号房)|(?<=(?:病房|房间|病区)[:：]?\s*)\d+", 0.6),
    ],
}


@functools.cache
def _analyzer():
    """The presidio engine (built once per process; importing presidio takes a few seconds)."""
    from presidio_analyzer import AnalyzerEngine, Pattern, PatternRecognizer, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NoOpNlpEngine
    from presidio_analyzer.predefined_recognizers import EmailRecognizer, IpRecognizer

    # presidio logs every call at INFO (no text, but noise in the worker's log); warnings still show
    logging.getLogger("presidio-analyzer").setLevel(logging.WARNING)
    flags = re.DOTALL | re.MULTILINE

    class _Recognizer(PatternRecognizer):
        def validate_result(self, pattern_text: str) -> bool | None:
            if self.supported_entities == ["CN_RESIDENT_ID"]:
                return _cn_id_valid(pattern_text)
            return None

        def invalidate_result(self, pattern_text: str) -> bool | None:
            entity = self.supported_entities[0]
            if entity == "PERSON_CUE":  # a cue word before an ordinary capitalised word is no name
                return all(vocabulary.english_known(w) for w in re.findall(r"[A-Za-z'\-]+", pattern_text))
            if entity == "PERSON" and re.search(f"[{_CJK}]", pattern_text) and "^" not in pattern_text:
                return _zh_not_name(pattern_text)
            return None

    registry = RecognizerRegistry(global_regex_flags=flags, supported_languages=[_LANG])
    for entity, patterns in _PATTERNS.items():
        registry.add_recognizer(_Recognizer(
            supported_entity=entity, name=f"medical_{entity.lower()}", supported_language=_LANG,
            patterns=[Pattern(name, regex, score) for name, regex, score in patterns],
            global_regex_flags=flags))
    registry.add_recognizer(EmailRecognizer(supported_language=_LANG))
    registry.add_recognizer(IpRecognizer(supported_language=_LANG))
    engine = NoOpNlpEngine(models=[{"lang_code": _LANG, "model_name": "none"}])
    return AnalyzerEngine(registry=registry, nlp_engine=engine, supported_languages=[_LANG])


_LOCK = threading.Lock()


def _zh_not_name(text: str) -> bool:
    """A surname-like clinical word (高血压, 曾行…) is not a name."""
    if len(text) >= 2 and text[1] in _ZH_NOT_NAME:
        return True
    return any(text.startswith(w) for w in vocabulary.chinese() if len(w) >= 2)


_CAP_NAME = r"[A-Z][a-z']+(?:-[A-Z]?[a-z']+)*"
_CAP_RUN = re.compile(rf"(?<![A-Za-z'\-]){_CAP_NAME}(?:\s+{_CAP_NAME})+")
_TOKEN = re.compile(rf"[{_CJK}]+|[A-Za-z0-9][A-Za-z0-9'\-+./]*")
_SHORT_CODE = re.compile(r"[A-Za-z]{0,4}\d{1,4}(?:[.,]\d+)?[A-Za-z]{0,4}[+\-]?"
                         r"|\d+(?:[.,]\d+)?[-x/]\d+(?:[.,]\d+)?")


def _pattern_spans(text: str) -> list[tuple[int, int]]:
    with _LOCK:  # presidio's engine is not documented as thread-safe; the calls are short
        results = _analyzer().analyze(text=text, language=_LANG)
    return [(r.start, r.end) for r in results]


def _name_run_spans(text: str) -> list[tuple[int, int]]:
    """Two or more capitalised words in a row, none of them in the vocabulary: a name without a cue."""
    spans = []
    for m in _CAP_RUN.finditer(text):
        words = m.group(0).split()
        unknown = [not vocabulary.english_known(w) for w in words]
        # keep maximal sub-runs of 2+ unknown capitalised words
        start = None
        pos = [m.start() + m.group(0).find(w) for w in words]
        offset = m.start()
        for i, (w, u) in enumerate(zip(words, unknown, strict=True)):
            p = text.find(w, offset)
            pos[i], offset = p, p + len(w)
            if u and start is None:
                start = i
            if (not u or i == len(words) - 1) and start is not None:
                end = i if u else i - 1
                if end > start:
                    spans.append((pos[start], pos[end] + len(words[end])))
                start = None
    return spans


def _allowlist_spans(text: str) -> list[tuple[int, int]]:
    """Descriptor tokens outside the vocabulary (and CJK characters outside the Chinese terms)."""
    spans = []
    for m in _TOKEN.finditer(text):
        token = m.group(0)
        if "\u4e00" <= token[0] <= "\u9fff":
            at = m.start()
            for piece, known in vocabulary.chinese_segments(token):
                if not known:
                    spans.append((at, at + len(piece)))
                at += len(piece)
            continue
        if any(ch.isdigit() for ch in token):
            if not _SHORT_CODE.fullmatch(token.rstrip(".")):
                spans.append((m.start(), m.end()))
            continue
        if len(token.strip("'-+./")) <= 1 or vocabulary.english_known(token):
            continue
        spans.append((m.start(), m.end()))
    return spans


def _merge(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[list[int]] = []
    for s, e in sorted(spans):
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return [(s, e) for s, e in out]


def phi_spans(text: str, *, known: Iterable[str] = (), descriptor: bool = False) -> list[tuple[int, int]]:
    """Character spans of ``text`` that identify someone (merged, sorted)."""
    if not text:
        return []
    spans = _pattern_spans(text)
    pattern = phi_pattern(p for p in known if p and len(p.strip()) >= 2)
    if pattern is not None:
        spans.extend((m.start(), m.end()) for m in pattern.finditer(text))
    spans.extend(_name_run_spans(text))
    if descriptor:
        spans.extend(_allowlist_spans(_blank_markers(text)))
    return _merge(spans)


def _blank_markers(text: str) -> str:
    """The text with ``[removed]`` markers blanked out (same length) so the allowlist leaves them."""
    return text.replace(REDACTED, " " * len(REDACTED))


def redact(text: str | None, *, known: Iterable[str] = (), descriptor: bool = False) -> str:
    """``text`` with every identifying span replaced by ``[removed]`` (whitespace collapsed).

    ``known``: the study's own identifiers (exact matches). ``descriptor``: also redact every token
    outside the allowlist vocabulary (series/study descriptions, protocol names, comments).
    """
    if not text:
        return ""
    text = str(text)
    known = [k for k in known if k]
    out, last = [], 0
    for s, e in phi_spans(text, known=known, descriptor=descriptor):
        out.append(text[last:s])
        out.append(REDACTED)
        last = e
    out.append(text[last:])
    cleaned = "".join(out)
    cleaned = re.sub(r"(?:\[removed\][\s,;.^]*){2,}", REDACTED + " ", cleaned)
    return re.sub(r"\s+", " ", cleaned).strip()


def redact_obj(obj: Any, *, known: Iterable[str] = (), descriptor: bool = False) -> Any:
    """:func:`redact` applied to every string of a JSON-like value."""
    if isinstance(obj, str):
        return redact(obj, known=known, descriptor=descriptor)
    if isinstance(obj, dict):
        return {k: redact_obj(v, known=known, descriptor=descriptor) for k, v in obj.items()}
    if isinstance(obj, list):
        return [redact_obj(v, known=known, descriptor=descriptor) for v in obj]
    return obj
