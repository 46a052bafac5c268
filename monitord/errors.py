"""The exception tree.

    MonitordError
    ├── ConfigErrors      (monitord.config.load; every located problem of a config)
    ├── StorageError      the database is unreachable or refused an operation
    └── DeliveryError     a ticket system or channel did not take an operation
                          (.permanent: retrying will not help; .reason: closed set)

Exceptions from libraries are translated at the plugin boundary with
`raise … from exc`; nothing above a plugin catches a library exception.
"""

from __future__ import annotations

from enum import StrEnum


class MonitordError(Exception):
    """Base of monitord's own errors."""


class StorageError(MonitordError):
    """The database cannot be used; the message says why (password redacted)."""


class Reason(StrEnum):
    TIMEOUT = "timeout"
    NETWORK = "network"
    AUTH = "auth"
    RATE_LIMITED = "rate_limited"
    CLIENT_ERROR = "client_error"
    SERVER_ERROR = "server_error"


class DeliveryError(MonitordError):
    def __init__(self, message: str, *, permanent: bool, reason: Reason) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.reason = reason


def classify_http(status: int) -> tuple[bool, Reason]:
    """(permanent, reason) for an HTTP error status from a ticket system or channel."""
    if status in (401, 403):
        return True, Reason.AUTH
    if status == 429:
        return False, Reason.RATE_LIMITED
    if status in (408,):
        return False, Reason.TIMEOUT
    if 400 <= status < 500:
        return True, Reason.CLIENT_ERROR
    return False, Reason.SERVER_ERROR
