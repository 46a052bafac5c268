"""Config of the SNMP trap receiver (`traps:`)."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    field_validator,
    model_validator,
)

from monitord.config.base import (
    Frozen,
)
from monitord.config.types import Secret

_OID = re.compile(r"^\.?[0-2](\.\d+)+$")
_HEX = re.compile(r"^(?:[0-9a-f]{2})+$")
_CATEGORY = re.compile(r"^[a-z0-9][a-z0-9_.\-]*$")


def _oid(value: str) -> str:
    """A numeric OID (`1.3.6.1.4.1.9.9.41.2.0.1`), without a leading dot."""
    if not _OID.match(value):
        raise ValueError(f"expected a numeric OID like '1.3.6.1.4.1.9.0.1', got {value!r}")
    return value.lstrip(".")


def _engine_id(value: str) -> str:
    """An SNMP engine ID as hex (`0x80001f88…`, colons allowed): 5 to 32 octets, lowercase."""
    text = value.strip().lower().removeprefix("0x").replace(":", "")
    if not _HEX.match(text) or not 5 <= len(text) // 2 <= 32:
        raise ValueError(f"expected an engine ID of 5 to 32 octets in hex, got {value!r}")
    return text


def _quoted(value: Any) -> Any:
    # YAML turns 8000… into an int and 0x80… into a hex int, losing leading zeros.
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValueError(f"quote the engine ID: YAML read {value} as a number")
    return value


Oid = Annotated[str, AfterValidator(_oid)]
EngineId = Annotated[str, BeforeValidator(_quoted), AfterValidator(_engine_id)]


class TrapUser(Frozen):
    """An SNMPv3 user that may send traps and informs (authNoPriv or authPriv).

    v3 TRAPs are authenticated with keys localised to the *sender's* engine
    ID, so the user is registered once per engine ID: its own `engine_ids`
    plus every device's entry in `traps.engine_ids`. INFORMs use ours.
    """

    name: str = Field(min_length=1, max_length=32)
    auth_protocol: Literal["md5", "sha", "sha224", "sha256", "sha384", "sha512"] = "sha"
    auth_key: Secret
    # aes192/aes256: key extension as net-snmp's AES192/AES256 (Blumenthal);
    # aes192c/aes256c: as Cisco and net-snmp's AES192C/AES256C (Reeder).
    priv_protocol: Literal[
        "none", "des", "3des", "aes", "aes192", "aes256", "aes192c", "aes256c"
    ] = "none"
    priv_key: Secret | None = None
    engine_ids: tuple[EngineId, ...] = ()

    @model_validator(mode="after")
    def _keys(self) -> TrapUser:
        # USM turns passwords into keys and needs at least 8 characters; never echo them.
        if len(self.auth_key.get_secret_value()) < 8:
            raise ValueError(f"auth_key of trap user {self.name!r} is shorter than 8 characters")
        if self.priv_protocol == "none" and self.priv_key is not None:
            raise ValueError(f"trap user {self.name!r} has a priv_key but priv_protocol none")
        if self.priv_protocol != "none":
            if self.priv_key is None:
                raise ValueError(f"trap user {self.name!r} needs a priv_key for authPriv")
            if len(self.priv_key.get_secret_value()) < 8:
                raise ValueError(
                    f"priv_key of trap user {self.name!r} is shorter than 8 characters"
                )
        return self


class TrapRuleDef(Frozen):
    """A vendor trap: its OID becomes a problem (or info) of `category`.

    `instance` names a varbind OID: the instance is the index after it (ifIndex
    `…2.2.1.1.5` → `5`), or its value when the varbind is that exact OID. The
    trap `clear_oid`, with the same instance, resolves the problem. A rule for
    a built-in OID (linkDown, upsTrapOnBattery …) replaces the built-in mapping.
    """

    oid: Oid
    category: str
    severity: Literal["info", "warning", "critical"] = "warning"
    message: str = ""
    instance: Oid | None = None
    clear_oid: Oid | None = None

    @field_validator("category")
    @classmethod
    def _category(cls, value: str) -> str:
        if not _CATEGORY.match(value):
            raise ValueError(
                f"category {value!r} must be lowercase letters, digits, '.', '_' or '-'"
            )
        return value

    @model_validator(mode="after")
    def _clear(self) -> TrapRuleDef:
        if self.clear_oid is not None and self.severity == "info":
            raise ValueError("an info rule opens nothing, so it takes no clear_oid")
        if self.clear_oid == self.oid:
            raise ValueError(f"clear_oid {self.clear_oid!r} is the rule's own oid")
        return self


class TrapsConfig(Frozen):
    """The SNMP trap/inform receiver: an event source (off unless enabled)."""

    enabled: bool = False
    # 162 needs CAP_NET_BIND_SERVICE; the unprivileged default suits a DNAT/forward.
    listen: str = "127.0.0.1:10162"
    communities: tuple[Secret, ...] = ()
    users: tuple[TrapUser, ...] = ()
    engine_ids: dict[str, EngineId] = Field(default_factory=dict)  # device id → engine ID
    engine_id: EngineId | None = None  # ours, for v3 informs (default: generated per start)
    rules: tuple[TrapRuleDef, ...] = ()

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        host = host.removeprefix("[").removesuffix("]")
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(f"expected ip:port (an IP, not a name), got {value!r}") from None
        if not sep or not port.isdigit() or not 0 <= int(port) < 65536:  # 0: any free port
            raise ValueError(f"expected ip:port, got {value!r}")
        return value
