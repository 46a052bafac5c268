"""Config loading: valid configs resolve; every error is located exactly."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitord.cli import main
from monitord.config import ConfigErrors, load_config

BASE = """\
customers:
  - name: acme
    sites:
      - name: hq
        gateway: rtr-1
    contacts:
      - {name: Jana, phones: ["+420 777 123 456"], email: jana@acme.example}
templates:
  - name: reach
    match: {roles: [server, workstation]}
    checks:
      - {type: tcp, port: 22}
  - name: web
    match: {roles: [server]}
    checks:
      - {type: http, name: web, port: 8080}
devices:
  - {name: rtr-1, customer: acme, site: hq, address: 127.10.0.1, role: network}
  - {name: "ws-{n:02}", count: 3, customer: acme, site: hq, address: 127.10.0.10, role: workstation}
  - include: fleet.csv
"""

CSV = (
    "name,customer,site,address,role,tags,criticality\n"
    "srv-1,acme,hq,127.10.0.5,server,vip;always-on,high\n"
)


def write(tmp_path: Path, text: str = BASE, csv: str = CSV) -> Path:
    (tmp_path / "fleet.csv").write_text(csv)
    path = tmp_path / "monitord.yaml"
    path.write_text(text)
    return path


def errors_of(path: Path) -> list[str]:
    with pytest.raises(ConfigErrors) as info:
        load_config(path)
    return [str(e).replace(str(path.parent) + "/", "") for e in info.value.errors]


def test_valid_config_resolves_devices_checks_and_parents(tmp_path: Path) -> None:
    loaded = load_config(write(tmp_path))
    inv = loaded.inventory
    assert sorted(inv.devices) == [
        "acme/rtr-1",
        "acme/srv-1",
        "acme/ws-01",
        "acme/ws-02",
        "acme/ws-03",
    ]
    assert inv.devices["acme/ws-03"].address == "127.10.0.12"
    # devices at a site hang off its gateway; the gateway itself has no parent
    assert inv.devices["acme/ws-01"].parent_id == "acme/rtr-1"
    assert inv.devices["acme/rtr-1"].parent_id is None
    assert inv.devices["acme/srv-1"].tags == ("vip", "always-on")
    checks = {c.id: c for c in inv.checks}
    assert set(checks) == {
        "acme/ws-01/tcp:22",
        "acme/ws-02/tcp:22",
        "acme/ws-03/tcp:22",
        "acme/srv-1/tcp:22",
        "acme/srv-1/web",
    }
    assert checks["acme/srv-1/web"].interval == 60.0
    assert loaded.config.customers[0].contacts[0].phones == ("+420777123456",)


def test_errors_name_file_line_and_key_path(tmp_path: Path) -> None:
    text = BASE.replace("gateway: rtr-1", "gateway: rtr-9").replace(
        "port: 22}", "port: 22, bogus: 1}"
    )
    csv = CSV + "srv-2,acme,nowhere,127.10.0.6,server,,\n"
    assert errors_of(write(tmp_path, text, csv)) == [
        "fleet.csv:3: devices[3].site: unknown site 'nowhere' of 'acme'",
        "monitord.yaml:5: customers[0].sites[0].gateway: unknown device 'rtr-9'",
        "monitord.yaml:12: templates[0].checks[0].bogus: unknown key",
    ]


def test_unknown_top_level_key_and_bad_values(tmp_path: Path) -> None:
    text = BASE + "daemon:\n  listen: nowhere\n  frobnicate: 1\nextra: true\n"
    assert errors_of(write(tmp_path, text)) == [
        "monitord.yaml:22: daemon.listen: expected host:port, got 'nowhere'",
        "monitord.yaml:23: daemon.frobnicate: unknown key",
        "monitord.yaml:24: extra: unknown key",
    ]


def test_check_type_errors(tmp_path: Path) -> None:
    text = BASE.replace("{type: tcp, port: 22}", "{type: tcpx, port: 22}").replace(
        "port: 8080}", "port: 99999}"
    )
    errs = errors_of(write(tmp_path, text))
    assert errs[0].startswith(
        "monitord.yaml:12: templates[0].checks[0].type: unknown check type 'tcpx' (known: "
    )
    assert (
        errs[1] == "monitord.yaml:16: templates[1].checks[0].port: "
        "input should be less than or equal to 65535"
    )


def test_dependency_cycle_names_the_cycle(tmp_path: Path) -> None:
    text = BASE.replace("role: network}", "role: network, parent: srv-1}")
    csv = "name,customer,site,address,role,parent\nsrv-1,acme,hq,127.10.0.5,server,ws-01\n"
    errs = errors_of(write(tmp_path, text, csv))
    assert len(errs) == 1
    assert "dependency cycle: " in errs[0]
    cycle = errs[0].split("dependency cycle: ")[1].split(" -> ")
    assert cycle[0] == cycle[-1] and set(cycle) == {"acme/rtr-1", "acme/srv-1", "acme/ws-01"}


def test_duplicate_device_and_series_pattern(tmp_path: Path) -> None:
    csv = CSV + "srv-1,acme,hq,127.10.0.6,server,,\n"
    text = BASE.replace('name: "ws-{n:02}", count: 3', 'name: "ws", count: 3')
    errs = errors_of(write(tmp_path, text, csv))
    assert errs == [
        "monitord.yaml:19: devices[1]: a series (count) needs '{n}' in its name, got 'ws'"
    ]
    errs = errors_of(write(tmp_path, BASE, csv))
    assert errs == ["fleet.csv:3: devices[3].name: duplicate device 'srv-1' in 'acme'"]


def test_yaml_syntax_error_and_duplicate_key(tmp_path: Path) -> None:
    assert errors_of(write(tmp_path, "customers: [\n"))[0].startswith(
        "monitord.yaml:2: invalid YAML"
    )
    assert errors_of(write(tmp_path, "daemon: {}\ndaemon: {}\n")) == [
        "monitord.yaml:2: daemon: duplicate key"
    ]


def test_missing_include(tmp_path: Path) -> None:
    path = tmp_path / "monitord.yaml"
    path.write_text("devices:\n  - include: nope/*.csv\n")
    assert errors_of(path) == ["monitord.yaml:2: include 'nope/*.csv': no such file"]


def test_yaml_include_glob_keeps_locations(tmp_path: Path) -> None:
    (tmp_path / "customers").mkdir()
    (tmp_path / "customers" / "a.yaml").write_text("name: alpha\n")
    (tmp_path / "customers" / "b.yaml").write_text("- name: beta\n- name: gamma\n  bogus: 1\n")
    path = tmp_path / "monitord.yaml"
    path.write_text("customers: {include: customers/*.yaml}\n")
    assert errors_of(path) == ["customers/b.yaml:3: customers[2].bogus: unknown key"]


def test_secret_references_are_resolved_and_never_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "db-url"
    secret.write_text("sqlite:////tmp/s3cr3t.db\n")
    path = tmp_path / "monitord.yaml"
    path.write_text(f"daemon:\n  database: file:{secret}\n")
    loaded = load_config(path)
    assert loaded.config.daemon.database is not None
    assert loaded.config.daemon.database.get_secret_value() == "sqlite:////tmp/s3cr3t.db"
    assert "s3cr3t" not in repr(loaded.config)
    path.write_text("daemon:\n  database: env:MONITORD_TEST_MISSING\n")
    monkeypatch.delenv("MONITORD_TEST_MISSING", raising=False)
    assert errors_of(path) == [
        "monitord.yaml:2: daemon.database: environment variable 'MONITORD_TEST_MISSING' is not set"
    ]


def test_phone_numbers_must_be_e164(tmp_path: Path) -> None:
    text = BASE.replace('"+420 777 123 456"', '"777123456"')
    assert errors_of(write(tmp_path, text)) == [
        "monitord.yaml:7: customers[0].contacts[0].phones: "
        "phone number '777123456' is not in E.164 form (+420…)"
    ]


def test_check_config_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write(tmp_path)
    assert main(["check-config", str(good)]) == 0
    assert "1 customers, 5 devices, 5 checks" in capsys.readouterr().out
    bad = write(tmp_path, BASE.replace("gateway: rtr-1", "gateway: rtr-9"))
    assert main(["check-config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "monitord.yaml:5: customers[0].sites[0].gateway: unknown device 'rtr-9'" in err
    assert "1 error(s)" in err


def test_example_config_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SNMP_COMMUNITY", "example-community")  # referenced, as in production
    example = Path(__file__).resolve().parents[2] / "deploy" / "monitord.example.yaml"
    loaded = load_config(example)
    assert loaded.inventory.checks


def test_check_secrets_may_be_references(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONITORD_TEST_HTTP_PW", "s3cret-pw")
    path = tmp_path / "monitord.yaml"
    path.write_text(
        "customers: [{name: acme}]\n"
        "devices:\n"
        "  - name: web\n"
        "    customer: acme\n"
        "    address: 127.10.0.9\n"
        "    checks:\n"
        "      - {type: http, username: mon, password: env:MONITORD_TEST_HTTP_PW}\n"
        "      - {type: http, name: b, username: mon, password: env:MONITORD_TEST_NOPE}\n"
    )
    assert errors_of(path) == [
        "monitord.yaml:8: devices[0].checks[1].password: "
        "environment variable 'MONITORD_TEST_NOPE' is not set"
    ]
    path.write_text(path.read_text().rsplit("\n", 2)[0] + "\n")
    spec = load_config(path).inventory.checks[0]
    assert spec.params.password.get_secret_value() == "s3cret-pw"
