"""The applicant field catalogue of the finance app (Django-free).

The 20 input columns of the shared German Credit file (``german_credit_train.csv``, without the label
``creditability``), in file order. Each :class:`Field` knows its kind (numeric or categorical), the
allowed categories spelled exactly as in the CSV, English and Simplified Chinese labels and help text,
hard bounds for numbers, and whether it is a *protected attribute*.

Protected attributes are kept for fairness monitoring but are **never model inputs** and never go
into an LLM prompt:

- ``personal_status_and_sex`` mixes sex and marital status, both prohibited bases for credit decisions
  (ECOA/Regulation B in the US, the EU equal-treatment directives).
- ``foreign_worker`` is a proxy for national origin, also a prohibited basis. It is excluded as well;
  on the shared data only 29 of 700 rows are ``no``, so the model loses next to nothing without it.

``age_in_years`` *is* a model input (an empirically derived, demonstrably sound system may use age);
the fairness report bands applicants by age so any disparity stays visible.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

LABEL_FIELD = "creditability"
LABEL_VALUES = ("good", "bad")  # "bad" = default, the positive class of every model here


@dataclass(frozen=True)
class Field:
    """One applicant column."""

    name: str
    kind: str  # "numeric" | "categorical"
    label_en: str
    label_zh: str
    help_en: str
    help_zh: str
    categories: tuple[str, ...] = ()
    category_zh: dict[str, str] = field(default_factory=dict)
    integer: bool = False
    minimum: float | None = None  # inclusive hard bound; values outside are errors
    maximum: float | None = None
    exclusive_minimum: bool = False  # True: value must be strictly greater than ``minimum``
    codes: dict[int, tuple[str, str]] = field(default_factory=dict)  # coded integer: code -> (en, zh)
    protected: bool = False
    reason_code: str = ""
    reason_en: str = ""  # adverse-action wording of this factor
    reason_zh: str = ""

    @property
    def model_input(self) -> bool:
        """True when the scorecard uses this field."""
        return not self.protected

    def label(self, lang: str = "en") -> str:
        """The field's label in ``lang`` ("en" or "zh-hans"/"zh")."""
        return self.label_zh if lang.startswith("zh") else self.label_en

    def code_label(self, value, lang: str = "en") -> str:
        """A coded integer's display text in ``lang`` ("2 · lower-middle share"); other values as they are."""
        try:
            labels = self.codes.get(int(value))
        except (TypeError, ValueError):
            labels = None
        if labels is None:
            return "" if value is None else str(value)
        return f"{int(value)} · {labels[1] if lang.startswith('zh') else labels[0]}"

    def category_label(self, value: str, lang: str = "en") -> str:
        """A category's display text in ``lang`` (the CSV spelling in English)."""
        if lang.startswith("zh"):
            return self.category_zh.get(value, value)
        return value


def _cat(name, label_en, label_zh, help_en, help_zh, cats: dict[str, str], **kw) -> Field:
    return Field(name=name, kind="categorical", label_en=label_en, label_zh=label_zh, help_en=help_en,
                 help_zh=help_zh, categories=tuple(cats), category_zh=dict(cats), **kw)


def _num(name, label_en, label_zh, help_en, help_zh, **kw) -> Field:
    return Field(name=name, kind="numeric", label_en=label_en, label_zh=label_zh, help_en=help_en,
                 help_zh=help_zh, **kw)


FIELDS: tuple[Field, ...] = (
    _cat("status_of_existing_checking_account", "Checking account status", "支票账户状态",
         "Balance of the applicant's current (checking) account at this bank.",
         "申请人在本行活期（支票）账户的余额情况。",
         {"... < 0 DM": "余额 < 0 马克（透支）",
          "0 <= ... < 200 DM": "0 ≤ 余额 < 200 马克",
          "... >= 200 DM / salary assignments for at least 1 year": "余额 ≥ 200 马克 / 工资代发至少 1 年",
          "no checking account": "无支票账户"},
         reason_code="CHK", reason_en="Status or balance of the checking account",
         reason_zh="支票账户状态或余额"),
    _num("duration_in_month", "Loan duration (months)", "贷款期限（月）",
         "Requested repayment period in months.", "申请的还款期限，单位为月。",
         integer=True, minimum=1, maximum=480,
         reason_code="DUR", reason_en="Length of the loan term", reason_zh="贷款期限长度"),
    _cat("credit_history", "Credit history", "信用记录",
         "How the applicant has repaid credits so far.", "申请人以往的还款情况。",
         {"no credits taken/ all credits paid back duly": "无贷款 / 所有贷款均按时还清",
          "all credits at this bank paid back duly": "本行所有贷款均按时还清",
          "existing credits paid back duly till now": "现有贷款至今按时还款",
          "delay in paying off in the past": "过去曾有还款延迟",
          "critical account/ other credits existing (not at this bank)": "关键账户 / 在他行另有贷款"},
         reason_code="HIS", reason_en="Credit history", reason_zh="信用记录"),
    _cat("purpose", "Purpose of the loan", "贷款用途",
         "What the credit is for.", "贷款的用途。",
         {"car (new)": "新车", "car (used)": "二手车", "furniture/equipment": "家具 / 设备",
          "radio/television": "收音机 / 电视", "domestic appliances": "家用电器", "repairs": "维修",
          "education": "教育", "retraining": "再培训", "business": "经营", "others": "其他"},
         reason_code="PUR", reason_en="Purpose of the loan", reason_zh="贷款用途"),
    _num("credit_amount", "Credit amount (DM)", "贷款金额（马克）",
         "Amount requested, in Deutsche Mark as in the training data.",
         "申请金额，单位与训练数据一致（德国马克）。",
         minimum=0, exclusive_minimum=True, maximum=10_000_000,
         reason_code="AMT", reason_en="Amount of credit requested and its monthly repayment",
         reason_zh="申请贷款金额及月还款额"),
    _cat("savings_account_and_bonds", "Savings account / bonds", "储蓄账户 / 债券",
         "Balance of savings accounts and bonds.", "储蓄账户与债券余额。",
         {"... < 100 DM": "< 100 马克", "100 <= ... < 500 DM": "100 ≤ 储蓄 < 500 马克",
          "500 <= ... < 1000 DM": "500 ≤ 储蓄 < 1000 马克", "... >= 1000 DM": "≥ 1000 马克",
          "unknown/ no savings account": "未知 / 无储蓄账户"},
         reason_code="SAV", reason_en="Level of savings", reason_zh="储蓄水平"),
    _cat("present_employment_since", "Present employment since", "现职工作年限",
         "How long the applicant has held the present job.", "申请人在现职工作的时间。",
         {"unemployed": "失业", "... < 1 year": "不足 1 年", "1 <= ... < 4 years": "1 至 4 年",
          "4 <= ... < 7 years": "4 至 7 年", "... >= 7 years": "7 年及以上"},
         reason_code="EMP", reason_en="Length of employment", reason_zh="工作年限"),
    _num("installment_rate_in_percentage_of_disposable_income", "Instalment rate (class 1-4)",
         "分期还款占收入比（1-4 档）",
         "Instalment as a share of disposable income, coded 1 (lowest) to 4 (highest share).",
         "分期还款额占可支配收入的比例，按 1（最低）到 4（最高）分档。",
         integer=True, minimum=1, maximum=4,
         codes={1: ("lowest share of income", "占收入比例最低"), 2: ("lower share", "占收入比例较低"),
                3: ("higher share", "占收入比例较高"), 4: ("highest share of income", "占收入比例最高")},
         reason_code="INS", reason_en="Instalment burden relative to disposable income",
         reason_zh="分期还款占可支配收入的比例"),
    _cat("personal_status_and_sex", "Personal status and sex", "婚姻状况与性别",
         "Protected attribute: recorded for fairness monitoring only, never used to score.",
         "受保护属性：仅用于公平性监测，绝不用于评分。",
         {"male : divorced/separated": "男：离婚 / 分居",
          "female : divorced/separated/married": "女：离婚 / 分居 / 已婚",
          "male : single": "男：单身", "male : married/widowed": "男：已婚 / 丧偶"},
         protected=True),
    _cat("other_debtors_or_guarantors", "Other debtors / guarantors", "其他债务人 / 担保人",
         "Whether someone else shares or guarantees the debt.", "是否有他人共同承担或担保该债务。",
         {"none": "无", "co-applicant": "共同申请人", "guarantor": "担保人"},
         reason_code="GUA", reason_en="Co-applicant or guarantor situation",
         reason_zh="共同申请人或担保人情况"),
    _num("present_residence_since", "Present residence since (class 1-4)", "现住址居住年限（1-4 档）",
         "Time at the present address, coded 1 (shortest) to 4 (longest).",
         "在现住址居住的时间，按 1（最短）到 4（最长）分档。",
         integer=True, minimum=1, maximum=4,
         codes={1: ("shortest time", "居住时间最短"), 2: ("shorter time", "居住时间较短"),
                3: ("longer time", "居住时间较长"), 4: ("longest time", "居住时间最长")},
         reason_code="RES", reason_en="Length of residence at the present address",
         reason_zh="现住址居住时间"),
    _cat("property", "Most valuable property", "主要财产",
         "The applicant's most valuable asset.", "申请人最有价值的财产。",
         {"real estate": "不动产",
          "building society savings agreement/ life insurance": "住房储蓄协议 / 人寿保险",
          "car or other, not in attribute Savings account/bonds": "汽车或其他（不含储蓄 / 债券）",
          "unknown / no property": "未知 / 无财产"},
         reason_code="PRO", reason_en="Property or collateral", reason_zh="财产或抵押物"),
    _num("age_in_years", "Age (years)", "年龄（岁）",
         "Applicant's age in years.", "申请人年龄（岁）。",
         integer=True, minimum=18, maximum=120,
         reason_code="AGE", reason_en="Age", reason_zh="年龄"),
    _cat("other_installment_plans", "Other instalment plans", "其他分期付款计划",
         "Instalment plans the applicant has elsewhere.", "申请人在其他机构的分期付款计划。",
         {"bank": "银行", "stores": "商店", "none": "无"},
         reason_code="OIP", reason_en="Other instalment plans", reason_zh="其他分期付款计划"),
    _cat("housing", "Housing", "住房情况",
         "Whether the applicant rents, owns or lives for free.", "申请人租房、自有住房或免费居住。",
         {"rent": "租房", "own": "自有住房", "for free": "免费居住"},
         reason_code="HOU", reason_en="Housing situation", reason_zh="住房情况"),
    _num("number_of_existing_credits_at_this_bank", "Existing credits at this bank", "在本行现有贷款笔数",
         "Number of credits the applicant already has at this bank.", "申请人在本行已有的贷款笔数。",
         integer=True, minimum=0, maximum=50,
         reason_code="CRE", reason_en="Number of existing credits at this bank",
         reason_zh="在本行现有贷款笔数"),
    _cat("job", "Job", "职业",
         "Type of employment.", "职业类型。",
         {"unemployed/ unskilled - non-resident": "失业 / 非技术工人（非居民）",
          "unskilled - resident": "非技术工人（居民）",
          "skilled employee / official": "技术工人 / 职员",
          "management/ self-employed/ highly qualified employee/ officer":
              "管理层 / 自雇 / 高级专业人员 / 官员"},
         reason_code="JOB", reason_en="Type of employment", reason_zh="职业类型"),
    _num("number_of_people_being_liable_to_provide_maintenance_for", "Number of dependants", "需抚养人数",
         "People the applicant is liable to provide maintenance for.", "申请人需承担抚养义务的人数。",
         integer=True, minimum=0, maximum=30,
         reason_code="DEP", reason_en="Number of dependants", reason_zh="需抚养人数"),
    _cat("telephone", "Telephone", "电话",
         "Whether a telephone is registered under the applicant's name.", "是否有登记在申请人名下的电话。",
         {"none": "无", "yes, registered under the customers name": "有，登记在客户名下"},
         reason_code="TEL", reason_en="Telephone registration in the applicant's name",
         reason_zh="申请人名下的电话登记情况"),
    _cat("foreign_worker", "Foreign worker", "外籍劳工",
         "Protected attribute (national origin): recorded for fairness monitoring only, never used to score.",
         "受保护属性（国籍来源）：仅用于公平性监测，绝不用于评分。",
         {"yes": "是", "no": "否"}, protected=True),
)

FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in FIELDS)
FIELDS_BY_NAME: dict[str, Field] = {f.name: f for f in FIELDS}
MODEL_INPUTS: tuple[str, ...] = tuple(f.name for f in FIELDS if f.model_input)
PROTECTED_FIELDS: tuple[str, ...] = tuple(f.name for f in FIELDS if f.protected)
NUMERIC_FIELDS: tuple[str, ...] = tuple(f.name for f in FIELDS if f.kind == "numeric")
CATEGORICAL_FIELDS: tuple[str, ...] = tuple(f.name for f in FIELDS if f.kind == "categorical")

# Extra columns an applications file may carry, with their accepted header spellings.
OPTIONAL_COLUMNS: dict[str, tuple[str, ...]] = {
    "application_id": ("application_id", "application id", "id", "申请编号", "申请号", "申请id"),
    "report": ("report", "application report", "申请报告", "报告", "信贷申请报告"),
}

# The downloadable CSV template of a batch upload: every column the batch accepts (``application_id`` and
# ``report`` are optional) and two example rows that parse cleanly.
TEMPLATE_COLUMNS: tuple[str, ...] = ("application_id", *FIELD_NAMES, "report")
TEMPLATE_EXAMPLES: tuple[dict, ...] = (
    dict(zip(TEMPLATE_COLUMNS, (
        "APP-0001", "... < 0 DM", 6, "critical account/ other credits existing (not at this bank)",
        "radio/television", 1169, "unknown/ no savings account", "... >= 7 years", 4, "male : single", "none",
        4, "real estate", 67, "none", "own", 2, "skilled employee / official", 1,
        "yes, registered under the customers name", "yes", ""), strict=True)),
    dict(zip(TEMPLATE_COLUMNS, (
        "APP-0002", "0 <= ... < 200 DM", 48, "existing credits paid back duly till now", "radio/television",
        5951, "... < 100 DM", "1 <= ... < 4 years", 2, "female : divorced/separated/married", "none", 2,
        "real estate", 22, "none", "own", 1, "skilled employee / official", 1, "none", "yes",
        "Skilled employee, 22, asks for 5951 DM over 48 months to buy a television set; repays her one "
        "existing credit on time."), strict=True)),
)

_SPACE_RE = re.compile(r"\s+")


def category_key(text: str) -> str:
    """The matching key of a category spelling: lower case, all whitespace removed."""
    return _SPACE_RE.sub("", text).lower()


_CATEGORY_INDEX: dict[str, dict[str, str]] = {}
for _f in FIELDS:
    if _f.kind == "categorical":
        index: dict[str, str] = {}
        for _value, _zh in _f.category_zh.items():
            index[category_key(_value)] = _value
            index.setdefault(category_key(_zh), _value)
        _CATEGORY_INDEX[_f.name] = index


def normalise_category(name: str, raw: str) -> str | None:
    """The canonical CSV spelling of ``raw`` for categorical field ``name``, or None if not allowed.

    Case and whitespace differences are accepted ("No Checking Account", "...<0 DM"), and so is the
    Simplified Chinese display text of a category.
    """
    return _CATEGORY_INDEX[name].get(category_key(str(raw)))


def header_key(text: str) -> str:
    """The matching key of a column header: lower case, spaces/underscores/dashes removed, BOM dropped."""
    return re.sub(r"[\s_\-]+", "", text.replace("\ufeff", "")).lower()


def header_aliases() -> dict[str, str]:
    """Map of header keys (see :func:`header_key`) to canonical column names.

    Accepts each field's name, English label and Chinese label, the optional columns' spellings, and the
    label column ``creditability`` (also ``信用``/``信用状况``).
    """
    aliases: dict[str, str] = {}
    for f in FIELDS:
        for text in (f.name, f.label_en, f.label_zh):
            aliases.setdefault(header_key(text), f.name)
    for name, spellings in OPTIONAL_COLUMNS.items():
        for text in spellings:
            aliases.setdefault(header_key(text), name)
    for text in (LABEL_FIELD, "信用状况", "信用"):
        aliases.setdefault(header_key(text), LABEL_FIELD)
    return aliases


def field_label(name: str, lang: str = "en") -> str:
    """Display label of a field (or of ``application_id``/``report``) in ``lang``."""
    if name in FIELDS_BY_NAME:
        return FIELDS_BY_NAME[name].label(lang)
    return name


def extraction_schema(*, include_protected: bool = False) -> dict:
    """JSON Schema for LLM extraction of applicant fields from a free-text report.

    Every property is required *and* nullable: the model writes ``null`` for anything the report does
    not state (a missing value, explicitly marked). Categories are enums of the exact CSV spellings;
    numbers are bounded like the catalogue. Protected attributes are left out by default (they are not
    model inputs, so there is no reason to extract them). Property order is catalogue order.
    """
    props: dict[str, dict] = {}
    for f in FIELDS:
        if f.protected and not include_protected:
            continue
        if f.kind == "categorical":
            props[f.name] = {"description": f.label_en, "enum": [*f.categories, None]}
        else:
            spec: dict = {"description": f.label_en, "type": ["integer" if f.integer else "number", "null"]}
            if f.minimum is not None:
                spec["exclusiveMinimum" if f.exclusive_minimum else "minimum"] = f.minimum
            if f.maximum is not None:
                spec["maximum"] = f.maximum
            props[f.name] = spec
    return {
        "type": "object",
        "properties": props,
        "required": list(props),
        "additionalProperties": False,
    }


def extraction_schema_with_evidence() -> dict:
    """JSON Schema of extraction with evidence (``field_extraction`` v2): every model input is required and
    is either ``{"quote": the report's own words (1-80 characters), "value": a value of the field}`` or
    ``null`` (not stated). Built from :func:`extraction_schema`; property order is catalogue order."""
    base = extraction_schema()
    props: dict[str, dict] = {}
    for name, spec in base["properties"].items():
        value = {k: v for k, v in spec.items() if k != "description"}
        if "enum" in value:
            value["enum"] = [v for v in value["enum"] if v is not None]
        if "type" in value:
            value["type"] = value["type"][0]
        props[name] = {"description": spec["description"], "anyOf": [
            {"type": "object",
             "properties": {"quote": {"type": "string", "minLength": 1, "maxLength": 80}, "value": value},
             "required": ["quote", "value"], "additionalProperties": False},
            {"type": "null"}]}
    return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}
