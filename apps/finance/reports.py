"""Synthetic credit reports written from applications with known fields (Django-free).

They make the labelled sets of ``apps/finance/evaluation_data/`` (prompt evaluation, the judgment's
calibration): each report states some of an application's fields in English or Simplified Chinese,
each field in one of several phrasings drawn at random (seeded), in a shuffled order, and leaves the
others out. The ground truth of a report is the fields it states; the ones it leaves out must come back
missing. Protected attributes are never written into a report.
"""
from __future__ import annotations

import random
from collections.abc import Iterable

from .fields import FIELDS_BY_NAME, MODEL_INPUTS

# {n}: the number; categorical phrasings are keyed by the CSV spelling.
_NUM: dict[str, dict[str, tuple[str, ...]]] = {
    "duration_in_month": {
        "en": ("The loan is requested over {n} months.", "Requested term: {n} months.",
               "Repayment would run for {n} months."),
        "zh": ("贷款期限为{n}个月。", "申请的还款期为{n}个月。", "借款期限：{n}个月。"),
    },
    "credit_amount": {
        "en": ("The applicant asks for {n} DM.", "Amount requested: DM {n}.",
               "A credit of {n} DM is sought."),
        "zh": ("申请贷款金额为{n}马克。", "申请人希望借款{n}马克。", "申请金额：{n}马克。"),
    },
    "installment_rate_in_percentage_of_disposable_income": {
        "en": ("The instalment would take class {n} of 4 of disposable income.",
               "Instalment rate: class {n} (of 4) of the disposable income.",
               "Repayments fall in instalment class {n} out of 4."),
        "zh": ("分期还款占可支配收入的第{n}档（共4档）。", "分期还款比例为第{n}档（1-4档）。"),
    },
    "present_residence_since": {
        "en": ("Residence at the present address: class {n} of 4.",
               "The applicant has lived at the current address for residence class {n} (of 4).",
               "Present residence class {n} out of 4."),
        "zh": ("现住址居住年限为第{n}档（共4档）。", "在现住址居住时间属第{n}档（1-4档）。"),
    },
    "age_in_years": {
        "en": ("The applicant is {n} years old.", "Age: {n}.", "Applicant aged {n}."),
        "zh": ("申请人{n}岁。", "申请人年龄：{n}岁。", "借款人今年{n}岁。"),
    },
    "number_of_existing_credits_at_this_bank": {
        "en": ("The applicant already has {n} credit(s) at this bank.",
               "Existing credits with us: {n}.", "Number of current loans at this bank: {n}."),
        "zh": ("申请人在本行已有{n}笔贷款。", "在本行现有贷款笔数：{n}。"),
    },
    "number_of_people_being_liable_to_provide_maintenance_for": {
        "en": ("The applicant supports {n} dependant(s).", "Dependants: {n}.",
               "Liable to provide maintenance for {n} person(s)."),
        "zh": ("需抚养{n}人。", "申请人需抚养的人数为{n}。", "家中受其抚养者{n}人。"),
    },
}

_CAT: dict[str, dict[str, dict[str, tuple[str, ...]]]] = {
    "status_of_existing_checking_account": {
        "... < 0 DM": {"en": ("The checking account is overdrawn (balance below 0 DM).",
                              "Checking account: in overdraft, under 0 DM."),
                       "zh": ("支票账户透支（余额低于0马克）。", "支票账户余额为负，低于0马克。")},
        "0 <= ... < 200 DM": {"en": ("The checking account holds between 0 and 200 DM.",
                                     "Checking account balance is below 200 DM but not negative."),
                              "zh": ("支票账户余额在0至200马克之间。", "支票账户余额不足200马克。")},
        "... >= 200 DM / salary assignments for at least 1 year": {
            "en": ("The checking account holds at least 200 DM, with salary paid in for over a year.",
                   "Checking account balance of 200 DM or more (salary assignment)."),
            "zh": ("支票账户余额不少于200马克，工资转入已满一年。", "支票账户余额200马克以上。")},
        "no checking account": {"en": ("The applicant has no checking account.",
                                       "There is no checking account in the applicant's name."),
                                "zh": ("申请人没有支票账户。", "名下无支票账户。")},
    },
    "credit_history": {
        "no credits taken/ all credits paid back duly": {
            "en": ("Credit history: no credits taken before.", "The applicant has never taken a credit."),
            "zh": ("信用记录：此前从未贷款。", "申请人没有贷款记录。")},
        "all credits at this bank paid back duly": {
            "en": ("All credits at this bank were paid back duly.",
                   "Credit history: every loan with this bank repaid on time."),
            "zh": ("在本行的所有贷款均已按时还清。", "信用记录：本行贷款全部按期还清。")},
        "existing credits paid back duly till now": {
            "en": ("Existing credits have been paid back duly till now.",
                   "Credit history: current loans repaid on schedule so far."),
            "zh": ("现有贷款至今按时偿还。", "信用记录：现有贷款一直按期还款。")},
        "delay in paying off in the past": {
            "en": ("There were delays in paying off credits in the past.",
                   "Credit history shows late repayments in the past."),
            "zh": ("过去曾有延迟还款。", "信用记录：以往有逾期还款。")},
        "critical account/ other credits existing (not at this bank)": {
            "en": ("Credit history: critical account, with other credits at other banks.",
                   "The account is critical; other credits exist elsewhere."),
            "zh": ("信用记录：关键账户，在其他银行另有贷款。", "账户属关键账户，他行另有贷款。")},
    },
    "purpose": {
        "car (new)": {"en": ("The purpose is a new car.", "Loan purpose: buying a new car."),
                      "zh": ("贷款用途为购买新车。", "用途：买新车。")},
        "car (used)": {"en": ("The purpose is a used car.", "Loan purpose: buying a used car."),
                       "zh": ("贷款用途为购买二手车。", "用途：买二手车。")},
        "furniture/equipment": {"en": ("The money is for furniture.", "Purpose: furniture and equipment."),
                                "zh": ("贷款用于购置家具。", "用途：家具 / 设备。")},
        "radio/television": {"en": ("The purpose is a television.", "Purpose: radio and television."),
                             "zh": ("贷款用于购买电视。", "用途：收音机 / 电视。")},
        "domestic appliances": {"en": ("The money is for domestic appliances.",
                                       "Purpose: household appliances."),
                                "zh": ("贷款用于购买家用电器。", "用途：家用电器。")},
        "repairs": {"en": ("The loan pays for repairs.", "Purpose: repairs to the home."),
                    "zh": ("贷款用于维修。", "用途：房屋维修。")},
        "education": {"en": ("The loan is for education.", "Purpose: paying for education."),
                      "zh": ("贷款用于教育。", "用途：教育费用。")},
        "retraining": {"en": ("The loan pays for retraining.", "Purpose: professional retraining."),
                       "zh": ("贷款用于职业再培训。", "用途：再培训。")},
        "business": {"en": ("The loan is for the applicant's business.", "Purpose: business investment."),
                     "zh": ("贷款用于经营生意。", "用途：商业经营。")},
        "others": {"en": ("The purpose is other.", "Purpose: other needs."),
                   "zh": ("贷款用于其他用途。", "用途：其他。")},
    },
    "savings_account_and_bonds": {
        "... < 100 DM": {"en": ("Savings are below 100 DM.", "The applicant has less than 100 DM saved."),
                         "zh": ("储蓄不足100马克。", "储蓄存款低于100马克。")},
        "100 <= ... < 500 DM": {"en": ("Savings of between 100 and 500 DM.",
                                       "Savings account: 100 to 500 DM."),
                                "zh": ("储蓄在100至500马克之间。", "储蓄存款为100到500马克。")},
        "500 <= ... < 1000 DM": {"en": ("Savings of between 500 and 1000 DM.",
                                        "Savings account: 500 to 1000 DM."),
                                 "zh": ("储蓄在500至1000马克之间。", "储蓄存款为500到1000马克。")},
        "... >= 1000 DM": {"en": ("Savings of at least 1000 DM.", "More than 1000 DM in savings and bonds."),
                           "zh": ("储蓄不少于1000马克。", "储蓄及债券超过1000马克。")},
        "unknown/ no savings account": {"en": ("The applicant has no savings account.",
                                               "Savings: none known."),
                                        "zh": ("申请人没有储蓄账户。", "储蓄情况不明，无储蓄账户。")},
    },
    "present_employment_since": {
        "unemployed": {"en": ("The applicant is currently unemployed.", "Employment: none at present."),
                       "zh": ("申请人目前失业。", "目前没有工作，处于失业状态。")},
        "... < 1 year": {"en": ("Employed for less than 1 year.", "In the current job for under a year."),
                         "zh": ("现职工作不满1年。", "在现单位工作不到一年。")},
        "1 <= ... < 4 years": {"en": ("Employed for between 1 and 4 years.",
                                      "In the current job for 1 to 4 years."),
                               "zh": ("现职工作1至4年。", "在现单位工作1到4年。")},
        "4 <= ... < 7 years": {"en": ("Employed for between 4 and 7 years.",
                                      "In the current job for 4 to 7 years."),
                               "zh": ("现职工作4至7年。", "在现单位工作4到7年。")},
        "... >= 7 years": {"en": ("Employed for 7 years or more.",
                                  "In the current job for at least 7 years."),
                           "zh": ("现职工作7年以上。", "在现单位工作不少于7年。")},
    },
    "other_debtors_or_guarantors": {
        "none": {"en": ("There is no guarantor or co-applicant.", "No other debtor guarantees the loan."),
                 "zh": ("没有担保人或共同申请人。", "无其他债务人担保。")},
        "co-applicant": {"en": ("There is a co-applicant.", "A co-applicant shares the loan."),
                         "zh": ("有一名共同申请人。", "另有共同申请人。")},
        "guarantor": {"en": ("A guarantor backs the loan.", "The loan has a guarantor."),
                      "zh": ("有担保人为贷款担保。", "贷款由担保人担保。")},
    },
    "property": {
        "real estate": {"en": ("The applicant owns real estate.", "Most valuable property: real estate."),
                        "zh": ("申请人拥有不动产。", "主要财产为不动产。")},
        "building society savings agreement/ life insurance": {
            "en": ("Most valuable asset: a life insurance policy.",
                   "The applicant holds a building society savings agreement."),
            "zh": ("主要财产为人寿保险。", "申请人持有住房储蓄协议。")},
        "car or other, not in attribute Savings account/bonds": {
            "en": ("The most valuable property is a car.", "Main asset: a car or other goods."),
            "zh": ("主要财产为一辆汽车。", "最有价值的财产是汽车或其他物品。")},
        "unknown / no property": {"en": ("The applicant has no property.", "Property: none known."),
                                  "zh": ("申请人没有财产。", "财产情况：无财产。")},
    },
    "other_installment_plans": {
        "bank": {"en": ("The applicant pays an instalment plan at another bank.",
                        "Other instalment plans: one with a bank."),
                 "zh": ("申请人在其他银行有分期付款计划。", "其他分期计划：银行分期。")},
        "stores": {"en": ("The applicant pays an instalment plan at a store.",
                          "Other instalment plans: store credit."),
                   "zh": ("申请人在商店有分期付款计划。", "其他分期计划：商店分期。")},
        "none": {"en": ("No other instalment plans.", "The applicant has no other instalment plans."),
                 "zh": ("没有其他分期付款计划。", "申请人无其他分期计划。")},
    },
    "housing": {
        "rent": {"en": ("The applicant rents a flat.", "Housing: rented."),
                 "zh": ("申请人租房居住。", "住房情况：租房。")},
        "own": {"en": ("The applicant owns the home.", "Housing: own home."),
                "zh": ("申请人住在自有住房。", "住房情况：自有住房。")},
        "for free": {"en": ("The applicant lives for free with family.", "Housing: lives for free."),
                     "zh": ("申请人免费居住在亲属家。", "住房情况：免费居住。")},
    },
    "job": {
        "unemployed/ unskilled - non-resident": {
            "en": ("Job: unskilled, non-resident.", "The applicant is an unskilled non-resident worker."),
            "zh": ("职业：非技术工人（非居民）。", "申请人为非居民非技术工人。")},
        "unskilled - resident": {"en": ("Job: unskilled resident worker.",
                                        "The applicant works as an unskilled worker (resident)."),
                                 "zh": ("职业：非技术工人（居民）。", "申请人为本地非技术工人。")},
        "skilled employee / official": {"en": ("The applicant is a skilled employee.",
                                               "Job: skilled employee / official."),
                                        "zh": ("申请人是技术工人。", "职业：技术工人 / 职员。")},
        "management/ self-employed/ highly qualified employee/ officer": {
            "en": ("The applicant is self-employed.", "Job: management, highly qualified."),
            "zh": ("申请人为自雇人士。", "职业：管理层 / 高级专业人员。")},
    },
    "telephone": {
        "none": {"en": ("No telephone is registered.", "Telephone: none."),
                 "zh": ("没有登记电话。", "电话：无。")},
        "yes, registered under the customers name": {
            "en": ("A telephone is registered in the applicant's name.",
                   "Telephone: yes, registered under the customer's name."),
            "zh": ("有登记在申请人名下的电话。", "电话：有，登记在客户名下。")},
    },
}

_OPENINGS = {"en": ("Credit application report.", "Loan officer's notes.", "Application summary.",
                    "Notes from the interview with the applicant."),
             "zh": ("信贷申请报告。", "信贷员记录。", "申请摘要。", "与申请人面谈记录。")}
EMPTY_REPORTS = {"en": ("test report", "Application received; documents to follow.",
                        "The applicant called to ask about a loan."),
                 "zh": ("测试报告", "已收到申请，材料随后补交。", "申请人来电咨询贷款。")}


def _lang(language: str) -> str:
    return "zh" if language.lower().startswith("zh") else "en"


def _number_text(name: str, value, lang: str, rng: random.Random) -> str:
    n = int(round(float(value))) if FIELDS_BY_NAME[name].integer or float(value).is_integer() else value
    if name == "credit_amount" and lang == "en" and isinstance(n, int) and n >= 1000 and rng.random() < 0.5:
        return f"{n:,}"
    return str(n)


def sentence(name: str, value, language: str, rng: random.Random) -> str:
    """One sentence stating field ``name`` = ``value`` in ``language``, in a phrasing drawn by ``rng``."""
    lang = _lang(language)
    if name in _NUM:
        return rng.choice(_NUM[name][lang]).format(n=_number_text(name, value, lang, rng))
    return rng.choice(_CAT[name][value][lang])


def report_render(applicant: dict, *, language: str, rng: random.Random,
                  omit: Iterable[str] = ()) -> tuple[str, dict]:
    """A report stating ``applicant``'s model inputs except ``omit``; returns (text, the stated fields)."""
    lang = _lang(language)
    omitted = set(omit)
    stated = {n: applicant[n] for n in MODEL_INPUTS
              if n not in omitted and applicant.get(n) not in (None, "")}
    names = list(stated)
    rng.shuffle(names)
    parts = [rng.choice(_OPENINGS[lang])] + [sentence(n, stated[n], lang, rng) for n in names]
    return ("" if lang == "zh" else " ").join(parts), stated


def labelled_set_build(rows: list[dict], *, language: str, seed: int, omit_range=(0, 10),
                       empty: int = 2) -> list[dict]:
    """Labelled reports from applicant rows (values already canonical): each omits a random number of
    fields in ``omit_range``; ``empty`` reports state nothing at all. Items:
    ``{"id", "language", "report", "stated", "omitted", "creditability"}``."""
    rng = random.Random(seed)
    items = []
    for i, row in enumerate(rows):
        k = rng.randint(*omit_range)
        omit = set(rng.sample(list(MODEL_INPUTS), k))
        text, stated = report_render(row, language=language, rng=rng, omit=omit)
        items.append({"id": f"{_lang(language)}-{seed}-{i}", "language": language, "report": text,
                      "stated": stated, "omitted": sorted(set(MODEL_INPUTS) - set(stated)),
                      "creditability": row.get("creditability", "")})
    for j in range(empty):
        items.append({"id": f"{_lang(language)}-{seed}-empty{j}", "language": language,
                      "report": EMPTY_REPORTS[_lang(language)][j % len(EMPTY_REPORTS[_lang(language)])],
                      "stated": {}, "omitted": list(MODEL_INPUTS), "creditability": ""})
    return items


def _split(rows: list[dict], seed: int) -> tuple[list[dict], list[dict]]:
    """A seeded, stratified choice of rows: (extraction rows, judgment rows: 40 bad + 40 good)."""
    rng = random.Random(seed)
    order = list(range(len(rows)))
    rng.shuffle(order)
    bad = [i for i in order if rows[i].get("creditability") == "bad"]
    good = [i for i in order if rows[i].get("creditability") == "good"]
    judgment = sorted(bad[:40] + good[:40])
    taken = set(judgment)
    extraction = [i for i in order if i not in taken][:48]
    return [rows[i] for i in extraction], [rows[i] for i in judgment]


def evaluation_sets_build(rows: list[dict], *, seed: int = 12) -> dict[str, list[dict]]:
    """The labelled sets of ``apps/finance/evaluation_data/`` from canonical applicant rows (label
    included): ``extraction_{en,zh-hans}`` (24 reports each that state some fields, plus empty ones)
    and ``judgment_{en,zh-hans}`` (80 held-out applications, 40 that defaulted, stated in full)."""
    extraction, judgment = _split(rows, seed)
    sets: dict[str, list[dict]] = {}
    for k, language in enumerate(("en", "zh-hans")):
        part = extraction[24 * k:24 * (k + 1)]
        sets[f"extraction_{language}"] = labelled_set_build(part, language=language, seed=seed + k,
                                                            empty=3)
        rng = random.Random(seed + 10 + k)
        items = []
        for i, row in enumerate(judgment):
            text, stated = report_render(row, language=language, rng=rng)
            items.append({"id": f"j-{_lang(language)}-{i}", "language": language, "report": text,
                          "applicant": stated, "creditability": row["creditability"]})
        sets[f"judgment_{language}"] = items
    return sets
