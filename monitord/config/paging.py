"""Paging config: channels, escalation policies, routes, acknowledgement.

    paging:
      channels:                       # channel instances; each kind validates its own keys
        - {name: sms, kind: sms_odorik, user: "1234567", password: env:ODORIK_PASSWORD}
        - {name: telegram, kind: telegram, token: env:TG_TOKEN, updates: poll}
        - {name: mail, kind: email, host: smtp.msp.example, sender: monitord@msp.example}
      policies:
        - name: night
          steps:
            - {targets: [support/primary], wait: 10m}     # a schedule layer
            - {targets: [support/secondary], wait: 10m}
            - {targets: [boss]}                           # an engineer
          repeat: 2
        - name: desk
          steps: [{targets: [desk/business, eva], wait: 15m}]
      routes:                          # first match decides; no match: ticket only
        - {match: {priorities: [P1]}, policy: night}
        - {match: {priorities: [P2], customers: [acme]}, policy: night}
      desk_policy: desk                # business hours, and deferred pages
      ack_secret: env:MONITORD_ACK_SECRET

A target is `schedule/layer` (whoever is on call there when the step fires),
an engineer's name, `fallback` (oncall.fallback) or `channel:<name>` (a channel
with no engineer behind it: the console, a PagerDuty service, a webhook). With no
`routes` paging works as it did before it was configured: `alerting.page_priorities`
page `alerting.channels`.

Cross-checks (unknown policies, targets, channels, engineers' addresses) are in
`check_paging`, located like every other config problem.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from monitord.config.base import Frozen, Priority
from monitord.config.types import Duration, Name, Secret

PagingPath = tuple[str | int, ...]

FALLBACK = "fallback"
CHANNEL_PREFIX = "channel:"

RECIPIENT = {
    "sms_odorik": "phone",
    "telegram": "telegram_chat_id",
    "email": "email",
}
"""Which engineer field a channel kind sends to; other kinds need `addresses[channel]`
(ntfy topic), or send to the engineer's name (webhook, PagerDuty, apprise: a service
with its own recipients in its config)."""
NAMED_KINDS = frozenset({"webhook", "pagerduty", "console", "apprise"})


class ChannelDef(BaseModel):
    """One paging channel: `name`, `kind` plus the kind's own keys (extras), which
    `alerts.channels.<kind>`'s `Config` model validates."""

    model_config = ConfigDict(frozen=True, extra="allow")

    name: Name = Field(max_length=50)
    kind: str

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.__pydantic_extra__ or {})


class Step(Frozen):
    targets: tuple[str, ...] = Field(min_length=1)
    wait: Duration = 600.0  # unacknowledged this long: the next step


class Policy(Frozen):
    """Steps in order; after the last, the whole policy `repeat`s (PagerDuty's num_loops)."""

    name: Name
    steps: tuple[Step, ...] = Field(min_length=1)
    repeat: int = Field(default=0, ge=0, le=20)
    ack_expiry: Duration | None = None  # overrides paging.ack_expiry; 0: acks never expire


class RouteMatch(Frozen):
    priorities: tuple[Priority, ...] = ()
    customers: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()

    def matches(self, priority: str, customer: str | None, category: str) -> bool:
        return (
            (not self.priorities or priority in {p.value for p in self.priorities})
            and (not self.customers or customer in self.customers)
            and (not self.categories or category in self.categories)
        )


class Route(Frozen):
    match: RouteMatch = Field(default_factory=RouteMatch)
    policy: str  # out of business hours, for a customer with after-hours cover
    business_policy: str | None = None  # in business hours; default: paging.desk_policy


class RateLimit(Frozen):
    """At most `pages` trigger pages per engineer within `per`; the rest wait and go
    out as one summary page when the window has room."""

    pages: int = Field(default=5, ge=1, le=1000)
    per: Duration = 600.0


class PagingConfig(Frozen):
    channels: tuple[ChannelDef, ...] = ()
    policies: tuple[Policy, ...] = ()
    routes: tuple[Route, ...] = ()
    desk_policy: str | None = None
    internal_targets: tuple[str, ...] = (FALLBACK,)  # who monitord's own problems page
    ack_secret: Secret | None = None  # HMAC key of ack links; links need daemon.public_url too
    ack_link_ttl: Duration = 86400.0
    ack_expiry: Duration = 0.0  # an ack lapses (and re-pages) after this; 0: never
    handover: bool = True  # an ack held past its holder's shift is re-offered to the next
    rate_limit: RateLimit = Field(default_factory=RateLimit)
    channel_failures: int = Field(default=2, ge=1, le=20)  # then the engineer's next channel
    tick: Duration = Field(default=5.0, gt=0)  # how often escalations advance (at most)

    @model_validator(mode="after")
    def _link_ttl(self) -> PagingConfig:
        if self.ack_link_ttl < 60:
            raise ValueError("ack_link_ttl must be at least 60s")
        return self

    def policy(self, name: str | None) -> Policy | None:
        return next((p for p in self.policies if p.name == name), None)

    def channel(self, name: str) -> ChannelDef | None:
        return next((c for c in self.channels if c.name == name), None)


def check_paging(config: Any) -> Iterator[tuple[PagingPath, str]]:
    """Every located problem of the `paging:` section (`config` is the whole Config)."""
    paging: PagingConfig = config.paging
    channels: dict[str, ChannelDef] = {}
    for i, channel in enumerate(paging.channels):
        if channel.name in channels or channel.name in {c.name for c in config.alerting.channels}:
            yield ("paging", "channels", i, "name"), f"duplicate channel {channel.name!r}"
        channels[channel.name] = channel
        yield from _check_channel(channel, ("paging", "channels", i))
    policies = yield from _check_policies(config, channels)
    yield from _check_routes(config, policies)
    if paging.routes and paging.ack_secret is None:
        yield ("paging", "ack_secret"), "paging routes need an ack_secret to sign ack links"
    if channels:
        yield from _check_engineers(config.oncall, channels)


def _check_policies(
    config: Any, channels: dict[str, ChannelDef]
) -> Generator[tuple[PagingPath, str], None, set[str]]:
    paging: PagingConfig = config.paging
    policies: set[str] = set()
    for i, policy in enumerate(paging.policies):
        path: PagingPath = ("paging", "policies", i)
        if policy.name in policies:
            yield (*path, "name"), f"duplicate policy {policy.name!r}"
        policies.add(policy.name)
        for j, step in enumerate(policy.steps):
            for k, target in enumerate(step.targets):
                problem = target_problem(target, config.oncall, config.alerting, channels)
                if problem:
                    yield (*path, "steps", j, "targets", k), problem
    # The default ("fallback") falls back to alerting.channels when no fallback is set.
    explicit = "internal_targets" in paging.model_fields_set
    for k, target in enumerate(paging.internal_targets if explicit else ()):
        problem = target_problem(target, config.oncall, config.alerting, channels)
        if problem:
            yield ("paging", "internal_targets", k), problem
    return policies


def _check_routes(config: Any, policies: set[str]) -> Iterator[tuple[PagingPath, str]]:
    paging: PagingConfig = config.paging
    if paging.desk_policy is not None and paging.desk_policy not in policies:
        yield ("paging", "desk_policy"), f"unknown policy {paging.desk_policy!r}"
    customers = {c.name for c in config.customers}
    for i, route in enumerate(paging.routes):
        path: PagingPath = ("paging", "routes", i)
        if route.policy not in policies:
            yield (*path, "policy"), f"unknown policy {route.policy!r}"
        if route.business_policy is not None and route.business_policy not in policies:
            yield (*path, "business_policy"), f"unknown policy {route.business_policy!r}"
        for j, customer in enumerate(route.match.customers):
            if customer not in customers:
                yield (*path, "match", "customers", j), f"unknown customer {customer!r}"


def target_problem(target: str, oncall: Any, alerting: Any, channels: dict[str, Any]) -> str:
    """What is wrong with one step target, or ""."""
    if target == FALLBACK:
        return "" if oncall.fallback is not None else "'fallback' but oncall.fallback is not set"
    if target.startswith(CHANNEL_PREFIX):
        name = target[len(CHANNEL_PREFIX) :]
        channel = channels.get(name)
        if channel is not None and channel.kind not in NAMED_KINDS:
            return (
                f"channel {name!r} ({channel.kind}) sends to a person's address: "
                "target the engineer or the layer instead"
            )
        known = channel is not None or name in {c.name for c in alerting.channels}
        return "" if known else f"unknown channel {name!r}"
    if "/" in target:
        schedule_name, _, layer_name = target.partition("/")
        schedule = oncall.schedule(schedule_name)
        if schedule is None:
            return f"unknown schedule {schedule_name!r}"
        if schedule.layer(layer_name) is None:
            return f"unknown layer {layer_name!r} in schedule {schedule_name!r}"
        return ""
    if oncall.engineer(target) is None:
        return f"unknown engineer {target!r} (a layer is written schedule/layer)"
    return ""


def _check_channel(channel: ChannelDef, path: PagingPath) -> Iterator[tuple[PagingPath, str]]:
    from pydantic import ValidationError

    from alerts.channels import REGISTRY
    from alerts.paging.channels import channel_class, channel_settings

    if channel.kind not in REGISTRY or channel.kind == "console":
        known = ", ".join(k for k in REGISTRY if k != "console")
        yield (*path, "kind"), f"unknown channel kind {channel.kind!r} (known: {known})"
        return
    try:
        channel_class(channel.kind)
        channel_settings(channel)
    except ValidationError as exc:
        for err in exc.errors():
            yield (*path, *err["loc"]), _message(err)
    except (ValueError, ImportError) as exc:
        located = getattr(exc, "key", None)
        yield ((*path, located) if located else path), str(exc)


def _check_engineers(
    oncall: Any, channels: dict[str, ChannelDef]
) -> Iterator[tuple[PagingPath, str]]:
    people: list[tuple[str, int | None, Any]] = [
        ("engineers", i, e) for i, e in enumerate(oncall.engineers)
    ]
    if oncall.fallback is not None:
        people.append(("fallback", None, oncall.fallback))
    for section, i, engineer in people:
        path: PagingPath = ("oncall", section) if i is None else ("oncall", section, i)
        for k, name in enumerate(engineer.channels):
            channel = channels.get(name)
            if channel is None:
                yield (*path, "channels", k), f"unknown paging channel {name!r}"
            elif not address(engineer, channel):
                need = RECIPIENT.get(channel.kind, f"addresses.{name}")
                yield (
                    (*path, "channels", k),
                    f"{engineer.name} has no {need} for channel {name!r} ({channel.kind})",
                )
        for name in engineer.addresses:
            if name not in channels:
                yield (*path, "addresses", name), f"unknown paging channel {name!r}"


def address(engineer: Any, channel: ChannelDef) -> str | None:
    """Where `channel` reaches `engineer` (phone, chat id, e-mail, topic), or None."""
    if channel.name in engineer.addresses:
        return str(engineer.addresses[channel.name])
    field = RECIPIENT.get(channel.kind)
    if field == "phone":
        return engineer.phones[0] if engineer.phones else None
    if field is not None:
        value = getattr(engineer, field)
        return None if value is None else str(value)
    return engineer.name if channel.kind in NAMED_KINDS else None


def _message(err: Any) -> str:
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "missing required key"
    msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
    return msg[:1].lower() + msg[1:]
