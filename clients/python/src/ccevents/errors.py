"""The errors the client raises; each says what happened in words a person can act on."""

from __future__ import annotations

from typing import Optional

__all__ = ["CCEventsError", "APIError", "ReplyError", "ClosedError", "DecodeError", "UnknownEventError"]


class CCEventsError(Exception):
    """Base class of every error this package raises."""


class APIError(CCEventsError):
    """The REST API refused a request; status is the HTTP status (401 for a refused API key)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(f"{message} (HTTP {status})" if status else message)
        self.message = message
        self.status = status


class ReplyError(CCEventsError):
    """The gateway refused a request, with its explanation.

    retry_after is set (seconds) when the gateway throttles repeated auth
    failures: waiting may help. Otherwise retrying cannot help.
    """

    def __init__(self, action: str, bindings: list[str], errors: list[str], retry_after: Optional[float] = None) -> None:
        what = f"{action} {' '.join(bindings)}" if bindings else action
        super().__init__(f"{what}: {'; '.join(errors) or 'refused'}")
        self.action = action
        self.bindings = bindings
        self.errors = errors
        self.retry_after = retry_after


class ClosedError(CCEventsError):
    """The client is closed."""


class DecodeError(CCEventsError):
    """An event's data does not fit its type in this client's catalogue."""


class UnknownEventError(DecodeError):
    """An event type this client's catalogue does not know (from a newer gateway); skip it."""
