"""RMM agent problems and disputed RMM failures are never paged.

They are the RMM's noise, cross-checked and found wanting: a ticket at
`rmm.low_priority` (validated not to be a paged priority) is all they get,
whatever the priority rules would say of the device (a high-criticality server
would otherwise lift them into paging).
"""

from __future__ import annotations

from correlator.engine import Prioritize
from correlator.events import Event
from monitord.config.model import Config
from monitord.config.rmm import LOW_CATEGORIES


def cap_rmm_noise(config: Config, inner: Prioritize) -> Prioritize:
    """`inner`, except for the RMM's low categories (rmm-agent, rmm-disputed)."""
    low = config.rmm.low_priority.value

    def decide(event: Event) -> tuple[str, str]:
        if event.category in LOW_CATEGORIES:
            return low, (
                f"{low} because: category {event.category} "
                "(rmm.low_priority: RMM agent problems and disputed RMM failures never page)"
            )
        return inner(event)

    return decide
