"""SMS through the Odorik.cz API (`POST <base_url>sms`, form-encoded).

Odorik answers HTTP 200 for almost everything and reports the outcome in a
plain-text body: `successfully_sent <credit>` / `successfully_enqueued` on success,
`error <code> …` on failure. `error gateway_failed` is retryable; every other
`error …` (authentication, forbidden sender, low balance, …) is permanent.
"""

from __future__ import annotations

import json
import re
import unicodedata
from datetime import UTC, datetime
from typing import Any, ClassVar

import aiohttp
from pydantic import SecretStr, field_validator

from alerts.channels.base import ChannelConfig, DeliveryResult, Page, http_failure, http_request
from monitord.clock import Clock, SystemClock
from monitord.errors import DeliveryError, Reason

MAX_MESSAGE = 765  # Odorik truncates longer messages server-side
RETRYABLE_ERRORS = {"gateway_failed", "callback_failed"}
AUTH_ERRORS = {"authentication_required", "authentication_failed"}


class OdorikConfig(ChannelConfig):
    EXAMPLE: ClassVar[dict[str, Any]] = {
        "user": "1234567",
        "password": "api-password-from-odorik",
        "sender": "5517",
    }

    base_url: str = "https://www.odorik.cz/api/v1/"
    user: str
    password: SecretStr  # the account's API password or the line's SIP password
    sender: str | None = None  # one of GET /sms/allowed_sender
    user_agent: str = "monitord"
    ascii_only: bool = True  # diacritics would force UCS-2 (70 chars per segment)

    @field_validator("base_url")
    @classmethod
    def _slash(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("base_url must be an http(s) URL")
        return v if v.endswith("/") else v + "/"


def odorik_number(phone: str) -> str:
    """`+420 777 123 456` → `00420777123456` (Odorik's international format)."""
    digits = re.sub(r"[\s\-/().]", "", phone)
    if digits.startswith("+"):
        digits = "00" + digits[1:]
    if not re.fullmatch(r"00\d{6,15}", digits):
        raise DeliveryError(
            "odorik sms: recipient is not an international phone number",
            permanent=True,
            reason=Reason.CLIENT_ERROR,
        )
    return digits


def sms_text(page: Page, *, ascii_only: bool) -> str:
    """The SMS: heading, body, ack link; a body too long for Odorik's 765 characters is
    cut, never the link (a summary of many incidents must stay acknowledgeable)."""
    verb = {"trigger": "", "acknowledge": "ACK ", "resolve": "RESOLVED "}[page.action]
    text = f"{verb}{page.priority} {page.title}"
    if page.body:
        text += f"\n{page.body}"
    link = f"\nAck: {page.ack_url}" if page.ack_url and page.action == "trigger" else ""
    if ascii_only:
        text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    if len(text) + len(link) > MAX_MESSAGE:
        text = text[: max(0, MAX_MESSAGE - len(link) - 3)] + "..."
    return (text + link)[:MAX_MESSAGE]


def parse_reply(body: str) -> DeliveryResult:
    """Success, or the DeliveryError the body describes."""
    words = body.strip().split()
    if words and words[0] in ("successfully_sent", "successfully_enqueued"):
        return DeliveryResult("sms_odorik", None, body.strip())
    if len(words) >= 2 and words[0] == "error":
        code = words[1]
        text = f"odorik sms: {' '.join(words[1:])[:200]}"
        if code in RETRYABLE_ERRORS:
            raise DeliveryError(text, permanent=False, reason=Reason.SERVER_ERROR)
        if code in AUTH_ERRORS:
            raise DeliveryError(text, permanent=True, reason=Reason.AUTH)
        raise DeliveryError(text, permanent=True, reason=Reason.CLIENT_ERROR)
    # not a documented answer: we cannot tell whether it was sent; a duplicate SMS
    # is better than a lost page, so retry
    raise DeliveryError(
        "odorik sms: unexpected answer", permanent=False, reason=Reason.SERVER_ERROR
    )


class OdorikSmsChannel:
    kind: ClassVar[str] = "sms_odorik"
    Config = OdorikConfig

    def __init__(
        self, config: OdorikConfig, *, session: aiohttp.ClientSession, clock: Clock | None = None
    ) -> None:
        self.config = config
        self.session = session
        self.clock = clock or SystemClock()

    async def send(self, page: Page) -> DeliveryResult:
        cfg = self.config
        password = cfg.password.get_secret_value()
        form = {
            "user": cfg.user,
            "password": password,
            "user_agent": cfg.user_agent,
            "recipient": odorik_number(page.recipient),
            "message": sms_text(page, ascii_only=cfg.ascii_only),
        }
        if cfg.sender:
            form["sender"] = cfg.sender
        reply = await http_request(
            self.session,
            "POST",
            cfg.base_url + "sms",
            label="odorik sms",
            timeout=cfg.timeout,
            secrets=[password],
            data=form,
        )
        if reply.status != 200:
            raise http_failure("odorik sms", reply.status)
        return parse_reply(reply.text)

    async def sent_since(self, recipient: str, since: float) -> int:
        """How many SMS went to `recipient` from `since` on, per Odorik's history
        (`GET sms.json?from&to&direction=out`: who sent what to whom when, no texts).

        The paging deliverer asks this after a crash interrupted a send, to tell an SMS
        that went out from one that did not. The item fields follow the call history's
        (`date`, `destination_number`); `recipient` is accepted too [inferred: the
        stored docs give the parameters, not the item shape].
        """
        cfg = self.config
        password = cfg.password.get_secret_value()
        now = self.clock.time()
        params = {
            "user": cfg.user,
            "password": password,
            "user_agent": cfg.user_agent,
            "from": _xml_time(since),
            "to": _xml_time(max(now, since) + 60),
            "direction": "out",
        }
        reply = await http_request(
            self.session,
            "GET",
            cfg.base_url + "sms.json",
            label="odorik sms history",
            timeout=cfg.timeout,
            secrets=[password],
            params=params,
        )
        if reply.status != 200 or reply.text.startswith("error"):
            raise http_failure("odorik sms history", reply.status if reply.status != 200 else 502)
        try:
            items = json.loads(reply.text)
        except ValueError:
            raise DeliveryError(
                "odorik sms history: not JSON", permanent=False, reason=Reason.SERVER_ERROR
            ) from None
        number = odorik_number(recipient)
        count = 0
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, dict):
                continue
            to = str(item.get("destination_number") or item.get("recipient") or "")
            if to == number or to.lstrip("+") == number[2:]:
                count += 1
        return count


def _xml_time(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")
