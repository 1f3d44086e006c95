"""What the manufacturing services share: the request's language, the ingestion options, the thread
limit of scikit-learn work, and the one-line text of an ingestion issue."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings

from apps.manufacturing.ingest import IngestOptions, IngestResult


def prompt_language(code: str | None) -> str:
    """The prompt language of a request's language code (``zh…`` → ``zh-hans``, else ``en``)."""
    return "zh-hans" if (code or "").lower().startswith("zh") else "en"


def manufacturing_threads() -> int:
    """``settings.MANUFACTURING_THREADS`` (env ``MANUFACTURING_THREADS``, default 1): the threads that
    scikit-learn and OpenMP may use for training and prediction."""
    return max(int(settings.MANUFACTURING_THREADS or 1), 1)


@contextmanager
def thread_limit() -> Iterator[None]:
    """Limit BLAS and OpenMP threads to :func:`manufacturing_threads` inside the block: on a shared
    2-core machine OpenMP's spinning threads make HistGradientBoosting 10–30× slower. The domain code
    inside limits OpenMP again with the same number (it takes it as ``threads=``)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=manufacturing_threads()):
        yield


def ingest_options() -> IngestOptions:
    return IngestOptions(max_bytes=settings.UPLOAD_MAX_BYTES, threads=manufacturing_threads())


def issue_text(item: dict) -> str:
    """One line naming where: row (or pushed item), machine and sensor, then what."""
    message = str(item.get("message") or item.get("code") or "")
    where = []
    row = item.get("row")
    if row is not None and f"row {row}" not in message and f"item {row}" not in message:
        where.append(f"row {row}")
    machine = item.get("machine")
    if machine not in (None, "") and str(machine) not in message:
        where.append(f"machine {machine}")
    sensor = item.get("sensor")
    if sensor not in (None, "") and str(sensor) not in message:
        where.append(f"sensor {sensor}")
    return f"{', '.join(where)}: {message}" if where else message


def issues_for(result: IngestResult, machine_id: str) -> list[dict]:
    """The errors and warnings of an ingestion that concern one machine (``level`` "error"/"warning")."""
    out = []
    for kind, items in (("error", result.errors), ("warning", result.warnings)):
        for item in items:
            if str(item.get("machine")) == machine_id:
                out.append({"level": kind, "code": item.get("code"), "row": _jsonable(item.get("row")),
                            "sensor": item.get("sensor"), "message": issue_text(item)})
    return out


def _jsonable(value):
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    try:
        return int(value)
    except (TypeError, ValueError):
        return str(value)
