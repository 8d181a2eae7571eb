"""The one exception family of the service.

Every error a client can see is a ``ReputationError``: it carries a
machine-readable ``code`` and an HTTP ``status``, and its docstring is the
default human message. ``api.error_answer`` turns it into
``{"error": {"code": ..., "message": ...}}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar


class ReputationError(Exception):
    """Something went wrong."""

    status: ClassVar[int] = 500
    code: str = "internal_error"

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ):
        if code is not None:
            self.code = code
        self.message = message or (self.__doc__ or "").strip()
        self.extra = extra
        # HTTP headers the answer must carry (Retry-After, WWW-Authenticate).
        self.headers: Mapping[str, str] = headers or {}
        super().__init__(self.message)

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **self.extra}


class InvalidNumber(ReputationError):
    """This is not a phone number that can be looked up or reported."""

    status = 400
    code = "invalid_number"


# Human messages for each normalisation error code (the code is the contract).
NUMBER_ERROR_MESSAGES: dict[str, str] = {
    "empty": "No phone number was given.",
    "input_too_long": "The input is too long to be a phone number.",
    "too_long": "The number has too many digits.",
    "invalid_characters": "The number contains letters or symbols that are not part of a number.",
    "multiple_numbers": "Give one phone number at a time.",
    "short_code": "Short codes and service codes are not subscriber numbers.",
    "alphanumeric_sender_id": "A brand name sender is not a phone number.",
    "invalid_number": "This is not a valid phone number.",
}


def invalid_number(code: str) -> InvalidNumber:
    return InvalidNumber(NUMBER_ERROR_MESSAGES[code], code=code)


class BadRequest(ReputationError):
    """The request is malformed."""

    status = 400
    code = "bad_request"


class NotFound(ReputationError):
    """No such resource."""

    status = 404
    code = "not_found"


class MethodNotAllowed(ReputationError):
    """This method is not allowed on this resource."""

    status = 405
    code = "method_not_allowed"


class IdempotencyConflict(ReputationError):
    """This Idempotency-Key was already used with a different request."""

    status = 409
    code = "idempotency_conflict"


class PayloadTooLarge(ReputationError):
    """The request body is too large."""

    status = 413
    code = "payload_too_large"


class Unavailable(ReputationError):
    """The service cannot answer this right now; retry later."""

    status = 503
    code = "unavailable"


class Unauthorized(ReputationError):
    """This call needs an API key: send it as "Authorization: Bearer <key>"."""

    status = 401
    code = "missing_api_key"


class Forbidden(ReputationError):
    """The API key's role does not allow this call."""

    status = 403
    code = "forbidden"


class RequestTimeout(ReputationError):
    """The request body did not arrive in time."""

    status = 408
    code = "request_timeout"


class UriTooLong(ReputationError):
    """The request URL is too long."""

    status = 414
    code = "uri_too_long"


class TooManyRequests(ReputationError):
    """Too many requests; retry after the number of seconds in ``Retry-After``."""

    status = 429
    code = "rate_limited"


class Conflict(ReputationError):
    """The request conflicts with the current state of this resource."""

    status = 409
    code = "conflict"


class VersionUnknown(ReputationError):
    """This list version was not handed out by this database; download the whole list again."""

    status = 410
    code = "version_unknown"
