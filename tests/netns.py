"""Throwaway network namespaces joined to ours by a veth pair, for tests.

    with veth_namespace() as lab:
        lab.assert_routed_via_veth()      # before sending ANY packet
        ...ping / connect to lab.peer_addr...
        lab.set_peer_link(up=False)       # the address stops answering
        lab.assert_routed_via_veth()      # still contained: check again

The pair gets a random /30 from 198.18.0.0/15 (RFC 2544, reserved for
benchmarking): `host_addr` on our end, `peer_addr` inside the namespace.
Traffic must never leave this machine, so `assert_routed_via_veth` asks the
kernel (`ip route get`) where a packet to the address would go and raises
unless the answer is our veth end with no gateway. Call it before every
send, and again after changing links: taking OUR end down, or deleting the
namespace, removes the connected route and the address would then follow the
default route out of the machine. Taking the peer's end down keeps the route
on our (now carrier-less) end, which drops the packets: the way to make the
address silent.

Tests use `require_netns()` first: it skips when not root or `ip` is missing,
except under CI=true, where it fails instead.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

BENCHMARK_NET = ipaddress.IPv4Network("198.18.0.0/15")


def netns_unavailable_reason() -> str | None:
    """Why namespaces cannot be built here, or None when they can."""
    if sys.platform != "linux":
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "building network namespaces needs root"
    if shutil.which("ip") is None:
        return "iproute2's `ip` command is missing"
    return None


def require_netns() -> None:
    """Skip the calling test when namespaces are unavailable; fail under CI=true."""
    reason = netns_unavailable_reason()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"netns test must run in CI but cannot: {reason}")
    pytest.skip(reason)


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run `ip ARGS`; raise with its stderr when `check` and it fails."""
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed: {done.stderr.strip()}")
    return done


def ip_json(*args: str) -> Any:
    return json.loads(ip("-j", *args).stdout or "[]")


class UncontainedRoute(AssertionError):
    """A packet to the lab address would not stay on the lab's veth pair."""


@dataclass(frozen=True)
class VethNamespace:
    name: str  # the namespace, for `ip netns exec` / `ip -n`
    host_if: str  # our end of the pair
    peer_if: str  # the end inside the namespace
    host_addr: str
    peer_addr: str
    prefixlen: int = 30

    def assert_routed_via_veth(self, address: str | None = None) -> None:
        """Raise UncontainedRoute unless `address` (default peer_addr) goes via host_if only."""
        address = address or self.peer_addr
        if ipaddress.IPv4Address(address) not in BENCHMARK_NET:
            raise UncontainedRoute(f"{address} is outside {BENCHMARK_NET}")
        try:
            routes = ip_json("route", "get", address)
        except RuntimeError as exc:
            raise UncontainedRoute(str(exc)) from exc
        if len(routes) != 1:
            raise UncontainedRoute(f"route to {address} is not a single route: {routes}")
        route = routes[0]
        if (
            route.get("dev") != self.host_if
            or "gateway" in route
            or route.get("type", "unicast") != "unicast"
        ):
            raise UncontainedRoute(f"route to {address} is not via {self.host_if} alone: {route}")

    def set_peer_link(self, *, up: bool) -> None:
        """Bring the namespace's end up or down (ours keeps its route either way)."""
        ip("-n", self.name, "link", "set", self.peer_if, "up" if up else "down")

    def exec(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a command inside the namespace."""
        done = subprocess.run(
            ["ip", "netns", "exec", self.name, *argv], capture_output=True, text=True, timeout=30
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"{argv} in {self.name} failed: {done.stderr.strip()}")
        return done

    def wait_until_up(self, timeout: float = 5.0) -> None:
        """Wait until our end has carrier (the peer is up)."""
        deadline = time.monotonic() + timeout
        while True:
            (link,) = ip_json("link", "show", "dev", self.host_if)
            if link.get("operstate") == "UP":
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.host_if} still {link.get('operstate')} after {timeout}s")
            time.sleep(0.02)


def _free_subnet() -> ipaddress.IPv4Network:
    """A random /30 of BENCHMARK_NET that no interface here uses yet."""
    used = [
        ipaddress.IPv4Interface(f"{a['local']}/{a['prefixlen']}").network
        for link in ip_json("-4", "addr", "show", "to", str(BENCHMARK_NET))
        for a in link.get("addr_info", [])
    ]
    subnets = BENCHMARK_NET.num_addresses // 4
    for _ in range(100):
        first = BENCHMARK_NET.network_address + 4 * secrets.randbelow(subnets)
        candidate = ipaddress.IPv4Network(f"{first}/30")
        if not any(candidate.overlaps(net) for net in used):
            return candidate
    raise RuntimeError(f"no free /30 left in {BENCHMARK_NET}")


def _disable_ipv6(interface: str, namespace: str | None = None) -> None:
    # Keeps link-local chatter (DAD, router solicitations) off the pair.
    cmd = ["sysctl", "-qw", f"net.ipv6.conf.{interface}.disable_ipv6=1"]
    if namespace is not None:
        cmd = ["ip", "netns", "exec", namespace, *cmd]
    subprocess.run(cmd, capture_output=True, timeout=10, check=False)


@contextlib.contextmanager
def veth_namespace(prefix: str = "md") -> Iterator[VethNamespace]:
    """Build a namespace + veth pair with a free /30; always tear both down."""
    tag = f"{prefix}{secrets.token_hex(4)}"  # interface names must stay under 16 bytes
    subnet = _free_subnet()
    host_addr, peer_addr = (str(a) for a in subnet.hosts())
    lab = VethNamespace(f"{tag}-ns", f"{tag}h", f"{tag}n", host_addr, peer_addr)
    try:
        ip("netns", "add", lab.name)
        ip(
            "link",
            "add",
            lab.host_if,
            "type",
            "veth",
            "peer",
            "name",
            lab.peer_if,
            "netns",
            lab.name,
        )
        _disable_ipv6(lab.host_if)
        _disable_ipv6(lab.peer_if, lab.name)
        ip("addr", "add", f"{host_addr}/30", "dev", lab.host_if)
        ip("-n", lab.name, "addr", "add", f"{peer_addr}/30", "dev", lab.peer_if)
        ip("-n", lab.name, "link", "set", "lo", "up")
        ip("-n", lab.name, "link", "set", lab.peer_if, "up")
        ip("link", "set", lab.host_if, "up")
        lab.wait_until_up()
        yield lab
    finally:
        ip("link", "del", lab.host_if, check=False)  # deletes both ends at once
        ip("netns", "del", lab.name, check=False)
