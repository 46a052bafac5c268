"""`alerting.ticket_systems`: each entry validated by its kind's own model, errors located."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitord.config import ConfigErrors, load_config
from monitord.config.validate import ticket_system_settings

BASE = """\
customers:
  - name: acme
devices:
  - {name: srv, customer: acme, address: 127.0.0.1, role: server}
"""


def write(tmp_path: Path, alerting: str) -> Path:
    path = tmp_path / "monitord.yaml"
    path.write_text(BASE + alerting)
    return path


def errors_of(path: Path) -> list[str]:
    with pytest.raises(ConfigErrors) as info:
        load_config(path)
    return [str(e).replace(str(path.parent) + "/", "") for e in info.value.errors]


def test_default_is_the_builtin_store_only(tmp_path: Path) -> None:
    loaded = load_config(write(tmp_path, ""))
    assert loaded.config.alerting.tickets is True
    assert loaded.config.alerting.ticket_systems == ()


def test_secrets_resolve_from_env_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONITORD_TEST_ZAMMAD_TOKEN", "tok-from-env")
    (tmp_path / "glpi-user").write_text("user-from-file\n")
    text = f"""\
alerting:
  ticket_systems:
    - name: helpdesk
      kind: zammad
      url: https://zammad.example
      token: env:MONITORD_TEST_ZAMMAD_TOKEN
      group: NOC
      customer: alerts@acme.example
    - name: glpi
      kind: glpi
      url: https://glpi.example
      app_token: app-inline
      user_token: file:{tmp_path}/glpi-user
"""
    systems = load_config(write(tmp_path, text)).config.alerting.ticket_systems
    assert [(s.name, s.kind) for s in systems] == [("helpdesk", "zammad"), ("glpi", "glpi")]
    assert systems[0].params["token"] == "env:MONITORD_TEST_ZAMMAD_TOKEN"  # kept as a reference
    cls, settings = ticket_system_settings(systems[0])
    assert cls.kind == "zammad"
    assert settings.token.get_secret_value() == "tok-from-env"  # type: ignore[attr-defined]
    _, glpi = ticket_system_settings(systems[1])
    assert glpi.user_token.get_secret_value() == "user-from-file"  # type: ignore[attr-defined]


def test_every_error_is_located_with_an_exact_message(tmp_path: Path) -> None:
    text = f"""\
alerting:
  ticket_systems:
    - name: helpdesk
      kind: zammad
      url: http://127.0.0.1:1
      token: env:MONITORD_TEST_UNSET_TOKEN
      group: NOC
      customer: x
    - name: helpdesk
      kind: jira
    - name: glpi
      kind: glpi
      url: http://127.0.0.1:1
      app_token: a
      bogus: 1
    - {{name: builtin, kind: webhook, url: "http://x", secret: s, timeout: fast}}
    - {{name: hook, kind: builtin}}
    - {{name: cmdb, kind: webhook, url: "http://x", secret: "file:{tmp_path}/none"}}
    - {{kind: zammad}}
"""
    assert errors_of(write(tmp_path, text)) == [
        "monitord.yaml:23: alerting.ticket_systems[6].name: missing required key",
    ]
    # Model errors first (a missing name), then, once the model parses, every rule.
    text = text.replace("    - {kind: zammad}\n", "")
    assert errors_of(write(tmp_path, text)) == [
        "monitord.yaml:10: alerting.ticket_systems[0].token:"
        " environment variable 'MONITORD_TEST_UNSET_TOKEN' is not set",
        "monitord.yaml:13: alerting.ticket_systems[1].name:"
        " duplicate ticket system 'helpdesk' (also ticket_systems[0])",
        "monitord.yaml:14: alerting.ticket_systems[1].kind:"
        " unknown ticket system kind 'jira' (known: glpi, redmine, rt, webhook, zammad)",
        "monitord.yaml:15: alerting.ticket_systems[2].user_token: missing required key",
        "monitord.yaml:19: alerting.ticket_systems[2].bogus: unknown key",
        "monitord.yaml:20: alerting.ticket_systems[3].name: 'builtin' is the built-in ticket"
        " store's name",
        "monitord.yaml:20: alerting.ticket_systems[3].timeout:"
        " input should be a valid number, unable to parse string as a number",
        "monitord.yaml:21: alerting.ticket_systems[4].kind:"
        " unknown ticket system kind 'builtin' (known: glpi, redmine, rt, webhook, zammad)",
        # (errors_of strips the directory, here from the secret file's path too)
        "monitord.yaml:22: alerting.ticket_systems[5].secret:"
        " cannot read secret file 'none': No such file or directory",
    ]


def test_rt_and_redmine_entries_are_checked_by_their_models(tmp_path: Path) -> None:
    text = """\
alerting:
  ticket_systems:
    - {name: rt, kind: rt, url: "http://rt", token: t, custom_field: ExternalKey}
    - {name: redmine, kind: redmine, url: "http://rm", api_key: k, project: p,
       custom_field_id: one, text_formatting: html}
"""
    assert errors_of(write(tmp_path, text)) == [
        "monitord.yaml:7: alerting.ticket_systems[0].queue: missing required key",
        "monitord.yaml:9: alerting.ticket_systems[1].custom_field_id:"
        " input should be a valid integer, unable to parse string as an integer",
        "monitord.yaml:9: alerting.ticket_systems[1].text_formatting:"
        " input should be 'textile' or 'common_mark'",
    ]
