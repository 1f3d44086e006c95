"""PDF rendering of a radiology report with reportlab (CJK text via the ``STSong-Light`` CID font).

Drafts carry a red "AI-generated draft — not verified by a radiologist" banner at the top and in
every page footer; signed reports show "Signed by … at …". Key images (PNG bytes) are embedded
two per row; addenda follow the report.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterable, Sequence
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.platypus import Image, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from apps.medical.prompting import normalize_report
from apps.medical.sr import DRAFT_NOTICE, Signature

__all__ = ["render_pdf"]

CJK_FONT = "STSong-Light"
_registered = False


def _ensure_font() -> None:
    global _registered
    if not _registered:
        pdfmetrics.registerFont(UnicodeCIDFont(CJK_FONT))
        _registered = True


def _needs_cjk(text: str) -> bool:
    return any(ord(ch) > 0x2FFF for ch in text)


def _para(text: str, style: ParagraphStyle) -> Paragraph:
    """A paragraph with XML-escaped text; switches to the CJK font when the text needs it."""
    if _needs_cjk(text):
        style = ParagraphStyle(style.name + "-cjk", parent=style, fontName=CJK_FONT, wordWrap="CJK")
    return Paragraph(escape(text).replace("\n", "<br/>"), style)


def _labels(language: str) -> dict[str, str]:
    if language == "zh-hans":
        return {
            "technique": "检查技术", "comparison": "对比", "findings": "所见", "impression": "印象",
            "recommendations": "建议", "limitations": "局限性", "key_images": "关键图像",
            "addenda": "补充说明", "review": "自动核查提示", "evidence": "依据",
            "withheld": "已略去 {n} 个序列的关键图像:图像中可能含有可识别患者身份的烧录文字"
                        "(BurnedInAnnotation 为 YES,或该类图像通常带有文字)。",
        }
    return {
        "technique": "Technique", "comparison": "Comparison", "findings": "Findings",
        "impression": "Impression", "recommendations": "Recommendations", "limitations": "Limitations",
        "key_images": "Key images", "addenda": "Addenda", "review": "Automatic review notes",
        "evidence": "evidence",
        "withheld": "Key images of {n} series are left out: their pixels may carry burned-in text that "
                    "identifies the patient (BurnedInAnnotation YES, or a kind of image that usually "
                    "has it).",
    }


def _image(png: bytes, max_w: float, max_h: float) -> Image:
    img = Image(io.BytesIO(png))
    w, h = float(img.imageWidth), float(img.imageHeight)
    scale = min(max_w / w, max_h / h, 1.0 if w > 200 else max_w / w)
    img.drawWidth, img.drawHeight = w * scale, h * scale
    return img


def render_pdf(
    report: dict[str, Any],
    *,
    signature: Signature | None = None,
    key_images: Sequence[bytes | tuple[bytes, str]] = (),
    addenda: Iterable[dict[str, Any] | str] = (),
    title: str = "Radiology report",
    study_label: str | None = None,
    review_notes: Sequence[str] = (),
    language: str = "en",
    images_withheld: int = 0,
) -> bytes:
    """Render the report to PDF bytes.

    ``key_images`` are PNG bytes or ``(png, caption)`` pairs. ``review_notes`` (e.g. the
    :func:`apps.medical.decisions.postcheck` warnings) are printed on drafts only. ``addenda`` are
    strings or dicts with ``text``, ``author``, ``datetime``. ``images_withheld``: how many series'
    key images were left out for burned-in annotation (a visible note says so).
    """
    _ensure_font()
    r = normalize_report(report)
    lab = _labels(language)
    styles = getSampleStyleSheet()
    body = ParagraphStyle("body", parent=styles["BodyText"], fontSize=10, leading=13)
    h2 = ParagraphStyle("h2", parent=styles["Heading2"], fontSize=12, spaceBefore=8, spaceAfter=3)
    banner = ParagraphStyle(
        "banner", parent=body, textColor=colors.red, fontName="Helvetica-Bold", fontSize=12, leading=15,
        borderColor=colors.red, borderWidth=1, borderPadding=4, spaceAfter=8,
    )
    signed = ParagraphStyle("signed", parent=body, textColor=colors.darkgreen, fontName="Helvetica-Bold")
    small = ParagraphStyle("small", parent=body, fontSize=8, leading=10, textColor=colors.grey)

    story: list[Any] = [_para(title, styles["Title"])]
    if signature is None:
        story.append(_para(DRAFT_NOTICE, banner))
    else:
        when = signature.signed_at.strftime("%Y-%m-%d %H:%M %Z").strip()
        story.append(_para(f"Signed by {signature.name} ({signature.organization}) at {when}", signed))
    if study_label:
        story.append(_para(study_label, small))

    def section(key: str, text: str) -> None:
        if text:
            story.append(_para(lab[key], h2))
            story.append(_para(text, body))

    section("technique", r["technique"])
    section("comparison", r["comparison"])
    if r["findings"]:
        story.append(_para(lab["findings"], h2))
        for f in r["findings"]:
            line = ": ".join(x for x in (f["location"], f["description"]) if x)
            if f["evidence"]:
                line += f" ({lab['evidence']}: {f['evidence']})"
            story.append(_para("• " + line, body))
    section("impression", r["impression"])
    if r["recommendations"]:
        story.append(_para(lab["recommendations"], h2))
        for rec in r["recommendations"]:
            story.append(_para("• " + rec, body))
    section("limitations", r["limitations"])

    if key_images or images_withheld:
        story.append(_para(lab["key_images"], h2))
    if images_withheld:
        story.append(_para(lab["withheld"].format(n=images_withheld), banner))
    if key_images:
        cells: list[Any] = []
        for item in key_images:
            png, caption = (item, "") if isinstance(item, (bytes, bytearray)) else item
            cell: list[Any] = [_image(bytes(png), 80 * mm, 80 * mm)]
            if caption:
                cell.append(_para(caption, small))
            cells.append(cell)
        rows = [cells[i : i + 2] + [[]] * (2 - len(cells[i : i + 2])) for i in range(0, len(cells), 2)]
        table = Table(rows, colWidths=[85 * mm, 85 * mm])
        table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"),
                                   ("ALIGN", (0, 0), (-1, -1), "CENTER")]))
        story.append(table)

    addenda = list(addenda)
    if addenda:
        story.append(_para(lab["addenda"], h2))
        for a in addenda:
            if isinstance(a, dict):
                head = " · ".join(str(a[k]) for k in ("author", "datetime") if a.get(k))
                story.append(_para((head + ": " if head else "") + str(a.get("text", "")), body))
            else:
                story.append(_para(str(a), body))
    if signature is None and review_notes:
        story.append(_para(lab["review"], h2))
        for note in review_notes:
            story.append(_para("• " + note, small))
    story.append(Spacer(1, 6 * mm))
    story.append(_para(f"Generated {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}", small))

    def footer(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 8)
        if signature is None:
            canvas.setFillColor(colors.red)
            canvas.drawString(15 * mm, 10 * mm, DRAFT_NOTICE)
        canvas.setFillColor(colors.grey)
        canvas.drawRightString(A4[0] - 15 * mm, 10 * mm, f"{doc.page}")
        canvas.restoreState()

    buf = io.BytesIO()
    doc = SimpleDocTemplate(
        buf, pagesize=A4, leftMargin=15 * mm, rightMargin=15 * mm, topMargin=15 * mm, bottomMargin=18 * mm,
        title=title, author="Industry AI Suite" if signature is None else signature.name,
    )
    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return buf.getvalue()
