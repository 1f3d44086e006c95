"""The PDF of one credit assessment (reportlab; Chinese text in the built-in CID font STSong-Light)."""
from __future__ import annotations

import io
from xml.sax.saxutils import escape

from django.utils import timezone
from django.utils.translation import gettext as _

from apps.finance import fields as catalogue
from apps.finance.models import RISK_LABELS, Assessment

CJK_FONT = "STSong-Light"


def _fonts(lang: str) -> tuple[str, str]:
    if lang.startswith("zh"):
        from reportlab.pdfbase import pdfmetrics
        from reportlab.pdfbase.cidfonts import UnicodeCIDFont

        if CJK_FONT not in pdfmetrics.getRegisteredFontNames():
            pdfmetrics.registerFont(UnicodeCIDFont(CJK_FONT))
        return CJK_FONT, CJK_FONT
    return "Helvetica", "Helvetica-Bold"


def _level_text(level) -> str:
    names = {1: _("Low"), 2: _("Medium"), 3: _("High")}
    return f"{level} — {names[level]}" if level in names else "—"


def _texts(items, text_key: str) -> str:
    """'; '-joined texts of [{code, text_en, text_zh}] items (plain strings pass through)."""
    out = []
    for item in items or []:
        out.append(item.get(text_key) or item.get("text_en") or item.get("code", "") if isinstance(item, dict)
                   else str(item))
    return "; ".join(out)


def assessment_pdf_bytes(job: Assessment, *, reviews, lang: str = "en") -> bytes:
    """A one-to-two page PDF: the decision, the scorecard's numbers and reasons, the language model's
    judgment, the applicant fields, the review history and the versions that produced it."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    regular, bold = _fonts(lang)
    base = getSampleStyleSheet()
    body = ParagraphStyle("body", parent=base["BodyText"], fontName=regular, fontSize=9.5, leading=13)
    small = ParagraphStyle("small", parent=body, fontSize=8, leading=10, textColor=colors.HexColor("#52606d"))
    h1 = ParagraphStyle("h1", parent=base["Heading1"], fontName=bold, fontSize=16, leading=20)
    h2 = ParagraphStyle("h2", parent=base["Heading2"], fontName=bold, fontSize=12, leading=15, spaceBefore=8)
    cell = ParagraphStyle("cell", parent=body, fontSize=8.5, leading=11)

    def p(text, style=body):
        return Paragraph(escape(str(text if text is not None else "—")), style)

    def table(rows, widths):
        t = Table([[p(c, cell) for c in row] for row in rows], colWidths=widths)
        t.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.3, colors.HexColor("#bcccdc")),
                               ("VALIGN", (0, 0), (-1, -1), "TOP"),
                               ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#f0f4f8"))]))
        return t

    result = job.result or {}
    score = result.get("scorecard") or {}
    llm = result.get("llm") or None
    text_key = "text_zh" if lang.startswith("zh") else "text_en"
    story = [p(_("Credit risk assessment"), h1),
             p(_("Application ID: %(id)s · Assessment: %(pk)s") % {"id": job.application_id or "—",
                                                                    "pk": job.pk}, small),
             p(_("Generated: %(when)s · Status: %(status)s") % {
                 "when": f"{timezone.localtime():%Y-%m-%d %H:%M}",
                 "status": job.get_status_display()}, small)]

    story.append(p(_("Final decision"), h2))
    if job.final_decision:
        story.append(p(_("%(decision)s: %(level)s — by %(who)s, %(when)s") % {
            "decision": job.get_final_decision_display(), "level": _level_text(job.final_risk_level),
            "who": job.reviewed_by.get_username() if job.reviewed_by else "?",
            "when": f"{timezone.localtime(job.reviewed_at):%Y-%m-%d %H:%M}"}))
    elif job.review_pending:
        story.append(p(_("Waiting for an analyst's review: the model outputs below are not a decision yet.")))
    elif job.risk_level:
        story.append(p(_("No review required: the combined model risk level stands (%(level)s).")
                       % {"level": _level_text(job.risk_level)}))
    else:
        story.append(p(job.error_message or _("No result yet.")))

    if result:
        story.append(p(_("Model outputs"), h2))
        rows = [[_("Measure"), _("Value"), _("Source")],
                [_("Combined risk level"), _level_text(result.get("risk_level")), _("combination rule")],
                [_("Probability of default"), f"{100 * result['probability_of_default']:.1f} %",
                 _("calibrated scorecard v%(v)s") % {"v": score.get("version")}],
                [_("Score"), result.get("score"), _("scorecard points: %(base)s at odds %(odds)s:1, "
                                                   "%(pdo)s points double the odds") % {
                    "base": (score.get("score_scale") or {}).get("base_points"),
                    "odds": (score.get("score_scale") or {}).get("base_odds"),
                    "pdo": (score.get("score_scale") or {}).get("pdo")}],
                [_("Scorecard risk level"), _level_text(score.get("risk_level")),
                 _("PD cut-offs %(c)s") % {"c": ", ".join(str(c) for c in score.get("cutoffs") or [])}]]
        if llm:
            probs = llm.get("label_probs") or {}
            rows.append([_("Language model risk level"), _level_text(llm.get("risk_level")),
                         _("language model, not calibrated")])
            if probs:
                rows.append([_("Label probabilities"),
                             ", ".join(f"{k}: {100 * v:.0f} %" for k, v in sorted(probs.items())
                                       if v is not None),
                             _("language model token probabilities")])
        else:
            rows.append([_("Language model"), _("not used"), _texts(result.get("notes"), text_key)])
        rows.append([_("Needs review"), _("yes") if result.get("needs_review") else _("no"),
                     _texts(result.get("review_reasons"), text_key)])
        story.append(table(rows, [45 * mm, 45 * mm, 80 * mm]))

        reasons = result.get("reason_codes") or []
        story.append(p(_("Principal reasons (from the scorecard)"), h2))
        if reasons:
            story.append(table([[_("Code"), _("Reason"), _("Points lost")]] +
                               [[r.get("code"), r.get(text_key) or r.get("text_en"), r.get("impact")]
                                for r in reasons],
                               [18 * mm, 122 * mm, 30 * mm]))
        else:
            story.append(p(_("No factor raised this applicant's risk markedly.")))
        if llm:
            story.append(p(_("Language model rationale"), h2))
            story.append(p(llm.get("rationale") or "—"))
            if llm.get("key_factors"):
                story.append(p(_("Key factors") + ": " + "; ".join(llm["key_factors"]), small))

        story.append(p(_("Applicant fields"), h2))
        applicant = result.get("applicant") or job.applicant or {}
        extracted = set(((result.get("extraction") or {}).get("fields") or {}).keys())
        missing = set(result.get("missing_fields") or [])
        frows = [[_("Field"), _("Value"), _("Note")]]
        for f in catalogue.FIELDS:
            value = applicant.get(f.name)
            shown = f.category_label(value, lang) if (f.kind == "categorical" and value) else value
            note = (_("protected: not used to score") if f.protected else _("missing") if f.name in missing
                    else _("extracted from the report") if f.name in extracted else "")
            frows.append([f.label(lang), "—" if shown in (None, "") else shown, note])
        story.append(table(frows, [60 * mm, 70 * mm, 40 * mm]))

    if reviews:
        story.append(p(_("Review history"), h2))
        story.append(table([[_("When"), _("Reviewer"), _("Decision"), _("Final level"), _("Comment")]] +
                           [[f"{timezone.localtime(r.created_at):%Y-%m-%d %H:%M}", r.reviewer.get_username(),
                             r.get_decision_display(), r.final_risk_level, r.comment] for r in reviews],
                           [28 * mm, 25 * mm, 22 * mm, 18 * mm, 77 * mm]))
    versions = result.get("versions") or {}
    story.append(Spacer(1, 6 * mm))
    story.append(p(_("Versions: scorecard %(sc)s (%(alg)s); language model %(llm)s; prompt %(prompt)s") % {
        "sc": versions.get("scorecard", "—"), "alg": versions.get("scorecard_algorithm", ""),
        "llm": versions.get("llm_model") or "—", "prompt": versions.get("judgment_prompt") or "—"}, small))
    story.append(p(_("Risk levels: 1 low, 2 medium, 3 high (%(labels)s). AI output is a draft for a "
                     "qualified person to check.") % {"labels": ", ".join(RISK_LABELS.values())}, small))

    buffer = io.BytesIO()
    doc = SimpleDocTemplate(buffer, pagesize=A4, leftMargin=18 * mm, rightMargin=18 * mm, topMargin=16 * mm,
                            bottomMargin=16 * mm, title=f"Credit assessment {job.application_id or job.pk}")
    doc.build(story)
    return buffer.getvalue()
