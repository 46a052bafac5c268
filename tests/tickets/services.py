"""The real Request Tracker 5 and Redmine servers on loopback, for the ticket tests.

`service_env(name)` runs `<shared>/services/<name>/setup.sh` (idempotent: about
0.1 s when the server is up, about 40 s to install and start it the first time)
and returns the `KEY=VALUE` lines it prints (`<shared>`: `tests.conftest.shared_dir()`).
The setups run one after the other (never in
parallel: both use apt) and once per test session; the result, or why there is
none, is kept, and `need()` skips the caller with that reason outside CI and fails
it in CI.

`RealSystem` reads what a test needs to assert straight from the server's API
(not through the adapter under test): tickets by key prefix, status, notes.
"""

from __future__ import annotations

import functools
import os
import re
import shlex
import subprocess
from typing import Any

import aiohttp

from tests.conftest import need, shared_dir

SETUP_TIMEOUT = 1500.0


@functools.cache
def _setup(name: str) -> tuple[dict[str, str], str]:
    """(env, "") when the server is up, else ({}, why not). Runs setup.sh once."""
    script = shared_dir() / "services" / name / "setup.sh"
    if not script.is_file():
        return {}, f"{script} not found (set MONITORD_SHARED to the shared directory)"
    if os.geteuid() != 0:
        return {}, f"{script} needs root (it installs packages and starts the server)"
    try:
        proc = subprocess.run(
            ["bash", str(script)], capture_output=True, text=True, timeout=SETUP_TIMEOUT
        )
    except subprocess.TimeoutExpired:
        return {}, f"{script} did not finish within {SETUP_TIMEOUT:.0f} s"
    if proc.returncode != 0:
        tail = " | ".join(proc.stderr.strip().splitlines()[-5:])
        return {}, f"{script} failed with exit code {proc.returncode}: {tail}"
    env: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        if re.match(r"^[A-Z_][A-Z0-9_]*=", line):
            key, _, value = line.partition("=")
            words = shlex.split(value)
            env[key] = words[0] if words else ""
    return env, ""


def service_env(name: str) -> dict[str, str]:
    """The server's `KEY=VALUE`s; skips (fails in CI) when it cannot be had."""
    env, why = _setup(name)
    need(not why, why)
    return env


class RealSystem:
    """Direct reads of a real RT or Redmine, for assertions."""

    def __init__(self, kind: str, env: dict[str, str]) -> None:
        self.kind, self.env = kind, env

    def _headers(self) -> dict[str, str]:
        if self.kind == "rt":
            return {"Authorization": f"token {self.env['RT_TOKEN']}"}
        return {"X-Redmine-API-Key": self.env["REDMINE_API_KEY"]}

    async def get(self, path: str, params: Any = None) -> Any:
        base = self.env["RT_REST_URL"] if self.kind == "rt" else self.env["REDMINE_URL"]
        async with (
            aiohttp.ClientSession() as http,
            http.get(base + path, headers=self._headers(), params=params) as resp,
        ):
            assert resp.status == 200, f"{path}: HTTP {resp.status}"
            return await resp.json(content_type=None)

    async def tickets(self, prefix: str) -> dict[str, str]:
        """Ticket id → dedup key, of every ticket whose key starts with `prefix`."""
        out: dict[str, str] = {}
        if self.kind == "rt":
            cf = self.env["RT_CF"]
            query = f"CF.{{{cf}}} LIKE '{prefix}'"
            body = await self.get(
                "/tickets", {"query": query, "fields": "CustomFields", "per_page": "100"}
            )
            for item in body["items"]:
                for field in item["CustomFields"]:
                    for value in field["values"] if field["name"] == cf else []:
                        if value.startswith(prefix):
                            out[str(item["id"])] = value
            return out
        cf = f"cf_{self.env['REDMINE_CF_ID']}"
        params = [
            ("set_filter", "1"),
            ("f[]", "status_id"),
            ("op[status_id]", "*"),
            ("f[]", cf),
            (f"op[{cf}]", "~"),
            (f"v[{cf}][]", prefix),
            ("limit", "100"),
        ]
        body = await self.get("/issues.json", params)
        for issue in body["issues"]:
            for field in issue["custom_fields"]:
                value = str(field.get("value") or "")
                if field["id"] == int(self.env["REDMINE_CF_ID"]) and value.startswith(prefix):
                    out[str(issue["id"])] = value
        return out

    async def status(self, ident: str) -> str:
        """RT's status name; Redmine's status id as a string."""
        if self.kind == "rt":
            return str((await self.get(f"/ticket/{ident}"))["Status"])
        return str((await self.get(f"/issues/{ident}.json"))["issue"]["status"]["id"])

    async def priority(self, ident: str) -> str:
        """RT's numeric priority; Redmine's priority name."""
        if self.kind == "rt":
            return str((await self.get(f"/ticket/{ident}"))["Priority"])
        return str((await self.get(f"/issues/{ident}.json"))["issue"]["priority"]["name"])

    async def notes(self, ident: str) -> list[str]:
        """The ticket's notes after the first text: RT comment subjects, Redmine notes."""
        if self.kind == "rt":
            body = await self.get(
                f"/ticket/{ident}/history", {"fields": "Type,Data", "per_page": "100"}
            )
            return [
                str(i["Data"]).strip()
                for i in body["items"]
                if i["Type"] in ("Comment", "Correspond")
            ]
        issue = (await self.get(f"/issues/{ident}.json", {"include": "journals"}))["issue"]
        return [str(j["notes"]) for j in issue["journals"] if j.get("notes")]
