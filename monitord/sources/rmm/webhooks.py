"""RMM webhooks as records: pure parsers, no HTTP (docs/rmm-webhooks.md).

- `parse_tactical(body)`: Tactical RMM's alert URL Action. Its body is whatever
  the admin types into the action, so monitord documents the template it expects
  (`TACTICAL_TEMPLATE`, `TACTICAL_RESOLVED_TEMPLATE`) and reads those fields.
- `parse_generic(body)`: monitord's own schema, for any RMM that can post JSON.

Both return a `Webhook`: a problem (an `RmmFailure`, keyed as the polling adapter
keys it, so a webhook and a poll speak of the same failure) or a clearance of a
key, plus the device as the sender named it. Anything wrong raises
`WebhookError`, whose `field` names the offending field ("body" for the JSON).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from monitord.sources.rmm.base import Category, FailureKind, RmmFailure
from monitord.sources.rmm.tactical import (
    CATEGORIES,
    TASK_MESSAGE,
    availability_key,
    check_key,
    task_key,
)


class WebhookError(ValueError):
    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"field {field!r}: {problem}")
        self.field = field


@dataclass(frozen=True, slots=True)
class Webhook:
    failure: RmmFailure | None  # a problem the RMM reports
    clearance: str | None  # or the key of one that recovered
    device_id: str
    device_name: str = ""
    client: str = ""
    site: str = ""

    @property
    def problem(self) -> bool:
        return self.failure is not None


# What the feed's store holds: a device id of 100 characters, a key of 200 (the
# sender's key after "<device_id>:"), a 32-bit count. Longer is refused, never cut:
# two keys cut to the same prefix would be one failure.
MAX_DEVICE_ID, MAX_KEY, MAX_FAILS = 100, 200, 2**31 - 1
LATEST = 253402300799.0  # 9999-12-31T23:59:59Z


# Tactical RMM ------------------------------------------------------------------------

_TACTICAL_FIELDS = """{
  "monitord": "tactical-alert/1",
  "event": "%s",
  "alert_id": "{{alert.id}}",
  "alert_type": "{{alert.alert_type}}",
  "severity": "{{alert.severity}}",
  "message": "{{alert.message}}",
  "alert_time": "{{alert.alert_time}}",
  "agent_id": "{{agent.agent_id}}",
  "hostname": "{{agent.hostname}}",
  "client": "{{agent.site.client.name}}",
  "site": "{{agent.site.name}}",
  "check_id": "{{alert.assigned_check.id}}",
  "check_type": "{{alert.assigned_check.check_type}}",
  "task_id": "{{alert.assigned_task.id}}",
  "output": "{{alert.get_result.more_info}}"
}"""
TACTICAL_TEMPLATE = _TACTICAL_FIELDS % "failure"  # the alert template's action_rest body
TACTICAL_RESOLVED_TEMPLATE = _TACTICAL_FIELDS % "resolved"  # its resolved_action_rest body
TACTICAL_SCHEMA = "tactical-alert/1"
_CHECK_MESSAGE = re.compile(r"^.*? has a (?P<type>\w+) check: (?P<desc>.*) that failed\.$", re.S)


def parse_tactical(body: bytes | str | Mapping[str, Any]) -> Webhook:
    """One Tactical alert action rendered from `TACTICAL_TEMPLATE` (or the
    resolved one)."""
    doc = _object(body)
    schema = _text(doc, "monitord")
    if schema and schema != TACTICAL_SCHEMA:
        raise WebhookError("monitord", f"expected {TACTICAL_SCHEMA!r}, got {schema!r}")
    event = _choice(doc, "event", ("failure", "resolved"))
    alert_type = _choice(doc, "alert_type", ("availability", "check", "task"))
    agent_id = _bounded("agent_id", _required(doc, "agent_id"), MAX_DEVICE_ID)
    message = _text(doc, "message")
    context = {
        "device_id": agent_id,
        "device_name": _text(doc, "hostname"),
        "client": _text(doc, "client"),
        "site": _text(doc, "site"),
    }
    if alert_type == "availability":
        key = availability_key(agent_id)
    elif alert_type == "check":
        key = check_key(agent_id, _bounded("check_id", _required(doc, "check_id"), 50))
    else:
        key = task_key(agent_id, _bounded("task_id", _required(doc, "task_id"), 50))
    if event == "resolved":
        return Webhook(None, key, **context)
    started = _when(doc, "alert_time")
    if alert_type == "availability":
        kind, category, check_type, description = (
            FailureKind.OVERDUE, Category.AVAILABILITY, "overdue", message or "Agent overdue",
        )  # fmt: skip
    elif alert_type == "check":
        found = _CHECK_MESSAGE.match(message)
        check_type = _text(doc, "check_type") or (found["type"] if found else "")
        kind, category = FailureKind.CHECK, CATEGORIES.get(check_type, Category.OTHER)
        description = found["desc"] if found else message or check_type
    else:
        found = TASK_MESSAGE.match(message)
        kind, category, check_type = FailureKind.TASK, Category.TASK, "task"
        description = found["name"] if found else message or "Automated task"
    failure = RmmFailure(
        key=key,
        device_id=agent_id,
        kind=kind,
        category=category,
        check_type=check_type,
        description=description,
        output=_text(doc, "output"),
        started_at=started,
        status=_text(doc, "severity") or "error",
    )
    return Webhook(failure, None, **context)


# monitord's generic schema ---------------------------------------------------------

GENERIC_FIELDS = frozenset(
    {
        *("source", "device_id", "device", "client", "site", "key", "status", "kind"),
        *("category", "check_type", "description", "output", "started_at", "consecutive_fails"),
    }
)
_KINDS = {k.value: k for k in FailureKind}


def parse_generic(body: bytes | str | Mapping[str, Any]) -> Webhook:
    """One alert in monitord's generic RMM schema (docs/rmm-webhooks.md)."""
    doc = _object(body)
    unknown = sorted(set(doc) - GENERIC_FIELDS)
    if unknown:
        raise WebhookError(
            unknown[0], f"unknown field (known: {', '.join(sorted(GENERIC_FIELDS))})"
        )
    name = _text(doc, "device")
    device_id = _text(doc, "device_id") or name
    if not device_id:
        raise WebhookError("device_id", "give device_id or device (the device's name)")
    _bounded("device_id" if _text(doc, "device_id") else "device", device_id, MAX_DEVICE_ID)
    status = _choice(doc, "status", ("problem", "ok"))
    kind = _KINDS[_choice(doc, "kind", tuple(_KINDS), default="check")]
    available = kind in (FailureKind.OFFLINE, FailureKind.OVERDUE, FailureKind.UNREACHABLE)
    check = _text(doc, "key") or (kind.value if available else "")
    if not check:
        raise WebhookError("key", "missing: the check's key, stable while the failure lasts")
    _bounded("key", check, MAX_KEY - MAX_DEVICE_ID - 1)
    key = f"{device_id}:{check}"  # the sender's key is per device; make it unique
    context = {
        "device_id": device_id,
        "device_name": name,
        "client": _text(doc, "client"),
        "site": _text(doc, "site"),
    }
    if status == "ok":
        return Webhook(None, key, **context)
    category_name = _text(doc, "category") or (
        Category.AVAILABILITY.value if available else Category.OTHER.value
    )
    try:
        category = Category(category_name)
    except ValueError:
        known = ", ".join(c.value for c in Category)
        raise WebhookError("category", f"unknown {category_name!r} (known: {known})") from None
    fails = doc.get("consecutive_fails", 1)
    if isinstance(fails, bool) or not isinstance(fails, int) or not 1 <= fails <= MAX_FAILS:
        raise WebhookError(
            "consecutive_fails", f"expected a whole number from 1 to {MAX_FAILS}, got {fails!r}"
        )
    description = _text(doc, "description")
    if not description:
        raise WebhookError("description", "missing: what failed, in words")
    failure = RmmFailure(
        key=key,
        device_id=device_id,
        kind=kind,
        category=category,
        check_type=_text(doc, "check_type") or kind.value,
        description=description,
        output=_text(doc, "output"),
        started_at=_when(doc, "started_at"),
        consecutive_fails=fails,
        status="problem",
    )
    return Webhook(failure, None, **context)


# fields ------------------------------------------------------------------------------


def _object(body: bytes | str | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(body, Mapping):
        return body
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WebhookError("body", f"not JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise WebhookError("body", f"expected a JSON object, got {type(doc).__name__}")
    return doc


def _text(doc: Mapping[str, Any], field: str) -> str:
    """The field as text; "" when absent, null, or a placeholder the RMM left
    unfilled (an availability alert has no check: `{{alert.assigned_check.id}}`)."""
    value = doc.get(field)
    if value is None:
        return ""
    if isinstance(value, dict | list):
        raise WebhookError(field, f"expected text, got {type(value).__name__}")
    text = str(value).strip()
    return "" if text in ("None", "null") or text.startswith("{{") else text


def _bounded(field: str, value: str, limit: int) -> str:
    if len(value) > limit:
        raise WebhookError(field, f"longer than {limit} characters ({len(value)})")
    return value


def _required(doc: Mapping[str, Any], field: str) -> str:
    value = _text(doc, field)
    if not value:
        raise WebhookError(field, "missing")
    return value


def _choice(
    doc: Mapping[str, Any], field: str, choices: tuple[str, ...], default: str | None = None
) -> str:
    value = _text(doc, field) or default
    if value is None:
        raise WebhookError(field, f"missing (one of {', '.join(choices)})")
    if value not in choices:
        raise WebhookError(field, f"expected one of {', '.join(choices)}, got {value!r}")
    return value


def _when(doc: Mapping[str, Any], field: str) -> float | None:
    """An ISO-8601 time with its UTC offset ("Z" too), or epoch seconds."""
    value = doc.get(field)
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not 0 <= value <= LATEST:  # NaN fails this too (Python's JSON reads NaN)
            raise WebhookError(field, f"expected Unix seconds, 0 to {LATEST:.0f}, got {value!r}")
        return float(value)
    text = _text(doc, field)
    if not text:
        return None
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise WebhookError(field, f"expected ISO-8601 or epoch seconds, got {text!r}") from None
    if at.tzinfo is None:
        raise WebhookError(field, f"{text!r} has no UTC offset (add Z or +01:00)")
    if not 0 <= at.timestamp() <= LATEST:
        raise WebhookError(field, f"{text!r} is out of range (1970 to 9999)")
    return at.timestamp()
