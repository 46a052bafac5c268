"""The JSON schema of ingested events, and decoding a request body against it.

The body is one event object or a JSON array of 1 to `MAX_BATCH` of them.
Unknown keys are errors, every string is bounded, and a refusal lists each
problem with its path (`body[3].status: input should be 'ok', 'warning',
'critical' or 'unknown'`). Messages quote what the schema expects, and echo a
sent value only where it is an identifier (a device or category name).
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from monitord.errors import MonitordError

MAX_BATCH = 1000
MAX_MESSAGE = 4096
MAX_LABELS = 32
MAX_LABEL_VALUE = 256
MAX_FUTURE = 300.0  # an event may be stamped this far ahead (clock skew)
MAX_AGE = 7 * 86400.0  # and this far back (a sender that queued through an outage)
MAX_ERRORS = 20  # listed in a refusal; the rest are counted

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9_.\-]*$")
_LABEL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_ADDRESS = re.compile(r"^[A-Za-z0-9.:%_\-\[\]]+$")
_DEVICE_NAME = re.compile(r"^[^\x00-\x1f\x7f'\"/\\]+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class SchemaError(MonitordError):
    """The body is not JSON (`status` 400) or not valid events (422); `errors`
    lists each located problem of a 422."""

    def __init__(self, status: int, message: str, errors: list[str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.errors = status, message, errors


def _plain(value: str, what: str) -> str:
    if not value or value != value.strip() or _CONTROL.search(value):
        raise ValueError(
            f"{what} must be non-empty text without control characters or outer spaces"
        )
    return value


class IngestEvent(BaseModel):
    """One external event as sent (the documented schema); frozen, no extra keys."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    customer: str = Field(max_length=100)
    device: str | None = Field(default=None, max_length=100)
    address: str | None = Field(default=None, max_length=255)
    check: str = Field(max_length=96)
    category: str | None = Field(default=None, max_length=50)
    status: Literal["ok", "warning", "critical", "unknown"]
    message: str = Field(default="", max_length=MAX_MESSAGE)
    time: AwareDatetime | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    source: str | None = Field(default=None, max_length=64)

    @field_validator("customer")
    @classmethod
    def _customer(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"customer {value!r} is not a customer name (letters, digits, .-_)")
        return value

    @field_validator("device")
    @classmethod
    def _device(cls, value: str, info: ValidationInfo) -> str:
        owner, slash, name = value.rpartition("/")
        customer = info.data.get("customer")
        if slash and customer is not None and owner != customer:
            raise ValueError(f"device {value!r} is of customer {owner!r}, not {customer!r}")
        # No quotes: an unknown device's name is quoted in its incident's message.
        if not _DEVICE_NAME.match(name) or name != name.strip() or name == "-":
            raise ValueError(
                "device must be a name or 'customer/name' without quotes, "
                "backslashes or control characters"
            )
        return value

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        if not _ADDRESS.match(value):
            raise ValueError("address must be an IP address or a host name")
        return value

    @field_validator("check", "source")
    @classmethod
    def _text(cls, value: str, info: ValidationInfo) -> str:
        return _plain(value, str(info.field_name))

    @field_validator("category")
    @classmethod
    def _category(cls, value: str) -> str:
        if not _SLUG.match(value):
            raise ValueError(
                f"category {value!r} must be lowercase letters, digits, '.', '_' or '-' "
                "(like 'backup-failed')"
            )
        return value

    @field_validator("time")
    @classmethod
    def _time(cls, value: datetime, info: ValidationInfo) -> datetime:
        now = (info.context or {}).get("now")
        if now is None:
            return value
        offset = value.timestamp() - now
        if offset > MAX_FUTURE:
            raise ValueError(f"time is {offset:.0f} s in the future (is the sender's clock right?)")
        if -offset > MAX_AGE:
            raise ValueError(f"time is more than {MAX_AGE / 86400:.0f} days in the past")
        return value

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) > MAX_LABELS:
            raise ValueError(f"at most {MAX_LABELS} labels, got {len(value)}")
        for key, text in value.items():
            if not _LABEL.match(key):
                raise ValueError(
                    f"label name {key[:70]!r} must match [A-Za-z_][A-Za-z0-9_]* (64 at most)"
                )
            if len(text) > MAX_LABEL_VALUE or _CONTROL.search(text):
                raise ValueError(
                    f"label {key!r} must be at most {MAX_LABEL_VALUE} characters "
                    "without control characters"
                )
        return value

    @model_validator(mode="after")
    def _where(self) -> IngestEvent:
        if self.device is None and self.address is None:
            raise ValueError("give the device, its address, or both")
        return self


_ONE = TypeAdapter(IngestEvent)
_MANY = TypeAdapter(list[IngestEvent])


def parse_body(body: bytes, now: float) -> list[IngestEvent]:
    """Decode and validate a request body; `now` bounds event times. Raises SchemaError."""
    if not body.strip():
        raise SchemaError(400, "empty body: expected a JSON event object or an array of them")
    try:
        data = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise SchemaError(400, f"body is not UTF-8 (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        what = exc.msg[:1].lower() + exc.msg[1:]
        raise SchemaError(
            400, f"malformed JSON at line {exc.lineno} column {exc.colno} (char {exc.pos}): {what}"
        ) from None
    except RecursionError:
        raise SchemaError(400, "malformed JSON: nested too deeply") from None
    return validate(data, now)


def validate(data: Any, now: float) -> list[IngestEvent]:
    """Validate decoded JSON against the schema. Raises SchemaError (422) with field paths."""
    context = {"now": now}
    try:
        if isinstance(data, dict):
            return [_ONE.validate_python(data, context=context)]
        if isinstance(data, list):
            if not data:
                raise SchemaError(422, "body: the batch is empty; send 1 or more events")
            if len(data) > MAX_BATCH:
                raise SchemaError(
                    422, f"body: a batch holds at most {MAX_BATCH} events, got {len(data)}"
                )
            return _MANY.validate_python(data, context=context)
    except ValidationError as exc:
        errors = [_located(e) for e in exc.errors()]
        listed = errors[:MAX_ERRORS]
        more = f" (and {len(errors) - MAX_ERRORS} more)" if len(errors) > MAX_ERRORS else ""
        raise SchemaError(422, "; ".join(listed) + more, listed) from None
    raise SchemaError(
        422, f"body: expected an event object or an array of them, got {_json_type(data)}"
    )


def _json_type(data: Any) -> str:
    if data is None:
        return "null"
    if isinstance(data, bool):
        return "a boolean"
    return "a string" if isinstance(data, str) else "a number"


_MESSAGES = {"extra_forbidden": "unknown field", "missing": "missing required field"}


def _located(err: Any) -> str:
    """`body[3].status: input should be …` from one pydantic error."""
    path = "body"
    for part in err["loc"]:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    msg = _MESSAGES.get(err["type"]) or str(err["msg"]).removeprefix("Value error, ")
    return f"{path}: {msg[:1].lower() + msg[1:]}"
