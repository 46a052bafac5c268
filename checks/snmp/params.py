"""Parameters of an `snmp` check: credentials, what to poll, thresholds.

```yaml
- {type: snmp, profile: interfaces, community: env:SNMP_COMMUNITY}
- {type: snmp, profile: storage, thresholds: {disk: {warn: ">85", crit: ">95"}}}
- {type: snmp, profile: ups, version: v3, user: monitor, auth_protocol: SHA,
   auth_key: "...", priv_protocol: AES, priv_key: "..."}
- type: snmp                                   # generic: GET scalars, judge them
  get:
    - {oid: "UCD-SNMP-MIB::laLoad.1", warn: ">4", crit: ">8", label: load1}
    - {oid: "IF-MIB::ifInErrors.3", rate: true, warn: ">1"}     # per second
- type: snmp                                   # generic: walk columns, judge each row
  walk:
    columns: [{oid: "IF-MIB::ifOperStatus", crit: "!=1"}]
    where: {"IF-MIB::ifAdminStatus": "==1"}    # only rows where this holds
    row_name: "IF-MIB::ifDescr"                # name rows by this column
```

Profiles, their metrics with default warn / crit (`thresholds:` overrides
per metric; `null` switches one off), and what else they judge:

- interfaces: `errors` (in+out errors/s per interface) >1 / >10; CRITICAL
  when an admin-up interface is down or lowerLayerDown; `include`/`exclude`
  match ifDescr.
- storage: `disk` (% used) >80 / >90, `memory` (% used) >90 / >95; disk,
  flash, network-disk, RAM and virtual-memory rows of hrStorageTable
  (Linux buffers/cache rows are "other" and skipped); `include`/`exclude`
  match hrStorageDescr.
- cpu: `load` (% hrProcessorLoad, average over processors) >80 / >95.
- ups: `charge` (%) <50 / <20, `runtime` (minutes) <10 / <5, `load` (%
  output, highest line) >80 / >90, `temperature` (°C) none; on battery or
  bypass WARNING, output off or battery low/depleted CRITICAL, alarms WARNING.
- printer: `supply` (% left of each toner, drum, waste box) <20 / <5;
  `include`/`exclude` match the supply description.
- uptime: `uptime` (seconds) none; WARNING "rebooted N minutes ago" on the
  poll that sees sysUpTime go back (not for its wrap after 497 days).

Thresholds are described in `checks.snmp.conditions`; MIB names in
`checks.snmp.oids`. Credentials are `SecretStr` and never reach a message.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import BeforeValidator, Field, PrivateAttr, SecretStr, model_validator
from pysnmp.entity import config as usm

from checks.base import CheckParams
from checks.snmp.client import V1, V2C, V3, Credentials
from checks.snmp.conditions import Threshold
from checks.snmp.oids import OID, dotted, parse_oid

Profile = Literal["interfaces", "storage", "cpu", "ups", "printer", "uptime"]

# metric → (default warn, default crit), per profile.
PROFILE_METRICS: dict[str, dict[str, tuple[str | None, str | None]]] = {
    "interfaces": {"errors": (">1", ">10")},
    "storage": {"disk": (">80", ">90"), "memory": (">90", ">95")},
    "cpu": {"load": (">80", ">95")},
    "ups": {
        "charge": ("<50", "<20"),
        "runtime": ("<10", "<5"),
        "load": (">80", ">90"),
        "temperature": (None, None),
    },
    "printer": {"supply": ("<20", "<5")},
    "uptime": {"uptime": (None, None)},
}
_FILTERED_PROFILES = ("interfaces", "storage", "printer")

_AUTH = {
    "MD5": usm.USM_AUTH_HMAC96_MD5,
    "SHA": usm.USM_AUTH_HMAC96_SHA,
    "SHA224": usm.USM_AUTH_HMAC128_SHA224,
    "SHA256": usm.USM_AUTH_HMAC192_SHA256,
    "SHA384": usm.USM_AUTH_HMAC256_SHA384,
    "SHA512": usm.USM_AUTH_HMAC384_SHA512,
}
# Names as net-snmp spells them: AES192/AES256 are the Blumenthal key
# extension (net-snmp's), AES192C/AES256C the Reeder one (Cisco's).
_PRIV = {
    "DES": usm.USM_PRIV_CBC56_DES,
    "3DES": usm.USM_PRIV_CBC168_3DES,
    "AES": usm.USM_PRIV_CFB128_AES,
    "AES192": usm.USM_PRIV_CFB192_AES_BLUMENTHAL,
    "AES256": usm.USM_PRIV_CFB256_AES_BLUMENTHAL,
    "AES192C": usm.USM_PRIV_CFB192_AES,
    "AES256C": usm.USM_PRIV_CFB256_AES,
}
AuthProtocol = Literal["MD5", "SHA", "SHA224", "SHA256", "SHA384", "SHA512"]
PrivProtocol = Literal["DES", "3DES", "AES", "AES192", "AES256", "AES192C", "AES256C"]


def _to_oid(value: Any) -> Any:
    if isinstance(value, str):
        return parse_oid(value)
    return value


Oid = Annotated[tuple[int, ...], BeforeValidator(_to_oid)]
"""An OID given by name or number, resolved at validation (see `checks.snmp.oids`)."""


def _short(text: str) -> str:
    return text.strip().split("::", 1)[-1]


class Limits(CheckParams):
    """warn/crit for one metric; a field set to null switches its default off."""

    warn: Threshold | None = None
    crit: Threshold | None = None


class Item(CheckParams):
    """One OID to read and judge. A bare string is shorthand for `{oid: …}`.

    `rate: true` judges the increase per second of a Counter32/Counter64
    between two polls instead of the value (the first poll takes a
    baseline). `label` names it in messages and perfdata (default: the OID
    as written, without its MIB module).
    """

    oid: Oid
    label: str = ""
    warn: Threshold | None = None
    crit: Threshold | None = None
    rate: bool = False

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, str):
            data = {"oid": data}
        if isinstance(data, dict) and not data.get("label"):
            oid = data.get("oid")
            if isinstance(oid, str):
                data = {**data, "label": _short(oid)}
            elif isinstance(oid, tuple | list):
                data = {**data, "label": dotted(tuple(oid))}
        return data


def _where(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(value.items())
    return value


class Walk(CheckParams):
    """Table columns walked together with GETBULK; each row is judged.

    `where` maps a column to a condition; rows where any condition does not
    hold are skipped (e.g. `{"IF-MIB::ifAdminStatus": "==1"}`). `row_name`
    is a column whose value names the row in messages (default: the index).
    """

    columns: tuple[Item, ...] = Field(min_length=1, max_length=12)
    where: Annotated[tuple[tuple[Oid, Threshold], ...], BeforeValidator(_where)] = ()
    row_name: Oid | None = None


def _thresholds(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(value.items())
    return value


class SnmpParams(CheckParams):
    """Parameters of an `snmp` check; see the module docstring for examples.

    `retries` is how often an unanswered request is sent again; all tries
    share the check's `timeout` evenly. `max_repetitions` is the number of
    rows asked per GETBULK (tables with more rows take more round trips).
    """

    profile: Profile | None = None
    get: tuple[Item, ...] = Field(default=(), max_length=40)
    walk: Walk | None = None
    thresholds: Annotated[tuple[tuple[str, Limits], ...], BeforeValidator(_thresholds)] = ()
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    version: Literal["v1", "v2c", "v3"] = "v2c"
    port: int = Field(default=161, ge=1, le=65535)
    community: SecretStr | None = None  # v1/v2c; default "public"
    user: str | None = Field(default=None, min_length=1, max_length=32)
    auth_protocol: AuthProtocol | None = None
    auth_key: SecretStr | None = None
    priv_protocol: PrivProtocol | None = None
    priv_key: SecretStr | None = None
    context: str = Field(default="", max_length=32)
    retries: int = Field(default=1, ge=0, le=5)
    max_repetitions: int = Field(default=25, ge=1, le=100)

    _creds: Credentials = PrivateAttr()
    _key: int = PrivateAttr()
    _limits: dict[str, Limits] = PrivateAttr()
    _get_oids: tuple[OID, ...] = PrivateAttr()

    @model_validator(mode="before")
    @classmethod
    def _version_spelling(cls, data: Any) -> Any:
        # `version: 2c`, `2` or `3` in YAML are common; the canonical form is v2c.
        if isinstance(data, dict) and "version" in data:
            raw = str(data["version"]).lower().removeprefix("v")
            spelled = {"1": "v1", "2": "v2c", "2c": "v2c", "3": "v3"}.get(raw)
            if spelled is not None:
                data = {**data, "version": spelled}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        self._check_what()
        self._check_security()
        return self

    def _check_what(self) -> None:
        generic = bool(self.get) or self.walk is not None
        if self.profile is None and not generic:
            raise ValueError(f"give a profile ({', '.join(PROFILE_METRICS)}) or get/walk OIDs")
        if self.profile is not None and generic:
            raise ValueError(f"profile {self.profile!r} takes no get/walk (use a second check)")
        if self.thresholds and self.profile is None:
            raise ValueError("thresholds apply to profiles; put warn/crit on the get/walk items")
        if self.profile is not None:
            known = PROFILE_METRICS[self.profile]
            unknown = [name for name, _ in self.thresholds if name not in known]
            if unknown:
                raise ValueError(
                    f"profile {self.profile!r} has no metric {unknown[0]!r} "
                    f"(it has: {', '.join(known)})"
                )
        if (self.include or self.exclude) and self.profile not in _FILTERED_PROFILES:
            raise ValueError(f"include/exclude apply to profiles {', '.join(_FILTERED_PROFILES)}")

    def _check_security(self) -> None:
        v3_only = {
            "user": self.user,
            "auth_protocol": self.auth_protocol,
            "auth_key": self.auth_key,
            "priv_protocol": self.priv_protocol,
            "priv_key": self.priv_key,
            "context": self.context or None,
        }
        if self.version != "v3":
            given = [k for k, v in v3_only.items() if v is not None]
            if given:
                raise ValueError(f"{given[0]} applies to version v3 only")
            return
        if self.community is not None:
            raise ValueError("community applies to versions v1/v2c only (v3 uses user)")
        if self.user is None:
            raise ValueError("version v3 needs a user")
        if (self.auth_protocol is None) != (self.auth_key is None):
            raise ValueError("auth_protocol and auth_key must be given together")
        if (self.priv_protocol is None) != (self.priv_key is None):
            raise ValueError("priv_protocol and priv_key must be given together")
        if self.priv_protocol is not None and self.auth_protocol is None:
            raise ValueError("privacy (priv_protocol) needs authentication (auth_protocol)")
        for name, key in (("auth_key", self.auth_key), ("priv_key", self.priv_key)):
            if key is not None and len(key.get_secret_value()) < 8:
                raise ValueError(f"{name} must be at least 8 characters (RFC 3414)")

    def model_post_init(self, context: Any, /) -> None:
        # Derived once here, so that no poll repeats the work.
        self._creds = self._credentials()
        self._key = hash(self.model_dump_json())  # secrets dump masked: same for any key
        self._limits = self._merged_limits()
        self._get_oids = tuple(item.oid for item in self.get)

    def _credentials(self) -> Credentials:
        if self.version != "v3":
            community = "public" if self.community is None else self.community.get_secret_value()
            return Credentials(V1 if self.version == "v1" else V2C, community=community)
        return Credentials(
            V3,
            user=self.user or "",
            auth_protocol=None if self.auth_protocol is None else _AUTH[self.auth_protocol],
            auth_key=None if self.auth_key is None else self.auth_key.get_secret_value(),
            priv_protocol=None if self.priv_protocol is None else _PRIV[self.priv_protocol],
            priv_key=None if self.priv_key is None else self.priv_key.get_secret_value(),
            context=self.context,
        )

    def _merged_limits(self) -> dict[str, Limits]:
        if self.profile is None:
            return {}
        merged = {
            name: Limits.model_validate({"warn": warn, "crit": crit})
            for name, (warn, crit) in PROFILE_METRICS[self.profile].items()
        }
        for name, given in self.thresholds:
            if name not in merged:  # reported by the validator (which runs after this)
                continue
            merged[name] = merged[name].model_copy(
                update={f: getattr(given, f) for f in given.model_fields_set}
            )
        return merged

    @property
    def creds(self) -> Credentials:
        """The credentials as the client needs them (plain secrets: never log)."""
        return self._creds

    @property
    def state_key(self) -> int:
        """Identifies this check's config in per-device state (counters, uptime)."""
        return self._key

    @property
    def get_oids(self) -> tuple[OID, ...]:
        """The `get` items' OIDs, in order."""
        return self._get_oids

    def limits(self, metric: str) -> Limits:
        """The effective warn/crit of a profile metric (defaults merged with overrides)."""
        return self._limits[metric]

    def default_name(self, kind: str) -> str:
        if self.profile is not None:
            return f"{kind}:{self.profile}"
        first = self.get[0] if self.get else self.walk.columns[0]  # type: ignore[union-attr]
        return f"{kind}:{first.label}"
