"""N-sight DEA documents → records (shared/docs/rmm.md §1.2-1.6).

Parsed from BYTES with defusedxml, so the declared ISO-8859-1 is honoured and no
entity is expanded. CDATA is plain text to ElementTree. Lists are read by iterating
children, so one row and many rows are the same case. Empty elements and the
string "none" mean no value; a missing `status` attribute means OK.

Times. The DEA writes local dates and times. `*_utc`/`utc_*` fields are UTC and
preferred where they exist (a device's last 24x7 upload). A failing check's or an
availability block's `startdate`/`starttime` are in the device's local time: the
fixtures' offline blocks equal the device's `local_*_247`, and `list_checks`
pairs `date`/`time` with `utc_run` one `utc_offset` apart. So they are converted
with the device's `utc_offset` (from the last inventory), else with the offset of
the envelope's `created` (the account's zone), the best guess left.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException, ElementTree

from monitord.sources.rmm.base import (
    Category,
    DeviceKind,
    FailureKind,
    RmmClient,
    RmmDevice,
    RmmError,
    RmmFailure,
    RmmSite,
)
from monitord.sources.rmm.nsight_checks import classify, is_task

NO_VALUE = ("", "none", "Not Available", "0000-00-00", "0000-00-00 00:00:00")
AVAILABILITY = {
    "offline": FailureKind.OFFLINE,
    "overdue": FailureKind.OVERDUE,
    "unreachable": FailureKind.UNREACHABLE,
}
MAX_FAILS = 2**31 - 1  # the store's integer column
PASSING = frozenset({"testok", "testok_inactive"})  # never listed as failing; ignored if so
# Device fields worth keeping as they are (`RmmDevice.extra`).
EXTRA = (
    "guid", "domain", "manufacturer", "model", "device_serial", "mac1", "os_details",
    "agent_version", "chassis_type", "utc_offset", "online", "missed_247", "last_boot_time",
)  # fmt: skip


def parse(body: bytes, label: str) -> tuple[Element, int | None]:
    """The `<result>` root of an OK answer and the UTC offset (seconds) of its
    `created`. Raises RmmError: "not-xml", "malformed", "api-error" or "auth"."""
    head = body[:512].removeprefix(b"\xef\xbb\xbf").lstrip().lower()  # a BOM is no harm
    if not head.startswith(b"<"):
        raise RmmError(f"{label}: the answer is not XML ({_peek(body)})", reason="not-xml")
    try:
        root = ElementTree.fromstring(body)
    except DefusedXmlException as exc:
        raise RmmError(f"{label}: refused XML ({type(exc).__name__})", reason="malformed") from None
    except LookupError as exc:  # an encoding Python does not know: XML, but unreadable
        raise RmmError(f"{label}: broken XML ({exc})", reason="malformed") from None
    except ParseError as exc:
        if b"<html" in head or b"<!doctype html" in head:
            raise RmmError(f"{label}: an HTML page, not the API's XML", reason="not-xml") from None
        raise RmmError(f"{label}: broken XML ({exc})", reason="malformed") from None
    if root.tag.lower() == "html":
        raise RmmError(f"{label}: an HTML page, not the API's XML", reason="not-xml")
    if root.tag != "result":
        raise RmmError(
            f"{label}: a <{root.tag}> document, not the API's <result>", reason="malformed"
        )
    status = root.get("status", "OK")  # missing in some real answers: OK
    if status.upper() == "FAIL":
        raise _api_error(root, label)
    if status.upper() != "OK":
        raise RmmError(f"{label}: unknown result status {status!r}", reason="malformed")
    return root, _offset(root.get("created", ""))


def _api_error(root: Element, label: str) -> RmmError:
    code_text = text(root, "error/errorcode")
    message = text(root, "error/message") or "no message"
    code = int(code_text) if code_text.isdigit() else None
    if code == 3:
        return RmmError(
            f"{label}: the API key was refused (errorcode 3: {message}); check api_key "
            "and that server is the account's region",
            reason="auth",
            code=3,
        )
    return RmmError(
        f"{label}: API error {code_text or '?'}: {message}", reason="api-error", code=code
    )


def _peek(body: bytes) -> str:
    return repr(body[:40].decode("latin-1")) if body else "an empty body"


def text(element: Element, path: str) -> str:
    """The stripped text at `path`; "" for a missing or empty element or "none"."""
    value = (element.findtext(path) or "").strip()
    return "" if value in NO_VALUE else value


def either(element: Element, *paths: str) -> str:
    """The first of `paths` with a value: a field some answers spell differently."""
    return next((found for path in paths if (found := text(element, path))), "")


def rows(root: Element, tag: str) -> Iterator[Element]:
    items = root.find("items")
    if items is None:
        raise RmmError(f"no <items> in the answer listing {tag}s", reason="malformed")
    return items.iterfind(tag)


def required(element: Element, path: str, what: str) -> str:
    value = text(element, path)
    if not value:
        raise RmmError(f"a {what} without <{path}>", reason="malformed")
    return value


# records ----------------------------------------------------------------------


def clients(root: Element) -> list[tuple[RmmClient, int | None, int | None]]:
    """(client, server_count, workstation_count); a count is None when not given."""
    out = []
    for row in rows(root, "client"):
        client = RmmClient(required(row, "clientid", "client"), text(row, "name"))
        out.append((client, _int(text(row, "server_count")), _int(text(row, "workstation_count"))))
    return out


def sites(root: Element, client_id: str) -> list[RmmSite]:
    out = []
    for row in rows(root, "site"):
        ok = text(row, "connection_ok")
        routers = tuple(
            r for r in (text(row, "primary_router"), text(row, "secondary_router")) if r
        )
        out.append(
            RmmSite(
                required(row, "siteid", "site"),
                client_id,
                text(row, "name"),
                connection_ok=None if ok == "" else ok != "0",
                routers=routers,
            )
        )
    return out


def devices(root: Element, kind: DeviceKind, client_id: str, site_id: str) -> list[RmmDevice]:
    out = []
    for row in rows(root, kind):
        device_id = text(row, f"{kind}id") or required(row, "id", kind)
        offset = _int(text(row, "utc_offset"))
        extra = {key: value for key in EXTRA if (value := text(row, key))}
        if "agent_version" in extra:
            extra["agent_version"] = extra["agent_version"].replace("_", ".")
        out.append(
            RmmDevice(
                id=device_id,
                client_id=client_id,
                site_id=site_id,
                name=text(row, "name"),
                kind=kind,
                addresses=_addresses(text(row, "ip")),
                external_ip=text(row, "external_ip"),
                os=text(row, "os"),
                last_seen=_utc(text(row, "utc_time_247"))
                or _local(text(row, "local_date_247"), text(row, "local_time_247"), offset),
                logged_on_user=text(row, "user"),
                description=text(row, "description"),
                extra=extra,
            )
        )
    return out


def failures(
    root: Element,
    offsets: Mapping[str, int],
    default_offset: int | None,
    clients: Collection[str] | None = None,
) -> list[RmmFailure]:
    """Every availability block and failed check of a `list_failing_checks` answer
    (of `clients` only, by id, when given)."""
    out: list[RmmFailure] = []
    for client in rows(root, "client"):
        if clients is not None and text(client, "clientid") not in clients:
            continue
        for site in client.iterfind("site"):
            for group, kind in (("workstations", "workstation"), ("servers", "server")):
                for device in site.iterfind(f"{group}/{kind}"):
                    device_id = required(device, "id", kind)
                    offset = offsets.get(device_id, default_offset)
                    out.extend(_device_failures(device, device_id, offset))
    return out


def _device_failures(device: Element, device_id: str, offset: int | None) -> Iterator[RmmFailure]:
    for tag, kind in AVAILABILITY.items():
        block = device.find(tag)
        if block is not None:
            yield RmmFailure(
                key=f"{device_id}:{tag}",
                device_id=device_id,
                kind=kind,
                category=Category.AVAILABILITY,
                check_type=tag,
                description=text(block, "description") or tag.capitalize(),
                started_at=_local(text(block, "startdate"), text(block, "starttime"), offset),
                status=tag,
            )
    for check in device.iterfind("failed_checks/check"):
        status = text(check, "checkstatus")
        if status in PASSING:
            continue
        check_type = text(check, "check_type")
        description = text(check, "description")
        category = classify(description, check_type)
        yield RmmFailure(
            key=required(check, "checkid", "failed check"),
            device_id=device_id,
            # dsc_247 3 is an Automated Task's class (§1.5, both spellings are seen).
            kind=FailureKind.TASK
            if is_task(check_type)
            or category == Category.TASK
            or either(check, "dsc_247", "dsc247") == "3"
            else FailureKind.CHECK,
            category=category,
            check_type=check_type,
            description=description,
            output=text(check, "formatted_output"),
            # startdate/starttime are "half the time" missing: then it is unknown
            # (date/time is the last failure, not its start).
            started_at=_local(text(check, "startdate"), text(check, "starttime"), offset),
            consecutive_fails=min(
                max(_int(either(check, "consecutive_fails", "consecutiveFails")) or 1, 1),
                MAX_FAILS,
            ),
            status=status,
        )


# values -------------------------------------------------------------------------


def _int(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None


def _addresses(value: str) -> tuple[str, ...]:
    return tuple(a for a in value.replace(";", ",").replace(" ", ",").split(",") if a)


def _utc(value: str) -> float | None:
    try:
        return datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


def _local(date: str, time: str, offset: int | None) -> float | None:
    """Epoch of a local `YYYY-MM-DD` + `HH:MM:SS` at UTC+offset seconds (UTC when
    no offset is known at all)."""
    at = _utc(f"{date} {time}")
    return None if at is None else at - (offset or 0)


def _offset(created: str) -> int | None:
    try:
        delta = datetime.fromisoformat(created).utcoffset()
    except ValueError:
        return None
    return None if delta is None else int(delta / timedelta(seconds=1))
