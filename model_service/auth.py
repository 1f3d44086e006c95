"""Bearer API keys: from ``--api-keys-file`` (one per line, ``#`` comments) and ``MODEL_SERVICE_API_KEYS``.

With no key configured at all the service is open (development default) and says so once in the
log. Keys are compared in constant time and never logged.
"""

from __future__ import annotations

import hmac
import logging
import os
from pathlib import Path

from model_service.errors import ConfigError

log = logging.getLogger("model_service.auth")


def load_keys(keys_file: str | None, env_value: str | None = None) -> list[str]:
    """All configured keys (file first, then the comma-separated environment variable)."""
    keys: list[str] = []
    if keys_file:
        path = Path(keys_file).expanduser()
        try:
            lines = path.read_text().splitlines()
        except OSError as exc:
            raise ConfigError(f"--api-keys-file {keys_file}: cannot read it ({exc.strerror})")
        keys += [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]
    env = os.environ.get("MODEL_SERVICE_API_KEYS", "") if env_value is None else env_value
    keys += [k.strip() for k in env.split(",") if k.strip()]
    return list(dict.fromkeys(keys))


class KeyAuth:
    """Checks ``Authorization: Bearer <key>`` headers."""

    def __init__(self, keys: list[str]):
        self._keys = [k.encode() for k in keys]
        self.open = not keys
        if self.open:
            log.warning("no API key configured (--api-keys-file / MODEL_SERVICE_API_KEYS): "
                        "the service is OPEN")

    def check(self, authorization: str | None) -> bool:
        """Whether the header carries a valid key (always True when the service is open)."""
        if self.open:
            return True
        if not authorization:
            return False
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return False
        given = token.strip().encode()
        ok = False
        for key in self._keys:
            ok |= hmac.compare_digest(given, key)
        return ok
