"""A per-caller limit on API requests that create work, so one runaway integration cannot flood the
queues: POST/PUT/PATCH/DELETE count against ``API_SUBMIT_RATE`` (default 3000 a minute per user or
token owner, counted in the shared Redis cache so every web process sees the same count); reads
(polling) are never limited. Over the limit: 429 with ``Retry-After`` in the API's error shape."""
from __future__ import annotations

from django.conf import settings
from rest_framework.permissions import SAFE_METHODS
from rest_framework.throttling import UserRateThrottle


class SubmitRateThrottle(UserRateThrottle):
    scope = "submit"

    def get_rate(self) -> str | None:
        # read at request time (DRF's class-level THROTTLE_RATES is frozen at import)
        return getattr(settings, "API_SUBMIT_RATE", None)

    def allow_request(self, request, view) -> bool:
        if request.method in SAFE_METHODS or self.rate is None:
            return True
        return super().allow_request(request, view)
