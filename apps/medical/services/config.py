"""Settings the medical services read: the de-identification secret, ZIP limits, the organisation."""
from __future__ import annotations

import hashlib
import hmac
import os

from django.conf import settings

from apps.medical.ingest import ZipLimits

#: the draft languages (anything else becomes English)
LANGUAGES = ("en", "zh-hans")


def deid_salt() -> bytes:
    """The per-installation secret behind replacement UIDs and pseudonyms.

    ``MEDICAL_DEID_SALT`` when set (keep it stable: changing it changes every replacement UID),
    otherwise derived from ``SECRET_KEY`` so that it is secret and stable per installation.
    """
    explicit = getattr(settings, "MEDICAL_DEID_SALT", "") or os.environ.get("MEDICAL_DEID_SALT", "")
    if explicit:
        return explicit.encode()
    return hmac.new(settings.SECRET_KEY.encode(), b"medical-deidentification-salt", hashlib.sha256).digest()


def zip_limits() -> ZipLimits:
    """ZIP limits: members, total expanded size (default 2 GiB or 10× the upload limit), ratio."""
    total = int(getattr(settings, "MEDICAL_ZIP_MAX_UNCOMPRESSED", 0)
                or max(2 * 1024**3, 10 * settings.UPLOAD_MAX_BYTES))
    return ZipLimits(max_members=int(getattr(settings, "MEDICAL_ZIP_MAX_MEMBERS", 20_000)),
                     max_total_uncompressed=total, max_member_uncompressed=min(total, 2 * 1024**3))


def organization_name() -> str:
    """The signer's organisation printed on reports when the signer gives none."""
    return str(getattr(settings, "MEDICAL_ORGANIZATION", "") or os.environ.get("MEDICAL_ORGANIZATION", "")
               or "Radiology")
