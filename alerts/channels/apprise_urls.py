"""apprise: the long tail of chat and push services (Teams, Slack, Matrix, Discord,
Pushover, Signal, ...) by one apprise URL, for the places a page is *told*, not
acknowledged: the desk's team chat as a policy's `channel:<name>` target, or the
last entry of an engineer's channel list.

Why only there (../shared/docs/integrations.md 2.7): apprise answers per service
"success, failure or timeout" and nothing else: no remote id, no dedup key (its
PagerDuty plugin cannot resolve), no buttons (its Telegram plugin sends text), no
inbound path, so nothing it sends can be acknowledged except through the ack link
in the text. Odorik, Telegram, PagerDuty, ntfy and e-mail have their own modules.

A failure cannot be told apart from a refusal (apprise logs the HTTP status but does
not return it), so every failure is retryable: the engineer's next channel takes
over after `paging.channel_failures` of them, and a policy target is retried with
the outbox's backoff while the internal incident says the channel fails.

apprise is an optional dependency (`pip install 'monitord[apprise]'`): a config that
uses this kind without it is refused with that hint. Its plugins use `requests`, so
a send runs in apprise's own worker threads (`async_notify`), bounded by `timeout`.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import warnings
from typing import Any, ClassVar

import aiohttp
from pydantic import SecretStr, field_validator

from alerts.channels.base import ChannelConfig, DeliveryResult, Page
from monitord.clock import Clock, SystemClock
from monitord.errors import DeliveryError, Reason

HINT = "the apprise package is not installed: pip install 'monitord[apprise]'"
HEADING = {"trigger": "", "acknowledge": "ACK ", "resolve": "RESOLVED "}


@functools.cache
def _apprise() -> Any:
    try:
        with warnings.catch_warnings():
            # its e-mail plugin imports imghdr, deprecated since Python 3.11: apprise's
            # business, not a problem of ours (plugins load at the first URL parsed)
            warnings.filterwarnings("ignore", ".*imghdr", DeprecationWarning)
            module = importlib.import_module("apprise")
            module.Apprise.instantiate("json://localhost")
            return module
    except ImportError:
        raise ValueError(HINT) from None


class AppriseConfig(ChannelConfig):
    EXAMPLE: ClassVar[dict[str, Any]] = {
        "url": "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#desk",
    }

    url: SecretStr  # one apprise URL; it carries the service's tokens, so env:/file: work

    @field_validator("url")
    @classmethod
    def _url(cls, v: SecretStr) -> SecretStr:
        if _apprise().Apprise.instantiate(v.get_secret_value()) is None:
            raise ValueError("url is not a URL apprise supports (see its wiki for the schemes)")
        return v


def text(page: Page) -> tuple[str, str]:
    """(title, body): what happened, who it is for (an engineer's name; nobody for a
    policy target) and, for a trigger, the ack link."""
    title = f"{HEADING[page.action]}{page.priority} {page.title}"
    lines = [f"for {page.recipient}"] if page.recipient else []
    if page.body:
        lines.append(page.body)
    if page.action == "trigger" and page.ack_url:
        lines.append(f"Acknowledge: {page.ack_url}")
    return title, "\n".join(lines) or title


class AppriseChannel:
    kind: ClassVar[str] = "apprise"
    Config = AppriseConfig

    def __init__(
        self, config: AppriseConfig, *, session: aiohttp.ClientSession, clock: Clock | None = None
    ) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self.module = _apprise()

    async def send(self, page: Page) -> DeliveryResult:
        lib = self.module
        notifier = lib.Apprise()
        if not notifier.add(self.config.url.get_secret_value()):
            raise DeliveryError(
                "apprise: url not accepted", permanent=True, reason=Reason.CLIENT_ERROR
            )
        kind = {"trigger": lib.NotifyType.FAILURE, "resolve": lib.NotifyType.SUCCESS}
        title, body = text(page)
        try:
            async with asyncio.timeout(self.config.timeout + 1):
                result = await notifier.async_notify(
                    body=body,
                    title=title,
                    notify_type=kind.get(page.action, lib.NotifyType.INFO),
                    timeout=self.config.timeout,
                )
        except TimeoutError:
            raise DeliveryError(
                f"apprise: no answer within {self.config.timeout:g} s",
                permanent=False,
                reason=Reason.TIMEOUT,
            ) from None
        if result:
            return DeliveryResult(self.kind)
        # service names only: the URLs (even apprise's masked ones) stay out of errors
        services = ", ".join(sorted({r.name for r in result.results})) or "no service"
        timed_out = result.timeout_count > 0 and result.timeout_count == len(result.results)
        if timed_out:
            raise DeliveryError(
                f"apprise {services}: no answer within {self.config.timeout:g} s",
                permanent=False,
                reason=Reason.TIMEOUT,
            )
        raise DeliveryError(
            f"apprise {services}: not delivered", permanent=False, reason=Reason.SERVER_ERROR
        )
