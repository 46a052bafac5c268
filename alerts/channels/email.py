"""E-mail over SMTP with Python's smtplib, run in a worker thread (`asyncio.to_thread`).

Plain-text body with the ack link. `security`: `starttls` (587), `tls` (implicit,
465) or `none` (loopback relays only). Every message of one incident carries
`References`/`In-Reply-To: <dedup_key@monitord>` so mail clients thread them.
SMTP replies: 5xx permanent, 4xx retryable, 535 (authentication) permanent auth,
connection problems retryable.
"""

from __future__ import annotations

import asyncio
import hashlib
import smtplib
import ssl
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any, ClassVar, Literal

import aiohttp
from pydantic import SecretStr, model_validator

from alerts.channels.base import ChannelConfig, DeliveryResult, Page
from monitord.clock import Clock, SystemClock
from monitord.errors import DeliveryError, Reason


class EmailConfig(ChannelConfig):
    EXAMPLE: ClassVar[dict[str, Any]] = {
        "host": "smtp.msp.example",
        "port": 587,
        "security": "starttls",
        "username": "monitord@msp.example",
        "password": "smtp-password",
        "sender": "monitord@msp.example",
    }

    host: str
    port: int = 587
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    sender: str
    verify_tls: bool = True
    ca_file: str | None = None  # a private CA for the relay's certificate

    @model_validator(mode="after")
    def _auth_pair(self) -> EmailConfig:
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together")
        return self


def thread_id(dedup_key: str) -> str:
    return f"<{hashlib.sha256(dedup_key.encode()).hexdigest()[:24]}@monitord>"


def build_message(page: Page, config: EmailConfig, now: float) -> EmailMessage:
    verb = {"trigger": "", "acknowledge": "ACKNOWLEDGED ", "resolve": "RESOLVED "}[page.action]
    msg = EmailMessage()
    msg["From"] = config.sender
    msg["To"] = page.recipient
    msg["Subject"] = f"{verb}[{page.priority}] {page.title}"
    msg["Date"] = format_datetime(datetime.fromtimestamp(now, UTC))
    msg["Message-ID"] = make_msgid(domain="monitord")
    msg["In-Reply-To"] = msg["References"] = thread_id(page.dedup_key)
    msg["X-Monitord-Dedup-Key"] = page.dedup_key
    msg["X-Monitord-Action"] = page.action
    text = page.body
    if page.ack_url and page.action == "trigger":
        text += f"\n\nAcknowledge: {page.ack_url}\n"
    msg.set_content(text)
    return msg


def _smtp_error(exc: smtplib.SMTPException) -> DeliveryError:
    if isinstance(exc.__context__, TimeoutError):  # smtplib wraps socket timeouts
        return DeliveryError(
            "smtp: server stopped answering", permanent=False, reason=Reason.TIMEOUT
        )
    if isinstance(exc, smtplib.SMTPNotSupportedError):  # no STARTTLS / AUTH on offer
        return DeliveryError(
            f"smtp: server does not support it: {exc}"[:200],
            permanent=True,
            reason=Reason.CLIENT_ERROR,
        )
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return DeliveryError(
            f"smtp: authentication failed ({exc.smtp_code})", permanent=True, reason=Reason.AUTH
        )
    code: int | None = None
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code = min((c for c, _ in exc.recipients.values()), default=None)
    elif isinstance(exc, smtplib.SMTPResponseException):
        code = exc.smtp_code
    if code is not None and 500 <= code < 600:
        return DeliveryError(f"smtp: rejected ({code})", permanent=True, reason=Reason.CLIENT_ERROR)
    if code is not None:
        return DeliveryError(
            f"smtp: temporary failure ({code})", permanent=False, reason=Reason.SERVER_ERROR
        )
    return DeliveryError(f"smtp: {type(exc).__name__}", permanent=False, reason=Reason.NETWORK)


class EmailChannel:
    kind: ClassVar[str] = "email"
    Config = EmailConfig

    def __init__(
        self,
        config: EmailConfig,
        *,
        session: aiohttp.ClientSession | None = None,  # unused: SMTP, not HTTP
        clock: Clock | None = None,
    ) -> None:
        self.config = config
        self.clock = clock or SystemClock()

    def _context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.config.ca_file)
        if not self.config.verify_tls:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def _send_blocking(self, msg: EmailMessage) -> None:
        cfg = self.config
        smtp: smtplib.SMTP
        if cfg.security == "tls":
            smtp = smtplib.SMTP_SSL(
                cfg.host, cfg.port, timeout=cfg.timeout, context=self._context()
            )
        else:
            smtp = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout)
        with smtp:
            if cfg.security == "starttls":
                smtp.starttls(context=self._context())
            if cfg.username is not None and cfg.password is not None:
                smtp.login(cfg.username, cfg.password.get_secret_value())
            smtp.send_message(msg)

    async def send(self, page: Page) -> DeliveryResult:
        try:
            msg = build_message(page, self.config, self.clock.time())
        except ValueError as exc:  # e.g. a line break in an address
            raise DeliveryError(
                f"smtp: cannot build the message: {exc}"[:200],
                permanent=True,
                reason=Reason.CLIENT_ERROR,
            ) from None
        try:
            async with asyncio.timeout(self.config.timeout * 3):  # connect + tls + data
                await asyncio.to_thread(self._send_blocking, msg)
        except TimeoutError:
            raise DeliveryError(
                f"smtp: no answer within {self.config.timeout:g} s",
                permanent=False,
                reason=Reason.TIMEOUT,
            ) from None
        except smtplib.SMTPException as exc:
            raise _smtp_error(exc) from None
        except ssl.SSLError as exc:
            raise DeliveryError(
                f"smtp: TLS failed ({exc.reason})", permanent=False, reason=Reason.NETWORK
            ) from None
        except OSError as exc:
            raise DeliveryError(
                f"smtp: {type(exc).__name__}", permanent=False, reason=Reason.NETWORK
            ) from None
        return DeliveryResult(self.kind, str(msg["Message-ID"]))
