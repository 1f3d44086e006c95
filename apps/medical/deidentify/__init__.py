"""De-identification of DICOM data sets: PS3.15 Annex E Basic Application Level Confidentiality Profile.

Our own implementation over the basic-profile table in :mod:`apps.medical.deidentify.profile`.

* Attributes are removed (X), emptied (Z), given dummy values (D) or new UIDs (U) as the table says,
  at every nesting level. Ambiguous actions are resolved conservatively: ``Z/D`` -> D (a dummy keeps
  Type 1 attributes valid), ``X/Z`` -> Z, ``X/D`` -> X, ``X/Z/D`` -> Z, ``X/Z/U*`` -> the sequence is
  kept and its items de-identified (so its instance UIDs are replaced).
* UIDs are replaced consistently: ``new = 2.25.<UUIDv8 from HMAC-SHA256(salt, old)>``, so the same
  original UID always maps to the same new UID for one installation's secret salt, across uploads.
  Any other UI attribute whose value is not a DICOM-registered UID (``1.2.840.10008.*``) and that does
  not name a class or a transfer syntax is replaced the same way.
* All private attributes are removed; curves (50xx) and overlay groups (60xx) are removed (the profile
  requires overlay data and comments to go; the rest of the overlay group is removed with them).
* Options (default on): Clean Descriptors (113105): Study/Series Description, Protocol Name and a few
  procedure descriptions are kept but passed through the free-text PHI filter (:mod:`.freetext`, with
  its allowlist) and the identifiers collected from every nesting level (:mod:`.collect`); a
  pseudonymous Patient ID/Name derived from the salt so one patient's studies still group.
  Option (default off): Retain Patient Characteristics (113108): sex, age, size, weight.
* ``PatientIdentityRemoved`` = YES, ``DeidentificationMethod``, ``DeidentificationMethodCodeSequence``
  (113100 and the options used), ``LongitudinalTemporalInformationModified`` = REMOVED.
* ``BurnedInAnnotation`` is kept (pixel data is not cleaned) and reported in :attr:`DeidResult.flags`.

The original identifiers are returned as a JSON-serialisable dict for the platform's database only.

Modules (import from the package, ``from apps.medical.deidentify import ...``):

- :mod:`.dataset` the data set walk (:func:`deidentify`, :func:`deidentify_file`, :class:`DeidOptions`,
  :class:`DeidResult`);
- :mod:`.profile` the Annex E table (data only);
- :mod:`.uids` replacement UIDs and pseudonyms (:func:`new_uid`);
- :mod:`.text` free-text scrubbing (:func:`scrub_text`, :func:`phi_pattern`);
- :mod:`.phi` PHI checks (:func:`phi_strings`, :func:`find_phi`);
- :mod:`.collect` identifiers from every nesting level (:func:`collect_identifiers`);
- :mod:`.freetext` the free-text PHI filter on presidio + the allowlist (:func:`redact`);
- :mod:`.lastcheck` the independent check before a model request (:func:`privacy_findings`);
- :mod:`.reidentify` originals put back for the hospital's own systems (:func:`reidentify_header`).
"""

from __future__ import annotations

from .collect import collect_identifiers
from .dataset import DeidOptions, DeidResult, deidentify, deidentify_file
from .freetext import REDACTED, redact, redact_obj
from .lastcheck import privacy_findings
from .phi import find_phi, phi_strings
from .reidentify import reidentify_header
from .text import phi_pattern, scrub_text
from .uids import new_uid

__all__ = [
    "REDACTED",
    "DeidOptions",
    "DeidResult",
    "collect_identifiers",
    "deidentify",
    "deidentify_file",
    "find_phi",
    "new_uid",
    "phi_pattern",
    "phi_strings",
    "privacy_findings",
    "redact",
    "redact_obj",
    "reidentify_header",
    "scrub_text",
]
