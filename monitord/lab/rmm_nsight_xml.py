"""N-sight DEA response documents, written the way the real API writes them
(shared/docs/rmm.md §1.2, the fixtures in shared/fixtures/rmm/nsight/): an
ISO-8859-1 declaration, `<result created host status>`, two-space indentation,
strings in CDATA, numbers bare, empty values as `<x/>`.

A document is a tree of `Node`s: `(tag, text)` for a value, `(tag, [children])`
for a container. Whether a value is CDATA depends on its tag only (`CDATA_TAGS`,
read off the fixtures), so a fixture parsed with `parse_file` and written again
with `document` comes out byte for byte as it was; the emulator relies on that to
filter `list_failing_checks` (`filter_failing`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Union
from xml.etree.ElementTree import Element

from defusedxml import ElementTree

Node = tuple[str, Union[str, "list[Node]"]]

# Tags whose values the DEA wraps in CDATA (every string field of the fixtures).
CDATA_TAGS = frozenset(
    {
        *("agent", "agent_version", "check_description", "dashboard_username", "description"),
        *("device_serial", "domain", "external_ip", "extra", "formatted_output", "guid", "ip"),
        *("last_boot_time", "mac1", "mac2", "mac3", "manufacturer", "model", "name", "os"),
        *("os_details", "os_product_key", "os_serial_number", "output", "primary_router"),
        *("secondary_router", "status", "timezone", "user", "username", "wins_name"),
    }
)
DECLARATION = b'<?xml version="1.0" encoding="ISO-8859-1"?>\n'


def document(
    children: Sequence[Node], *, created: str, host: str, status: str | None = "OK"
) -> bytes:
    """The whole response. `status=None` leaves the attribute out (as a real 2015
    capture did). Characters ISO-8859-1 lacks become "?" (a CDATA section cannot
    carry a character reference)."""
    attrs = f'created="{created}" host="{_attr(host)}"'
    if status is not None:
        attrs += f' status="{status}"'
    lines = [f"<result {attrs}>"]
    for child in children:
        _write(child, 1, lines)
    lines.append("</result>\n")
    return DECLARATION + "\n".join(lines).encode("iso-8859-1", errors="replace")


def items(rows: Iterable[Node]) -> list[Node]:
    """The `<items>` wrapper of a list service (`<items/>` when empty)."""
    return [("items", list(rows))]


def error(code: int, message: str) -> list[Node]:
    return [("error", [("errorcode", str(code)), ("message", message)])]


def _write(node: Node, depth: int, out: list[str]) -> None:
    tag, value = node
    pad = "  " * depth
    if isinstance(value, list):
        if not value:
            out.append(f"{pad}<{tag}/>")
            return
        out.append(f"{pad}<{tag}>")
        for child in value:
            _write(child, depth + 1, out)
        out.append(f"{pad}</{tag}>")
    elif value == "":
        out.append(f"{pad}<{tag}/>")
    elif tag in CDATA_TAGS:
        out.append(f"{pad}<{tag}><![CDATA[{value.replace(']]>', ']]]]><![CDATA[>')}]]></{tag}>")
    else:
        out.append(f"{pad}<{tag}>{_text(value)}</{tag}>")


def _text(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _attr(value: str) -> str:
    return _text(value).replace('"', "&quot;")


# fixtures ---------------------------------------------------------------------


def parse_file(path: Path) -> tuple[dict[str, str], list[Node]]:
    """A fixture's root attributes and its children as nodes."""
    root = ElementTree.fromstring(path.read_bytes())
    return dict(root.attrib), [_node(child) for child in root]


def _node(element: Element) -> Node:
    children = list(element)
    if children:
        return (element.tag, [_node(c) for c in children])
    return (element.tag, element.text or "")


def value(node: Node, tag: str) -> str:
    """The text of `node`'s child `tag` ("" when absent or a container)."""
    children = node[1]
    if isinstance(children, list):
        for child_tag, child in children:
            if child_tag == tag and isinstance(child, str):
                return child
    return ""


def filter_failing(
    clients: Sequence[Node], *, client_id: str | None = None, check_type: str | None = None
) -> list[Node]:
    """`list_failing_checks` rows narrowed as the API narrows them: to one client,
    and to `tasks` (Automated Tasks only, type 1023) or `checks` (all but tasks,
    availability blocks kept). Devices, groups, sites and clients left with
    nothing to report are dropped, as the API lists only active errors."""
    out: list[Node] = []
    for client in clients:
        if client_id is not None and value(client, "clientid") != client_id:
            continue
        kept = _narrow(client, check_type, depth=0)
        if kept is not None:
            out.append(kept)
    return out


_LEVELS = ("site", "group", "device")  # client > site > workstations|servers > device
_AVAILABILITY = ("offline", "overdue", "unreachable")


def _narrow(node: Node, check_type: str | None, depth: int) -> Node | None:
    tag, children = node
    assert isinstance(children, list)
    kept: list[Node] = []
    reports = False
    for child in children:
        child_tag, child_value = child
        if depth < len(_LEVELS) and isinstance(child_value, list) and _is_level(child_tag, depth):
            sub = _narrow(child, check_type, depth + 1)
            if sub is not None:
                kept.append(sub)
                reports = True
        elif child_tag in _AVAILABILITY:
            if check_type != "tasks":
                kept.append(child)
                reports = True
        elif child_tag == "failed_checks" and isinstance(child_value, list):
            checks = [c for c in child_value if _wanted(c, check_type)]
            if checks:
                kept.append((child_tag, checks))
                reports = True
        else:
            kept.append(child)
    return (tag, kept) if reports else None


def _is_level(tag: str, depth: int) -> bool:
    if depth == 0:
        return tag == "site"
    if depth == 1:
        return tag in ("workstations", "servers")
    return tag in ("workstation", "server")


def _wanted(check: Node, check_type: str | None) -> bool:
    task = value(check, "check_type") == "1023"
    if check_type == "tasks":
        return task
    if check_type == "checks":
        return not task
    return True


# requests ---------------------------------------------------------------------


class ApiFail(Exception):
    """The DEA's error envelope: `status="FAIL"` with `errorcode` and `message`."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


# service → (required parameters, optional parameters); ids must be numeric.
SERVICES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "list_clients": ((), ("devicetype",)),
    "list_sites": (("clientid",), ()),
    "list_servers": (("siteid",), ()),
    "list_workstations": (("siteid",), ()),
    "list_failing_checks": ((), ("clientid", "check_type")),
    "list_checks": (("deviceid",), ()),
    "list_devices_at_client": (("clientid", "devicetype"), ()),
    "list_device_monitoring_details": (("deviceid",), ()),
    "list_outages": (("deviceid",), ()),
}
_CHOICES = {
    "devicetype": ("server", "workstation", "mobile_device"),  # case-sensitive [P]
    "check_type": ("checks", "tasks", "random"),
}


def checked(service: str, params: dict[str, str]) -> dict[str, str]:
    """The parameters `service` takes, validated as the DEA does: errorcode 5 for a
    missing required one, 4 for an invalid value (a non-numeric id, an unknown
    choice or service). Unknown extra parameters are ignored."""
    if not service:
        raise ApiFail(5, "Missing parameter: service")
    if service not in SERVICES:
        raise ApiFail(4, "Invalid value for parameter: service")
    required, optional = SERVICES[service]
    out: dict[str, str] = {}
    for name in (*required, *optional):
        raw = params.get(name)
        if raw is None or raw == "":
            if name in required:
                raise ApiFail(5, f"Missing parameter: {name}")
            continue
        choices = _CHOICES.get(name)
        valid = raw in choices if choices else (name.endswith("id") and raw.isdigit())
        if not valid:
            raise ApiFail(4, f"Invalid value for parameter: {name}")
        out[name] = raw
    return out
