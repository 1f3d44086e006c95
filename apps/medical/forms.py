"""Forms of the medical pages: upload, report edit, sign, addendum."""
from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from apps.medical.prompting import ReportError, normalize_report


class UploadForm(forms.Form):
    """The files come from the core upload widget (``files``, multiple); this form holds the rest."""

    indication = forms.CharField(
        label=_("Clinical indication"), required=False, max_length=4000,
        widget=forms.Textarea(attrs={"rows": 3,
                                     "placeholder": _("e.g. cough for 3 weeks, rule out pneumonia")}),
        help_text=_("Optional. Names, dates and ID numbers are removed before the text is used."),
    )
    language = forms.ChoiceField(label=_("Draft language"), required=False,
                                 choices=[("en", "English"), ("zh-hans", "简体中文")])


def _rows(n: int) -> forms.Textarea:
    return forms.Textarea(attrs={"rows": n})


class ReportEditForm(forms.Form):
    technique = forms.CharField(label=_("Technique"), required=False, widget=_rows(2))
    comparison = forms.CharField(label=_("Comparison"), required=False, widget=_rows(2))
    findings = forms.CharField(
        label=_("Findings"), required=False, widget=_rows(6),
        help_text=_("One finding per line: location | description | evidence"),
    )
    impression = forms.CharField(label=_("Impression"), required=False, widget=_rows(3))
    recommendations = forms.CharField(label=_("Recommendations"), required=False, widget=_rows(3),
                                      help_text=_("One per line"))
    limitations = forms.CharField(label=_("Limitations"), required=False, widget=_rows(2))

    @staticmethod
    def initial_from(sections: dict) -> dict:
        return {
            "technique": sections.get("technique", ""),
            "comparison": sections.get("comparison", ""),
            "findings": "\n".join(" | ".join(f.get(k, "") for k in ("location", "description", "evidence"))
                                  for f in sections.get("findings") or []),
            "impression": sections.get("impression", ""),
            "recommendations": "\n".join(sections.get("recommendations") or []),
            "limitations": sections.get("limitations", ""),
        }

    def clean(self):
        data = super().clean()
        findings = []
        for n, line in enumerate((data.get("findings") or "").splitlines(), start=1):
            if not line.strip():
                continue
            parts = [p.strip() for p in line.split("|")]
            if len(parts) == 1:
                parts = ["", parts[0], ""]
            elif len(parts) == 2:
                parts.append("")
            elif len(parts) > 3:
                parts = [parts[0], parts[1], " | ".join(parts[2:])]
            findings.append({"location": parts[0], "description": parts[1], "evidence": parts[2]})
            if not parts[1]:
                self.add_error("findings", _("Line %(n)d has no description.") % {"n": n})
        sections = {
            "technique": data.get("technique", ""), "comparison": data.get("comparison", ""),
            "findings": findings, "impression": data.get("impression", ""),
            "recommendations": [r.strip() for r in (data.get("recommendations") or "").splitlines()
                                if r.strip()],
            "limitations": data.get("limitations", ""),
        }
        try:
            data["sections"] = normalize_report(sections)
        except ReportError:
            raise forms.ValidationError(_("A report needs an impression or at least one finding.")) from None
        return data


class SignForm(forms.Form):
    name = forms.CharField(label=_("Your name, as signed"), max_length=200)
    organization = forms.CharField(label=_("Department or organisation"), max_length=200, required=False)
    confirm = forms.BooleanField(
        label=_("I have reviewed the images and this report; I sign it as final. "
                "It cannot be edited afterwards."),
        required=True,
    )


class AddendumForm(forms.Form):
    text = forms.CharField(label=_("Addendum"), widget=forms.Textarea(attrs={"rows": 3}), max_length=20000)
    name = forms.CharField(label=_("Your name"), max_length=200, required=False)
