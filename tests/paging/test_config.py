"""The paging section's problems, each located (file, line, key) with an exact message."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitord.config import ConfigErrors, load_config

BASE = """\
daemon: {state_dir: /tmp}
customers: [{name: acme}]
oncall:
  engineers:
    - {name: jan, phones: ["+420777123456"], channels: [sms, tg]}
    - {name: petr, channels: [mail, nosuch]}
  schedules:
    - name: support
      layers: [{name: primary, start: 2026-11-02, engineers: [jan, petr]}]
"""


def errors_of(tmp_path: Path, paging: str) -> list[str]:
    path = tmp_path / "monitord.yaml"
    path.write_text(BASE + paging)
    with pytest.raises(ConfigErrors) as info:
        load_config(path)
    return [str(e).replace(str(tmp_path) + "/", "") for e in info.value.errors]


def test_every_problem_is_located(tmp_path: Path) -> None:
    paging = """\
paging:
  channels:
    - {name: sms, kind: sms_odorik, user: "1", password: env:MONITORD_TEST_UNSET_PW}
    - {name: tg, kind: telegram, token: "1:x", updates: webhook}
    - {name: mail, kind: email, host: smtp.example, sender: m@example, port: many}
    - {name: pigeon, kind: carrier}
  policies:
    - name: night
      steps:
        - {targets: [support/primary, "channel:tg"], wait: 5m}
        - {targets: [support/tertiary, boss, fallback, "channel:fax"]}
  routes:
    - {match: {priorities: [P1], customers: [zeta]}, policy: day}
  desk_policy: desk
"""
    assert errors_of(tmp_path, paging) == [
        "monitord.yaml:12: paging.channels[0].password: "
        "environment variable 'MONITORD_TEST_UNSET_PW' is not set",
        "monitord.yaml:13: paging.channels[1]: updates: webhook needs a webhook_secret",
        "monitord.yaml:14: paging.channels[2].port: "
        "input should be a valid integer, unable to parse string as an integer",
        "monitord.yaml:15: paging.channels[3].kind: unknown channel kind 'carrier' "
        "(known: apprise, email, ntfy, pagerduty, sms_odorik, telegram, webhook)",
        "monitord.yaml:19: paging.policies[0].steps[0].targets[1]: channel 'tg' (telegram) "
        "sends to a person's address: target the engineer or the layer instead",
        "monitord.yaml:20: paging.policies[0].steps[1].targets[0]: "
        "unknown layer 'tertiary' in schedule 'support'",
        "monitord.yaml:20: paging.policies[0].steps[1].targets[1]: "
        "unknown engineer 'boss' (a layer is written schedule/layer)",
        "monitord.yaml:20: paging.policies[0].steps[1].targets[2]: "
        "'fallback' but oncall.fallback is not set",
        "monitord.yaml:20: paging.policies[0].steps[1].targets[3]: unknown channel 'fax'",
        "monitord.yaml:23: paging.desk_policy: unknown policy 'desk'",
        "monitord.yaml:22: paging.routes[0].policy: unknown policy 'day'",
        "monitord.yaml:22: paging.routes[0].match.customers[0]: unknown customer 'zeta'",
        "monitord.yaml:10: paging.ack_secret: paging routes need an ack_secret to sign ack links",
        "monitord.yaml:5: oncall.engineers[0].channels[1]: "
        "jan has no telegram_chat_id for channel 'tg' (telegram)",
        "monitord.yaml:6: oncall.engineers[1].channels[0]: "
        "petr has no email for channel 'mail' (email)",
        "monitord.yaml:6: oncall.engineers[1].channels[1]: unknown paging channel 'nosuch'",
    ]


def test_an_apprise_url_apprise_cannot_parse_is_located(tmp_path: Path) -> None:
    paging = """\
paging:
  channels:
    - {name: sms, kind: sms_odorik, user: "1", password: pw}
    - {name: tg, kind: telegram, token: "1:x"}
    - {name: mail, kind: email, host: smtp.example, sender: m@example}
    - {name: teams, kind: apprise, url: "nosuch://token@team"}
"""
    assert errors_of(tmp_path, paging) == [
        "monitord.yaml:15: paging.channels[3].url: "
        "url is not a URL apprise supports (see its wiki for the schemes)",
        "monitord.yaml:5: oncall.engineers[0].channels[1]: "
        "jan has no telegram_chat_id for channel 'tg' (telegram)",
        "monitord.yaml:6: oncall.engineers[1].channels[0]: "
        "petr has no email for channel 'mail' (email)",
        "monitord.yaml:6: oncall.engineers[1].channels[1]: unknown paging channel 'nosuch'",
    ]
