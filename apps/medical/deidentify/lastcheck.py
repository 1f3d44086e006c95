"""The independent last check before a request leaves for the model service.

Separate from the free-text filter on purpose (own patterns, standard ``re``, no presidio): names after
titles and cues, phone numbers, national IDs, e-mail addresses, street addresses, date shapes, DICOM
``LAST^FIRST`` names, and the study's own identifiers. A hit stops the request
(``privacy_check_failed``); the findings name the kind and where, never the value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from .phi import _iter_strings
from .text import phi_pattern

_MONTHS = (r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
           r"|sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)")

CHECKS: dict[str, re.Pattern[str]] = {
    "name_after_title": re.compile(
        r"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Sir|Dame|Nurse|Rev|MRS|MISS|DR)\.?\s+(?:[A-Z]\.\s*)?[A-Z][a-z'\-]+"),
    "name_after_cue": re.compile(
        r"\b(?:seen|ordered|referred|requested|reported|dictated|signed|read|performed|verified)\s+by\s+"
        r"(?-i:[A-Z][a-z'\-]+)", re.I),
    "dicom_person_name": re.compile(r"\b[A-Za-z\u4e00-\u9fff'\-]{2,}\^[A-Za-z\u4e00-\u9fff'\-]{2,}"),
    "chinese_name_context": re.compile(
        r"(?:患者|病人|姓名[:：]?)\s*(?:[王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗郑梁谢宋唐许韩冯邓曹彭肖田董袁潘蒋蔡"
        r"杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金廖贾夏韦付邹孟熊秦邱江尹薛闫段雷侯龙陶黎贺顾毛郝龚邵钱严覃武戴莫孔"
        r"汤康施牛樊葛邢齐乔庞颜倪庄聂鲁岳翟殷詹耿焦俞柳祝舒阮柯纪梅童凌毕裴霍涂苗谷盛翁冉骆蓝游辛靳柴蒙鲍喻祁蒲"
        r"滕屈饶牟艾尤穆卓缪褚娄窦戚岑宫卜晏瞿佟臧闵苟邬卞姬仇栾隋刁巫寇郎甄虞敖巩佘邝])[\u4e00-\u9fff]{1,2}"
        r"(?=[，,。；;：:\s]|$)"),
    "phone": re.compile(
        r"(?<![\d.])(?:\+?\d{1,3}[-.\s])?(?:\(\d{3}\)\s?|\d{3}[-.\s])\d{3}[-.\s]\d{4}(?!\d)"
        r"|(?<![\d.\-])\d{3}-\d{4}(?![\d\-])|(?<!\d)1[3-9]\d[-\s]?\d{4}[-\s]?\d{4}(?!\d)"
        r"|(?<!\d)0\d{2,3}-\d{7,8}(?!\d)"),
    "national_id": re.compile(r"(?<![\dA-Za-z])\d{17}[\dXx](?![\dA-Za-z])|(?<!\d)\d{3}-\d{2}-\d{4}(?!\d)"),
    "email": re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+"),
    "street_address": re.compile(
        r"\b\d{1,5}[A-Za-z]?\s+(?:[A-Z][a-z]+\s+){1,3}(?:street|st|road|rd|avenue|ave|lane|ln|drive"
        r"|boulevard|blvd|court|way|terrace|close|crescent|square)\b"
        r"|[\u4e00-\u9fff]{1,8}(?:路|街|大道|巷|弄)\d+号", re.I),
    "date": re.compile(
        r"(?<![\d.])(?:19|20)\d{2}[-/.](?:0?[1-9]|1[0-2])[-/.](?:0?[1-9]|[12]\d|3[01])(?![\d.])"
        r"|(?<![\d.])\d{1,2}[-/.]\d{1,2}[-/.](?:19|20)\d{2}(?![\d.])"
        rf"|\b\d{{1,2}}(?:st|nd|rd|th)?\s+{_MONTHS}\.?,?\s+(?:19|20)\d{{2}}\b"
        rf"|\b{_MONTHS}\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+(?:19|20)\d{{2}}\b"
        r"|(?:19|20)\d{2}\s*年\s*\d{1,2}\s*月", re.I),
    "record_number": re.compile(
        r"\b(?:mrn|accession|acc\.?\s*no|record\s*(?:no|number)|patient\s*id|ssn)\s*[:#]?\s*[A-Z]*\d{3,}"
        r"|(?:病历号|住院号|门诊号|身份证号?)[:：]?\s*[A-Za-z]*\d{3,}", re.I),
}


def privacy_findings(obj: Any, known: Iterable[str] = ()) -> list[str]:
    """What in ``obj`` (the rendered messages, a dict, a string) looks identifying: one line per hit
    naming the check and where (``messages[1].content: phone``), never the value. [] when clean."""
    known_re = phi_pattern(k for k in known if k and len(k.strip()) >= 3)
    found: list[str] = []
    for where, text in _iter_strings(obj):
        if known_re is not None and known_re.search(text):
            found.append(f"{where}: one of the study's own identifiers")
        for kind, pattern in CHECKS.items():
            if pattern.search(text):
                found.append(f"{where}: {kind}")
    return found
