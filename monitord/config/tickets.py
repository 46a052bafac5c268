"""Ticket policy (`alerting.ticket_policy`): which incidents get tickets, what a
recovery does to them, and when a ticket system counts as down.

```yaml
alerting:
  ticket_policy:
    priorities: [P1, P2, P3]     # P4 incidents get no ticket
    on_recovery: resolve         # resolve | close | comment (a note, the desk closes)
    unreachable_after: 5m        # internal incident "ticket system X unreachable"
    customers:
      bigcorp: {priorities: [P1, P2, P3, P4], on_recovery: close}
```

An incident is judged when it is notified and again when its priority changes:
a P4 that turns P2 gets its ticket then. A customer's entry overrides only the
keys it sets. Cross-checks (a customer the config lacks) are in
`check_ticket_policy`, located like every other config problem.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator

from monitord.config.base import Frozen, Priority
from monitord.config.types import Duration, Name

if TYPE_CHECKING:
    from monitord.config.model import Config

Recovery = Literal["resolve", "close", "comment"]
_PREFIX = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,19}$")
DEFAULT_PRIORITIES = (Priority.P1, Priority.P2, Priority.P3)


class CustomerTickets(Frozen):
    """One customer's overrides; a key left out keeps the policy's value."""

    priorities: tuple[Priority, ...] | None = None
    on_recovery: Recovery | None = None


class TicketPolicy(Frozen):
    priorities: tuple[Priority, ...] = DEFAULT_PRIORITIES
    on_recovery: Recovery = "resolve"
    customers: dict[Name, CustomerTickets] = Field(default_factory=dict)
    # A ticket system failing (network, timeout, 5xx) this long raises the internal
    # incident "ticket system <name> unreachable"; it clears with the next delivery.
    unreachable_after: Duration = Field(default=300.0, ge=0)
    # While a system is failing, it is asked this often whether it answers again, so
    # the queue moves as soon as it is back instead of after the longest backoff.
    probe_interval: Duration = Field(default=15.0, gt=0)
    # Dedup keys are `<prefix>-<incident id>-<opened at>`; the opening time keeps a
    # fresh database from adopting an older installation's tickets.
    key_prefix: str = "monitord"

    @field_validator("key_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not _PREFIX.match(value):
            raise ValueError(
                f"key_prefix {value!r} must be a letter then up to 19 letters, digits or '-'"
            )
        return value

    def ticketed(self, customer: str | None, priority: str) -> bool:
        """Whether an incident of `customer` at `priority` gets a ticket."""
        own = self.customers.get(customer or "")
        wanted = own.priorities if own and own.priorities is not None else self.priorities
        return priority in {p.value for p in wanted}

    def recovery(self, customer: str | None) -> Recovery:
        own = self.customers.get(customer or "")
        return own.on_recovery if own and own.on_recovery else self.on_recovery


def check_ticket_policy(config: Config) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Located problems of `alerting.ticket_policy`: customers the config lacks."""
    known = {c.name for c in config.customers}
    for name in config.alerting.ticket_policy.customers:
        if name not in known:
            yield (
                ("alerting", "ticket_policy", "customers", name),
                f"unknown customer {name!r}",
            )
