"""`rmm:` config: defaults that work, the poll-interval floor, every problem located."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitord.config import ConfigErrors, load_config
from monitord.config.rmm import source_settings

BASE = """\
customers:
  - name: acme
    sites:
      - {name: hq, gateway: rtr}
devices:
  - {name: rtr, customer: acme, site: hq, address: 127.0.0.1, role: network}
"""


def write(tmp_path: Path, rmm: str) -> Path:
    path = tmp_path / "monitord.yaml"
    path.write_text(BASE + rmm)
    return path


def errors_of(path: Path) -> list[str]:
    with pytest.raises(ConfigErrors) as info:
        load_config(path)
    return [str(e).replace(str(path.parent) + "/", "") for e in info.value.errors]


def test_a_minimal_section_works_on_defaults(
    tmp_path: Path, fake_kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MONITORD_TEST_RMM_KEY", "k-123")
    text = """\
rmm:
  sources:
    - {name: nsight, kind: fake, account: demo, api_key: env:MONITORD_TEST_RMM_KEY}
"""
    rmm = load_config(write(tmp_path, text)).config.rmm
    (source,) = rmm.sources
    assert rmm.poll_interval_of(source, 90.0) == 120.0  # the default, above the floor
    assert rmm.poll_interval_of(source, 300.0) == 300.0  # a default below a floor is raised
    assert rmm.unmapped_clients == "skip"
    assert rmm.rule("availability").category == "host-down"
    assert rmm.rule("antivirus").unverifiable is True
    assert rmm.rule("antivirus").category == "av-outdated"
    assert rmm.rule("backup").category == "backup-failed"
    assert rmm.rule("disk-space").category == "disk-full"
    cls, settings = source_settings(source)
    assert cls.kind == "fake"
    assert settings.account == "demo"  # type: ignore[attr-defined]


def test_an_override_changes_only_the_keys_it_sets(tmp_path: Path, fake_kind: str) -> None:
    text = """\
rmm:
  verdicts:
    availability:
      verify: [{type: tcp, port: 8022}]
    service:
      persist: 30m
"""
    rmm = load_config(write(tmp_path, text)).config.rmm
    availability = rmm.rule("availability")
    assert [v.type for v in availability.verify] == ["tcp"]
    assert availability.evidence[0].reachability  # kept from the default
    service = rmm.rule("service")
    assert service.persist == 1800.0
    assert service.category == "service-down"


def test_poll_interval_below_the_floor_is_located(tmp_path: Path, fake_kind: str) -> None:
    text = """\
rmm:
  sources:
    - name: nsight
      kind: fake
      account: demo
      poll_interval: 30s
"""
    assert errors_of(write(tmp_path, text)) == [
        "monitord.yaml:12: rmm.sources[0].poll_interval: 90 s is the shortest poll "
        "interval fake tolerates; got 30 s"
    ]
    text = """\
rmm:
  poll_interval: 60s
  sources:
    - {name: nsight, kind: fake, account: demo}
"""
    assert errors_of(write(tmp_path, text)) == [
        "monitord.yaml:8: rmm.poll_interval: 90 s is the shortest poll interval fake "
        "tolerates (source 'nsight'); got 60 s"
    ]


def test_unknown_kind_and_bad_source_keys_are_located(tmp_path: Path, fake_kind: str) -> None:
    text = """\
rmm:
  sources:
    - {name: one, kind: kaseya}
    - name: two
      kind: fake
      acount: typo
    - {name: one, kind: fake, account: x, api_key: env:MONITORD_TEST_NOT_SET}
"""
    errors = errors_of(write(tmp_path, text))
    assert errors[0].startswith("monitord.yaml:9: rmm.sources[0].kind: unknown RMM kind 'kaseya'")
    assert "fake" in errors[0] and "nsight" in errors[0]
    assert errors[1:] == [
        "monitord.yaml:10: rmm.sources[1].account: missing required key",
        "monitord.yaml:12: rmm.sources[1].acount: unknown key",
        "monitord.yaml:13: rmm.sources[2].name: duplicate RMM source 'one' (also sources[0])",
    ]


def test_a_mapping_names_its_client_exactly_once(tmp_path: Path, fake_kind: str) -> None:
    text = """\
rmm:
  clients:
    - {client_id: "7", client: "Both", customer: acme}
"""
    assert errors_of(write(tmp_path, text)) == [
        "monitord.yaml:9: rmm.clients[0]: give exactly one of 'client' (its name) or 'client_id'",
    ]


def test_mapping_cross_checks_are_located(tmp_path: Path, fake_kind: str) -> None:
    text = """\
rmm:
  sources:
    - {name: nsight, kind: fake, account: demo}
  clients:
    - {client: "Acme Corporation", customer: acme}
    - {client: "Globex", customer: globex}
    - {client: "Acme Corporation", customer: acme, source: tactical}
    - {client: "Acme Corporation", customer: acme}
  sites:
    - {customer: acme, rmm_site: "Head Office", site: branch}
    - {customer: initech, rmm_site_id: "5", site: hq}
"""
    assert errors_of(write(tmp_path, text)) == [
        "monitord.yaml:12: rmm.clients[1].customer: unknown customer 'globex'",
        "monitord.yaml:13: rmm.clients[2].source: unknown RMM source 'tactical'",
        "monitord.yaml:14: rmm.clients[3]: client mapped twice (also clients[0])",
        "monitord.yaml:16: rmm.sites[0].site: unknown site 'branch' of 'acme'",
        "monitord.yaml:17: rmm.sites[1].customer: unknown customer 'initech'",
    ]


def test_verdict_rules_are_checked(tmp_path: Path, fake_kind: str) -> None:
    text = """\
rmm:
  verdicts:
    teleportation: {unverifiable: true}
    availability:
      verify:
        - {type: tcp}
        - {type: warp}
    disk-space:
      evidence:
        - {kinds: [snmp, telepathy]}
    service:
      evidence:
        - {kinds: [tcp], when: "DNS("}
  low_priority: P2
  uplink_check: {type: icmp, count: 0}
"""
    errors = errors_of(write(tmp_path, text))
    # the regex is refused by the model, before the cross-checks run
    assert errors == [
        "monitord.yaml:19: rmm.verdicts.service.evidence[0].when: bad regular expression "
        "'DNS(': missing ), unterminated subpattern at position 3",
    ]
    text = text.replace('when: "DNS("', 'when: "DNS"')
    errors = errors_of(write(tmp_path, text))
    assert errors[0].startswith(
        "monitord.yaml:9: rmm.verdicts.teleportation: unknown RMM check category 'teleportation'"
    )
    assert errors[1:] == [
        "monitord.yaml:12: rmm.verdicts.availability.verify[0].port: missing required key",
        "monitord.yaml:13: rmm.verdicts.availability.verify[1].type: unknown check type 'warp' "
        "(known: dns, heartbeat, http, icmp, local, plugin, snmp, tcp, tls)",
        "monitord.yaml:16: rmm.verdicts.disk-space.evidence[0].kinds: unknown check type "
        "'telepathy'",
        "monitord.yaml:21: rmm.uplink_check.count: input should be greater than or equal to 1",
        "monitord.yaml:20: rmm.low_priority: P2 is paged (alerting.page_priorities): RMM agent "
        "problems and disputed failures must never page",
    ]


def test_the_minimal_nsight_section_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONITORD_TEST_NSIGHT_KEY", "0123456789abcdef")
    text = """\
rmm:
  sources:
    - {name: nsight, kind: nsight, server: wwweurope1.systemmonitor.eu.com,
       api_key: env:MONITORD_TEST_NSIGHT_KEY}
"""
    rmm = load_config(write(tmp_path, text)).config.rmm
    (source,) = rmm.sources
    cls, settings = source_settings(source)
    assert (cls.kind, rmm.poll_interval_of(source, cls.min_poll_interval)) == ("nsight", 120.0)
    assert settings.api_url() == "https://wwweurope1.systemmonitor.eu.com/api/"  # type: ignore[attr-defined]
    assert rmm.unmapped_clients == "skip"  # unmapped clients are reported, never guessed
