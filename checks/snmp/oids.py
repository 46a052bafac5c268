"""Offline MIB names: a built-in table of the standard objects the profiles use.

pysnmp resolves names by loading (and, for most IETF MIBs, first compiling and
downloading) MIB modules: ~0.5 s per module, a network fetch Debian cannot serve
offline, and a MIB-view lookup on every request. The daemon instead resolves
names once, at config validation, from this table; requests carry numeric OIDs
only. A name not in the table is a config error naming it; numeric OIDs always
work.

Accepted forms: `1.3.6.1.2.1.1.3.0`, `.1.3.6.1.2.1.1.3.0`, `sysUpTime.0`,
`SNMPv2-MIB::sysUpTime.0`, `IF-MIB::ifOperStatus` (a column, for walks) and
`IF-MIB::ifOperStatus.7`. RFC1213-MIB is accepted for the objects it defined
before SNMPv2-MIB and IF-MIB took them over.
"""

from __future__ import annotations

import re

OID = tuple[int, ...]

_MIB2 = "1.3.6.1.2.1"
_UCD = "1.3.6.1.4.1.2021"


def _columns(module: str, entry: str, names: str) -> dict[str, tuple[str, str]]:
    """Consecutive sub-identifiers 1, 2, … of one table entry (or group)."""
    return {
        name: (module, f"{entry}.{i}")
        for i, name in enumerate(names.split(), start=1)
        if name != "-"
    }


_TABLE: dict[str, tuple[str, str]] = {
    # SNMPv2-MIB: system and snmp groups
    **_columns(
        "SNMPv2-MIB",
        f"{_MIB2}.1",
        "sysDescr sysObjectID sysUpTime sysContact sysName sysLocation sysServices sysORLastChange",
    ),
    **_columns(
        "SNMPv2-MIB",
        f"{_MIB2}.11",
        "snmpInPkts snmpOutPkts snmpInBadVersions snmpInBadCommunityNames "
        "snmpInBadCommunityUses snmpInASNParseErrs",
    ),
    # IF-MIB: interfaces group, ifTable, ifXTable
    "ifNumber": ("IF-MIB", f"{_MIB2}.2.1"),
    **_columns(
        "IF-MIB",
        f"{_MIB2}.2.2.1",
        "ifIndex ifDescr ifType ifMtu ifSpeed ifPhysAddress ifAdminStatus ifOperStatus "
        "ifLastChange ifInOctets ifInUcastPkts ifInNUcastPkts ifInDiscards ifInErrors "
        "ifInUnknownProtos ifOutOctets ifOutUcastPkts ifOutNUcastPkts ifOutDiscards "
        "ifOutErrors ifOutQLen ifSpecific",
    ),
    **_columns(
        "IF-MIB",
        f"{_MIB2}.31.1.1.1",
        "ifName ifInMulticastPkts ifInBroadcastPkts ifOutMulticastPkts ifOutBroadcastPkts "
        "ifHCInOctets ifHCInUcastPkts ifHCInMulticastPkts ifHCInBroadcastPkts ifHCOutOctets "
        "ifHCOutUcastPkts ifHCOutMulticastPkts ifHCOutBroadcastPkts ifLinkUpDownTrapEnable "
        "ifHighSpeed ifPromiscuousMode ifConnectorPresent ifAlias ifCounterDiscontinuityTime",
    ),
    # HOST-RESOURCES-MIB
    **_columns(
        "HOST-RESOURCES-MIB",
        f"{_MIB2}.25.1",
        "hrSystemUptime hrSystemDate hrSystemInitialLoadDevice hrSystemInitialLoadParameters "
        "hrSystemNumUsers hrSystemProcesses hrSystemMaxProcesses",
    ),
    "hrMemorySize": ("HOST-RESOURCES-MIB", f"{_MIB2}.25.2.2"),
    **_columns(
        "HOST-RESOURCES-MIB",
        f"{_MIB2}.25.2.3.1",
        "hrStorageIndex hrStorageType hrStorageDescr hrStorageAllocationUnits hrStorageSize "
        "hrStorageUsed hrStorageAllocationFailures",
    ),
    **_columns(
        "HOST-RESOURCES-MIB",
        f"{_MIB2}.25.3.2.1",
        "hrDeviceIndex hrDeviceType hrDeviceDescr hrDeviceID hrDeviceStatus hrDeviceErrors",
    ),
    **_columns("HOST-RESOURCES-MIB", f"{_MIB2}.25.3.3.1", "hrProcessorFrwID hrProcessorLoad"),
    **_columns(
        "HOST-RESOURCES-MIB", f"{_MIB2}.25.3.5.1", "hrPrinterStatus hrPrinterDetectedErrorState"
    ),
    **_columns(
        "HOST-RESOURCES-MIB",
        f"{_MIB2}.25.4.2.1",
        "hrSWRunIndex hrSWRunName hrSWRunID hrSWRunPath hrSWRunParameters hrSWRunType "
        "hrSWRunStatus",
    ),
    **_columns("HOST-RESOURCES-MIB", f"{_MIB2}.25.5.1.1", "hrSWRunPerfCPU hrSWRunPerfMem"),
    # UPS-MIB (RFC 1628)
    **_columns(
        "UPS-MIB",
        f"{_MIB2}.33.1.1",
        "upsIdentManufacturer upsIdentModel upsIdentUPSSoftwareVersion "
        "upsIdentAgentSoftwareVersion upsIdentName upsIdentAttachedDevices",
    ),
    **_columns(
        "UPS-MIB",
        f"{_MIB2}.33.1.2",
        "upsBatteryStatus upsSecondsOnBattery upsEstimatedMinutesRemaining "
        "upsEstimatedChargeRemaining upsBatteryVoltage upsBatteryCurrent upsBatteryTemperature",
    ),
    **_columns("UPS-MIB", f"{_MIB2}.33.1.3", "upsInputLineBads upsInputNumLines"),
    **_columns(
        "UPS-MIB",
        f"{_MIB2}.33.1.3.3.1",
        "upsInputLineIndex upsInputFrequency upsInputVoltage upsInputCurrent upsInputTruePower",
    ),
    **_columns(
        "UPS-MIB", f"{_MIB2}.33.1.4", "upsOutputSource upsOutputFrequency upsOutputNumLines"
    ),
    **_columns(
        "UPS-MIB",
        f"{_MIB2}.33.1.4.4.1",
        "upsOutputLineIndex upsOutputVoltage upsOutputCurrent upsOutputPower upsOutputPercentLoad",
    ),
    "upsAlarmsPresent": ("UPS-MIB", f"{_MIB2}.33.1.6.1"),
    # Printer-MIB (RFC 3805)
    "prtGeneralPrinterName": ("Printer-MIB", f"{_MIB2}.43.5.1.1.16"),
    "prtGeneralSerialNumber": ("Printer-MIB", f"{_MIB2}.43.5.1.1.17"),
    "prtMarkerLifeCount": ("Printer-MIB", f"{_MIB2}.43.10.2.1.4"),
    "prtMarkerPowerOnCount": ("Printer-MIB", f"{_MIB2}.43.10.2.1.5"),
    **_columns(
        "Printer-MIB",
        f"{_MIB2}.43.11.1.1",
        "prtMarkerSuppliesIndex prtMarkerSuppliesMarkerIndex prtMarkerSuppliesColorantIndex "
        "prtMarkerSuppliesClass prtMarkerSuppliesType prtMarkerSuppliesDescription "
        "prtMarkerSuppliesSupplyUnit prtMarkerSuppliesMaxCapacity prtMarkerSuppliesLevel",
    ),
    **_columns(
        "Printer-MIB",
        f"{_MIB2}.43.12.1.1",
        "prtMarkerColorantIndex prtMarkerColorantMarkerIndex prtMarkerColorantRole "
        "prtMarkerColorantValue prtMarkerColorantTonality",
    ),
    # UCD-SNMP-MIB (net-snmp): processes, memory, disks, load, CPU statistics
    **_columns("UCD-SNMP-MIB", f"{_UCD}.2.1", "prIndex prNames prMin prMax prCount"),
    "prErrorFlag": ("UCD-SNMP-MIB", f"{_UCD}.2.1.100"),
    **_columns(
        "UCD-SNMP-MIB",
        f"{_UCD}.4",
        "memIndex memErrorName memTotalSwap memAvailSwap memTotalReal memAvailReal - - - - "
        "memTotalFree memMinimumSwap memShared memBuffer memCached",
    ),
    **_columns(
        "UCD-SNMP-MIB",
        f"{_UCD}.9.1",
        "dskIndex dskPath dskDevice dskMinimum dskMinPercent dskTotal dskAvail dskUsed "
        "dskPercent dskPercentNode",
    ),
    **_columns(
        "UCD-SNMP-MIB", f"{_UCD}.10.1", "laIndex laNames laLoad laConfig laLoadInt laLoadFloat"
    ),
    **_columns(
        "UCD-SNMP-MIB",
        f"{_UCD}.11",
        "ssIndex ssErrorName ssSwapIn ssSwapOut ssIOSent ssIOReceive ssSysInterrupts "
        "ssSysContext ssCpuUser ssCpuSystem ssCpuIdle",
    ),
    # raw CPU tick counters start at sub-identifier 50
    **{
        name: ("UCD-SNMP-MIB", f"{_UCD}.11.{n}")
        for n, name in enumerate(
            ["ssCpuRawUser", "ssCpuRawNice", "ssCpuRawSystem", "ssCpuRawIdle", "ssCpuRawWait"], 50
        )
    },
}

# Objects RFC1213-MIB defined before SNMPv2-MIB / IF-MIB took them over.
_LEGACY_MODULES = {"RFC1213-MIB": ("SNMPv2-MIB", "IF-MIB")}

NAMES: dict[str, tuple[str, OID]] = {
    name: (module, tuple(int(p) for p in dotted.split(".")))
    for name, (module, dotted) in _TABLE.items()
}
"""Object name → (MIB module, numeric OID) for every name the table knows."""

_BY_OID: dict[OID, str] = {oid: f"{module}::{name}" for name, (module, oid) in NAMES.items()}
_PREFIX_LENGTHS = sorted({len(oid) for oid in _BY_OID}, reverse=True)

_NUMERIC = re.compile(r"^\.?\d+(\.\d+)+$")
_NAMED = re.compile(r"^(?:(?P<module>[A-Za-z][\w-]*)::)?(?P<name>[A-Za-z]\w*)(?P<index>(\.\d+)*)$")


def parse_oid(text: str) -> OID:
    """The numeric OID for a numeric or named object, e.g. `sysUpTime.0`.

    Raises ValueError naming the object when the name is unknown, the module
    does not define it, or the text is not an OID at all. Never touches MIB
    files or the network.
    """
    text = text.strip()
    if _NUMERIC.match(text):
        oid = tuple(int(p) for p in text.lstrip(".").split("."))
        if oid[0] > 2 or (oid[0] < 2 and oid[1] > 39):
            raise ValueError(f"{text!r} is not a valid OID (first arcs must be 0-2 and 0-39)")
        return oid
    match = _NAMED.match(text)
    if match is None:
        raise ValueError(f"{text!r} is neither a numeric OID nor a MIB object name")
    module, name = match["module"], match["name"]
    if name not in NAMES:
        raise ValueError(
            f"unknown MIB object {text!r}: not in the built-in name table "
            "(write the numeric OID instead)"
        )
    own_module, base = NAMES[name]
    if (
        module is not None
        and module != own_module
        and own_module not in _LEGACY_MODULES.get(module, ())
    ):
        raise ValueError(f"{text!r}: {name} is defined in {own_module}, not {module}")
    index = tuple(int(p) for p in match["index"].lstrip(".").split(".")) if match["index"] else ()
    return base + index


def format_oid(oid: OID) -> str:
    """The OID as a name where the table knows its object: `IF-MIB::ifOperStatus.7`.

    Falls back to the dotted numeric form; used only for messages.
    """
    for length in _PREFIX_LENGTHS:
        if length <= len(oid):
            name = _BY_OID.get(oid[:length])
            if name is not None:
                rest = oid[length:]
                return name + "".join(f".{p}" for p in rest)
    return dotted(oid)


def dotted(oid: OID) -> str:
    """`1.3.6.1.2.1.1.3.0` for a numeric OID."""
    return ".".join(map(str, oid))
