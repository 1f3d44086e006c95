"""A per-caller limit on API requests that create work, so one runaway integration cannot flood the
queues: POST/PUT/PATCH/DELETE count against ``API_SUBMIT_RATE`` (default 3000 a minute per user or
token owner, counted in the shared Redis cache so every web process sees the same count); reads
(polling) are never limited. Over the limit: 429 with ``Retry-After`` in the API's error shape.

When Redis cannot be reached the limit is not applied (logged): the API keeps accepting work while
Redis is away, as the platform promises (the row is stored; the sweeper sends it later)."""
from __future__ import annotations

import logging

from django.conf import settings
from redis.exceptions import RedisError
from rest_framework.permissions import SAFE_METHODS
from rest_framework.throttling import UserRateThrottle

logger = logging.getLogger(__name__)


class SubmitRateThrottle(UserRateThrottle):
    scope = "submit"

    def get_rate(self) -> str | None:
        # read at request time (DRF's class-level THROTTLE_RATES is frozen at import)
        return getattr(settings, "API_SUBMIT_RATE", None)

    def allow_request(self, request, view) -> bool:
        if request.method in SAFE_METHODS or self.rate is None:
            return True
        try:
            return super().allow_request(request, view)
        except (RedisError, OSError) as exc:
            logger.warning("submission limit not applied: the cache is unreachable (%s)", exc)
            return True
