"""`alerting.ticket_policy`: who gets tickets, per priority and customer; mistakes are
located like every other config error."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitord.config import ConfigErrors, load_config
from monitord.config.tickets import TicketPolicy

CONFIG = """\
customers: [{name: acme}, {name: bigcorp}]
alerting:
  ticket_policy:
    priorities: [P1, P2]
    on_recovery: comment
    customers:
      bigcorp: {priorities: [P1, P2, P3, P4], on_recovery: close}
      acme: {on_recovery: resolve}
"""


def test_priorities_and_recovery_per_customer(tmp_path: Path) -> None:
    path = tmp_path / "monitord.yaml"
    path.write_text(CONFIG)
    policy = load_config(path).config.alerting.ticket_policy
    assert [policy.ticketed(c, "P3") for c in ("acme", "bigcorp", None)] == [False, True, False]
    assert policy.ticketed("acme", "P2") and policy.ticketed("bigcorp", "P4")
    assert [policy.recovery(c) for c in ("acme", "bigcorp", "other")] == [
        "resolve",
        "close",
        "comment",
    ]
    assert TicketPolicy().priorities == ("P1", "P2", "P3")  # P4 gets no ticket by default


@pytest.mark.parametrize(
    ("yaml", "error"),
    [
        (
            "alerting:\n  ticket_policy:\n    customers:\n      nope: {on_recovery: close}\n",
            "monitord.yaml:5: alerting.ticket_policy.customers.nope: unknown customer 'nope'",
        ),
        (
            "alerting:\n  ticket_policy:\n    on_recovery: delete\n",
            "monitord.yaml:4: alerting.ticket_policy.on_recovery: input should be 'resolve', "
            "'close' or 'comment'",
        ),
        (
            "alerting:\n  ticket_policy:\n    key_prefix: '1-bad'\n",
            "monitord.yaml:4: alerting.ticket_policy.key_prefix: key_prefix '1-bad' must be a "
            "letter then up to 19 letters, digits or '-'",
        ),
    ],
)
def test_mistakes_are_located(tmp_path: Path, yaml: str, error: str) -> None:
    path = tmp_path / "monitord.yaml"
    path.write_text("customers: [{name: acme}]\n" + yaml)
    with pytest.raises(ConfigErrors) as info:
        load_config(path)
    assert [str(e).replace(str(tmp_path) + "/", "") for e in info.value.errors] == [error]
