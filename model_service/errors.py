"""Error types that map to OpenAI-shaped JSON error answers."""

from __future__ import annotations


class APIError(Exception):
    """An error answered to the client as ``{"error": {...}}`` with an HTTP status."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        error_type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.type = error_type
        self.param = param
        self.code = code
        self.headers = headers or {}

    def to_dict(self) -> dict:
        """The JSON body of the error answer."""
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


class BadRequest(APIError):
    """A 400: the request is malformed or asks for something impossible."""

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message, status=400, param=param, code=code)


class ConfigError(Exception):
    """The service cannot start with the given flags (bad model path, 8-bit on CPU, ...)."""
