"""DICOMweb STOW-RS (PS3.18 §10.5): a PACS or modality pushes instances to ``POST /dicomweb/studies``.

The body is ``multipart/related; type="application/dicom"``, one DICOM file per part. The body is
spooled to a temporary file (never held in memory whole) and split by its boundary; each part is
parsed at once so the answer can list what was stored (``ReferencedSOPSequence``) and what failed
(``FailedSOPSequence`` with a ``FailureReason``), then the accepted parts become one upload, processed
like any other (de-identification first). The answer also carries the upload's REST URL in
``RetrieveURL`` (0008,1190) and in the ``Location`` header, to follow the drafts' progress.

Status: 200 every instance accepted; 202 some failed; 409 none accepted; 400 a malformed body;
413 over the upload limit; 415 not multipart/related of application/dicom. Bearer token (or
session) with the ``medical`` role.
"""
from __future__ import annotations

import json
import mmap
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpResponse
from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import ParseError, UnsupportedMediaType
from rest_framework.parsers import BaseParser
from rest_framework.views import APIView

from apps.medical import services
from apps.medical.errors import UploadRefused
from apps.medical.ingest import IngestError, parse_dicom
from core.auth import HasRole

# Failure reasons (PS3.4 Annex GG / PS3.18 Table 10.5.3-2)
CANNOT_UNDERSTAND = 0xC000
SOP_CLASS_NOT_SUPPORTED = 0x0122
DOES_NOT_MATCH = 0xA900
PROCESSING_FAILURE = 0x0110
_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)
_TYPE = re.compile(r'type="?([^";]+)"?', re.IGNORECASE)


class MultipartError(ValueError):
    """The multipart/related body is malformed (names the problem)."""


@dataclass
class Part:
    headers: dict[str, str]
    data: bytes


def split_multipart_related(fileobj, boundary: str) -> Iterator[Part]:
    """Yield the parts of a multipart body held in a real file (memory-mapped, one part copied at a time)."""
    fileobj.flush()
    size = fileobj.seek(0, 2)
    if size == 0:
        raise MultipartError("the request body is empty")
    delim = b"--" + boundary.encode("latin-1")
    with mmap.mmap(fileobj.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        pos = mm.find(delim)
        if pos < 0:
            raise MultipartError("the body does not contain its multipart boundary")
        while True:
            pos += len(delim)
            if mm[pos:pos + 2] == b"--":
                return
            eol = mm.find(b"\r\n", pos)
            if eol < 0:
                raise MultipartError("the body ends inside a part's boundary line")
            header_end = mm.find(b"\r\n\r\n", eol)
            if header_end < 0:
                raise MultipartError("a part has no end to its headers")
            headers = {}
            for line in mm[eol + 2:header_end].decode("latin-1").split("\r\n"):
                if ":" in line:
                    key, value = line.split(":", 1)
                    headers[key.strip().lower()] = value.strip()
            start = header_end + 4
            end = mm.find(b"\r\n" + delim, start)
            if end < 0:
                raise MultipartError("the body ends before its closing boundary (truncated upload?)")
            yield Part(headers, mm[start:end])
            pos = end + 2


class MultipartRelatedParser(BaseParser):
    """Spools a ``multipart/related`` body to a temporary file, enforcing the upload limit."""

    media_type = "multipart/related"

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.UPLOAD_MAX_BYTES
        spool = tempfile.TemporaryFile(prefix="stow-")
        total = 0
        if stream is not None:
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                total += len(chunk)
                if total > limit + 1024 * 1024:
                    spool.close()
                    raise UploadRefused(f"the request is over the upload limit of {limit / 1048576:.0f} MB",
                                        code="upload_too_large")
                spool.write(chunk)
        return spool


def _uid_item(cls: str, inst: str) -> dict:
    return {"00081150": {"vr": "UI", "Value": [cls]} if cls else {"vr": "UI"},
            "00081155": {"vr": "UI", "Value": [inst]} if inst else {"vr": "UI"}}


def _header_uids(data: bytes) -> tuple[str, str, str]:
    """Best-effort SOP class, SOP instance and study UIDs of a part that failed to parse fully."""
    try:
        import io

        import pydicom

        ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True, force=True,
                             specific_tags=["SOPClassUID", "SOPInstanceUID", "StudyInstanceUID"])
        return (str(ds.get("SOPClassUID", "") or ""), str(ds.get("SOPInstanceUID", "") or ""),
                str(ds.get("StudyInstanceUID", "") or ""))
    except Exception:
        return "", "", ""


STOW_RESPONSES = {200: OpenApiResponse(description="DICOM JSON store response: all stored"),
                  202: OpenApiResponse(description="some instances failed (FailedSOPSequence)"),
                  409: OpenApiResponse(description="no instance could be stored")}


class StowView(APIView):
    """STOW-RS store: ``POST /dicomweb/studies`` or ``/dicomweb/studies/<StudyInstanceUID>``."""

    permission_classes = [HasRole("medical")]
    parser_classes = [MultipartRelatedParser]

    def perform_content_negotiation(self, request, force=False):
        # Clients send Accept: application/dicom+json; errors are rendered as JSON either way.
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(operation_id="dicomweb_store", request={"multipart/related": bytes},
                   responses=STOW_RESPONSES)
    def post(self, request, study_uid: str | None = None):
        ctype = request.META.get("CONTENT_TYPE", "")
        if not ctype.lower().startswith("multipart/related"):
            needed = 'STOW-RS needs Content-Type: multipart/related; type="application/dicom"'
            raise UnsupportedMediaType(ctype or "none", detail=needed)
        part_type = (_TYPE.search(ctype).group(1) if _TYPE.search(ctype) else "application/dicom").lower()
        if part_type != "application/dicom":
            raise UnsupportedMediaType(
                ctype, detail=f'only type="application/dicom" parts are accepted, not {part_type}')
        match = _BOUNDARY.search(ctype)
        if not match:
            raise ParseError("the Content-Type has no boundary parameter")
        spool = request.data
        referenced, failed, accepted = [], [], []
        try:
            for n, part in enumerate(split_multipart_related(spool, match.group(1)), start=1):
                name = f"part-{n}.dcm"
                ptype = part.headers.get("content-type", "application/dicom").split(";")[0].strip().lower()
                if ptype != "application/dicom":
                    failed.append({**_uid_item("", ""),
                                   "00081197": {"vr": "US", "Value": [CANNOT_UNDERSTAND]}})
                    continue
                try:
                    inst = parse_dicom(name, part.data, check_pixels=True)
                except IngestError as exc:
                    cls, uid, _study = _header_uids(part.data)
                    reason = SOP_CLASS_NOT_SUPPORTED if exc.code in services.SKIP_CODES else CANNOT_UNDERSTAND
                    failed.append({**_uid_item(cls, uid), "00081197": {"vr": "US", "Value": [reason]}})
                    continue
                if study_uid and inst.study_instance_uid != study_uid:
                    failed.append({**_uid_item(inst.sop_class_uid, inst.sop_instance_uid),
                                   "00081197": {"vr": "US", "Value": [DOES_NOT_MATCH]}})
                    continue
                referenced.append(_uid_item(inst.sop_class_uid, inst.sop_instance_uid))
                accepted.append((name, part.data))
        except MultipartError as exc:
            raise ParseError(f"malformed multipart/related body: {exc}") from None
        finally:
            spool.close()
        body: dict = {"00081198": {"vr": "SQ", "Value": failed} if failed else {"vr": "SQ"},
                      "00081199": {"vr": "SQ", "Value": referenced} if referenced else {"vr": "SQ"}}
        location = None
        if accepted:
            # a refusal (UploadRefused: over the upload limit 413, else 400) is answered by the API's
            # exception handler in the platform's one error shape, like the malformed-body errors above
            batch = services.upload_create(owner=request.user, files=accepted, source="stow-rs",
                                           request=request, audit_detail={"failed": len(failed)})
            url = reverse("api-v1:medical-batch-detail", kwargs={"batch_id": batch.pk})
            location = request.build_absolute_uri(url)
            body["00081190"] = {"vr": "UR", "Value": [location]}
        if not failed:
            code = status.HTTP_200_OK
        else:
            code = status.HTTP_202_ACCEPTED if accepted else status.HTTP_409_CONFLICT
        response = HttpResponse(json.dumps(body), status=code, content_type="application/dicom+json")
        if location:
            response["Location"] = location
        return response


class StowIntoStudyView(StowView):
    """``POST /dicomweb/studies/<StudyInstanceUID>``: instances of another study fail (0xA900)."""

    @extend_schema(operation_id="dicomweb_store_into_study", request={"multipart/related": bytes},
                   responses=STOW_RESPONSES)
    def post(self, request, study_uid: str | None = None):
        return super().post(request, study_uid)
