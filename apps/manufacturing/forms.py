"""Manufacturing forms: sensor upload, machine thresholds, alert actions, model training."""
from __future__ import annotations

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _


class _UploadChecks:
    """``clean_file`` for a form whose ``file`` field takes an upload: the size limit, then an empty file."""

    def clean_file(self):
        f = self.cleaned_data["file"]
        if f.size > settings.UPLOAD_MAX_BYTES:
            raise forms.ValidationError(
                _("%(name)s: %(size).1f MB is over the upload limit of %(limit).0f MB") % {
                    "name": f.name, "size": f.size / 1048576, "limit": settings.UPLOAD_MAX_BYTES / 1048576})
        if not f.size:
            raise forms.ValidationError(_("%(name)s: the file is empty") % {"name": f.name})
        return f


class UploadForm(_UploadChecks, forms.Form):
    file = forms.FileField(label=_("Sensor CSV"))


class ThresholdsForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200, required=False)
    location = forms.CharField(label=_("Location"), max_length=200, required=False)
    probability_threshold = forms.FloatField(
        label=_("Failure probability threshold"), min_value=0.0, max_value=1.0, required=False,
        help_text=_("Alert when the calibrated probability reaches this (0–1). Empty: the default."))
    rul_threshold = forms.FloatField(
        label=_("Remaining-life threshold"), min_value=0.0, required=False,
        help_text=_("Alert when the estimated remaining life falls to this or below. Empty: the default."))


class AlertActionForm(forms.Form):
    note = forms.CharField(label=_("Note"), max_length=4000, required=False,
                           widget=forms.Textarea(attrs={"rows": 2}))


class TrainingForm(_UploadChecks, forms.Form):
    FORMATS = [("auto", _("Detect (long, wide or C-MAPSS)")),
               ("cmapss", _("C-MAPSS (space separated, no header)")),
               ("long", _("Long form")), ("wide", _("Wide form"))]

    file = forms.FileField(label=_("Run-to-failure history"))
    data_format = forms.ChoiceField(label=_("Format"), choices=FORMATS, initial="auto")
    horizon = forms.FloatField(label=_("Horizon"), min_value=1, max_value=100000, initial=30,
                               help_text=_("Failure within this many cycles (or hours, for timestamps)."))
    name = forms.CharField(label=_("Name"), max_length=120, initial="failure model")
    activate = forms.BooleanField(label=_("Activate when trained (admins only)"), required=False)
