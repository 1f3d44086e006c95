"""Web forms: one application (fields from the catalogue, with help text), batch upload, review, training."""
from __future__ import annotations

from django import forms
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from apps.finance import fields as catalogue
from apps.finance.models import Assessment, Review, RiskLevel


def _lang() -> str:
    return "zh-hans" if (get_language() or "en").startswith("zh") else "en"


class ApplicationForm(forms.Form):
    """One application: any applicant fields and/or a report. Fields are built from the catalogue in the
    user's language; protected attributes are shown apart (recorded for fairness monitoring only)."""

    application_id = forms.CharField(label=_("Application ID"), max_length=100, required=False,
                                     help_text=_("Your own reference, e.g. the loan system's application "
                                                 "number."))
    language = forms.ChoiceField(label=_("Language of the report and of the rationale"),
                                 choices=Assessment.Language.choices, initial="en")
    report = forms.CharField(label=_("Credit application report"), required=False,
                             widget=forms.Textarea(attrs={"rows": 8}),
                             help_text=_("Free text. Fields you leave empty below are extracted from it by "
                                         "the language model; anything it does not state stays missing."))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        lang = _lang()
        if lang == "zh-hans" and not self.is_bound:
            self.fields["language"].initial = "zh-hans"
        for f in catalogue.FIELDS:
            label = f.label(lang)
            help_text = f.help_zh if lang == "zh-hans" else f.help_en
            if f.kind == "categorical":
                choices = [("", "—")] + [(value, f.category_label(value, lang)) for value in f.categories]
                field = forms.ChoiceField(label=label, choices=choices, required=False, help_text=help_text)
            elif f.codes:  # a small coded integer (1-4): a select box with the meaning of each code
                choices = [("", "—")] + [(code, f.code_label(code, lang)) for code in sorted(f.codes)]
                field = forms.TypedChoiceField(label=label, choices=choices, required=False, coerce=int,
                                               empty_value=None, help_text=help_text)
            elif f.integer:
                no_minimum = f.minimum is None or f.exclusive_minimum
                field = forms.IntegerField(label=label, required=False, help_text=help_text,
                                           min_value=None if no_minimum else int(f.minimum),
                                           max_value=None if f.maximum is None else int(f.maximum))
            else:
                field = forms.FloatField(label=label, required=False, help_text=help_text,
                                         max_value=f.maximum)
            field.protected = f.protected
            self.fields[f.name] = field

    def applicant_fields(self):
        return [self[f.name] for f in catalogue.FIELDS if not f.protected]

    def protected_fields(self):
        return [self[f.name] for f in catalogue.FIELDS if f.protected]

    def applicant(self) -> dict:
        data = self.cleaned_data
        return {f.name: data[f.name] for f in catalogue.FIELDS if data.get(f.name) not in (None, "")}


class BatchUploadForm(forms.Form):
    file = forms.FileField(label=_("Applications CSV"))
    language = forms.ChoiceField(label=_("Language of the rationales"), choices=Assessment.Language.choices,
                                 initial="en")


class ReviewForm(forms.Form):
    decision = forms.ChoiceField(label=_("Decision"), choices=Review.Decision.choices,
                                 widget=forms.RadioSelect)
    final_risk_level = forms.TypedChoiceField(label=_("Final risk level (for an override)"), required=False,
                                              coerce=int, empty_value=None,
                                              choices=[("", "—"), *RiskLevel.choices])
    comment = forms.CharField(label=_("Comment"), required=False, max_length=4000,
                              widget=forms.Textarea(attrs={"rows": 3}),
                              help_text=_("Required when you override the model."))

    def clean(self):
        """An override needs the final risk level and a comment (the service checks it again)."""
        data = super().clean()
        if data.get("decision") == Review.Decision.OVERRIDE:
            if data.get("final_risk_level") is None and "final_risk_level" not in self.errors:
                self.add_error("final_risk_level", _("An override needs the final risk level 1, 2 or 3."))
            if not (data.get("comment") or "").strip() and "comment" not in self.errors:
                self.add_error("comment", _("Say why you override the model."))
        return data


class TrainingForm(forms.Form):
    file = forms.FileField(label=_("Labelled CSV"),
                           help_text=_("The German Credit columns plus 'creditability' (good/bad), one "
                                       "row per past loan."))
    activate = forms.BooleanField(label=_("Activate the new version when training succeeds"), required=False)
    note = forms.CharField(label=_("Note"), required=False, max_length=300)
