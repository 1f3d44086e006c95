"""The worked example for ``manage.py setup_demo``: one CT study from pydicom's bundled CT_small.dcm."""
from __future__ import annotations

from pydicom.data import get_testdata_file

from apps.medical.models import Study
from apps.medical.services import upload_create

DEMO_INDICATION = "Demo: persistent cough, rule out consolidation."


def demo_seed(*, owner, stdout) -> None:
    """Queue one worked example study (CT_small.dcm) unless a study exists already."""
    if Study.objects.exists():
        stdout.write("medical: studies exist already; no demo study queued")
        return
    path = get_testdata_file("CT_small.dcm")
    with open(path, "rb") as fh:
        batch = upload_create(owner=owner, files=[("CT_small.dcm", fh.read())], indication=DEMO_INDICATION,
                              source="demo")
    stdout.write(f"medical: queued the demo CT study (upload {batch.pk}); open /medical/ to review it")
