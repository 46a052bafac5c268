"""Check types. One module per kind, one interface (`checks.base.CheckType`).

`REGISTRY` maps the stable kind key (stored in the database, never renamed) to
the dotted path of its class; classes are imported lazily so that a daemon
without SNMP checks never imports pysnmp.
"""

REGISTRY: dict[str, str] = {
    "tcp": "checks.tcp.TcpCheck",
    "icmp": "checks.icmp.IcmpCheck",
    "http": "checks.http.HttpCheck",
    "tls": "checks.tls.TlsCheck",
    "dns": "checks.dns.DnsCheck",
    "snmp": "checks.snmp.SnmpCheck",
    "heartbeat": "checks.heartbeat.HeartbeatCheck",
    "plugin": "checks.plugin.PluginCheck",
    "local": "checks.local.LocalCheck",
}
