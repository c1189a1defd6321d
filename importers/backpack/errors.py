"""Errors raised by the Backpack client and endpoint catalogue.

Every message is one line that names what failed (endpoint, record, field, status) and never carries
a key, a secret, a signature, headers or a response body beyond the server's own error message.
"""

from __future__ import annotations

__all__ = [
    "BackpackError",
    "ConfigError",
    "KeyError_",
    "AuthError",
    "ApiError",
    "RetryBudgetExhausted",
    "RecordError",
    "MalformedResponse",
]


class BackpackError(Exception):
    """Base of every error the Backpack importer raises on purpose."""


class ConfigError(BackpackError, ValueError):
    """A setting the client cannot work with (window, rate, cursor, unknown parameter)."""


class KeyError_(ConfigError):
    """A malformed API key or secret. The message names which one and why, never its value.

    Raised by ``signing.Credentials.from_base64`` (re-exported there) before any request is made.
    """


class AuthError(BackpackError):
    """The exchange refused the request's authentication (HTTP 401), after one clock re-sync."""

    def __init__(self, endpoint: str, detail: str = "") -> None:
        self.endpoint = endpoint
        tail = f" (server said: {detail})" if detail else ""
        super().__init__(
            f"{endpoint}: authentication failed (HTTP 401): check the API key and secret, and the clock{tail}"
        )


class ApiError(BackpackError):
    """A 4xx answer other than 401 and 429: the request itself is wrong, so it is not retried."""

    def __init__(self, status: int, code: str | None, message: str | None, endpoint: str) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.endpoint = endpoint
        super().__init__(f"{endpoint}: HTTP {status} {code or 'no code'}: {message or 'no message'}")


class RetryBudgetExhausted(BackpackError):
    """429, 5xx, connection errors or timeouts kept coming after every retry the budget allowed."""

    def __init__(self, endpoint: str, attempts: int, last: str) -> None:
        self.endpoint = endpoint
        self.attempts = attempts
        self.last = last
        super().__init__(f"{endpoint}: gave up after {attempts} attempts; last failure: {last}")


class RecordError(BackpackError):
    """A record that does not have the shape the endpoint declares (REFERENCE.md §3 and §5.2)."""

    def __init__(self, endpoint: str, key: str, message: str) -> None:
        self.endpoint = endpoint
        self.key = key
        self.message = message
        super().__init__(f"{endpoint}: record {key}: {message}")


class MalformedResponse(BackpackError):
    """A body that is not JSON, or JSON of the wrong top-level shape."""

    def __init__(self, endpoint: str, message: str) -> None:
        self.endpoint = endpoint
        self.message = message
        super().__init__(f"{endpoint}: malformed response: {message}")
