"""Real servers on 127.0.0.0/8 for the check tests: TCP, HTTP, TLS, DNS.

Everything binds to loopback only and is torn down by its context manager,
including connection handler tasks, so no test leaks sockets or tasks (the
suite turns ResourceWarnings into errors).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import ssl
import struct
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import uvloop
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

LOOPBACK = "127.0.0.1"

StreamHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def loop_factories() -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    """Both loops the daemon may run on: uvloop in production, asyncio as fallback."""
    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


# --------------------------------------------------------------------- TCP


@contextlib.asynccontextmanager
async def tcp_server(
    handler: StreamHandler,
    *,
    host: str = LOOPBACK,
    port: int = 0,
    tls: ssl.SSLContext | None = None,
) -> AsyncIterator[int]:
    """Serve `handler` on `port` (default: ephemeral) of `host`; yield the port."""
    tasks: set[asyncio.Task[object]] = set()

    async def guarded(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await handler(reader, writer)
        except (OSError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # the client hung up (what checks do) or the server is shutting down
        finally:
            writer.close()
            with contextlib.suppress(OSError, asyncio.CancelledError):
                await writer.wait_closed()
            tasks.discard(task)

    server = await asyncio.start_server(guarded, host, port, ssl=tls)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


async def _never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while await reader.read(65536):
        pass
    await asyncio.Event().wait()  # keep the connection open even after EOF


def hanging_server(host: str = LOOPBACK) -> contextlib.AbstractAsyncContextManager[int]:
    """A server that accepts, reads and never writes anything back."""
    return tcp_server(_never_answer, host=host)


def banner(data: bytes, delay: float = 0.0) -> StreamHandler:
    """A handler that (after `delay`) sends `data` and then waits for the client."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(delay)
        writer.write(data)
        await writer.drain()
        await reader.read()

    return handle


@contextlib.contextmanager
def refused_port() -> Iterator[int]:
    """A loopback port that refuses: bound (so nobody else takes it), not listening."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        yield sock.getsockname()[1]


@contextlib.contextmanager
def blackhole_port() -> Iterator[int]:
    """A loopback port where connect() hangs: listening with a full accept queue.

    With backlog 0 Linux queues one connection and drops further SYNs, so the
    client keeps retransmitting its SYN, as towards a filtered port.
    """
    with contextlib.ExitStack() as stack:
        listener = stack.enter_context(socket.socket())
        listener.bind((LOOPBACK, 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        for _ in range(3):
            filler = stack.enter_context(socket.socket())
            filler.setblocking(False)
            filler.connect_ex((LOOPBACK, port))
        yield port


# -------------------------------------------------------------------- HTTP


@dataclass
class Request:
    """One request as the test server saw it (header names lowercased)."""

    method: str
    path: str
    headers: dict[str, str]


@dataclass
class HttpServer:
    port: int
    requests: list[Request] = field(default_factory=list)


Responder = Callable[[Request], Awaitable[bytes] | bytes]


def response(
    status: int = 200,
    body: bytes = b"",
    *,
    reason: str = "",
    headers: dict[str, str] | None = None,
    length: bool = True,
) -> bytes:
    """Raw HTTP/1.1 response bytes; `length=False` omits Content-Length."""
    reasons = {200: "OK", 301: "Moved Permanently", 302: "Found", 404: "Not Found"}
    lines = [f"HTTP/1.1 {status} {reason or reasons.get(status, 'Whatever')}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if length:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def chunked(*chunks: bytes) -> bytes:
    """A 200 response whose body is sent with chunked transfer encoding."""
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    body = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks)
    return head + body + b"0\r\n\r\n"


@contextlib.asynccontextmanager
async def http_server(
    respond: Responder, *, host: str = LOOPBACK, tls: ssl.SSLContext | None = None
) -> AsyncIterator[HttpServer]:
    """An HTTP/1.1 server answering each request with `respond(request)`, then closing."""
    state = HttpServer(0)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        first, *rest = head.decode("latin-1").split("\r\n")
        method, path, _ = first.split(" ", 2)
        headers = dict(line.split(": ", 1) for line in rest if line)
        request = Request(method, path, {k.lower(): v for k, v in headers.items()})
        state.requests.append(request)
        out = respond(request)
        writer.write(out if isinstance(out, bytes) else await out)
        await writer.drain()

    async with tcp_server(handle, host=host, tls=tls) as port:
        state.port = port
        yield state


# --------------------------------------------------------------------- TLS


@dataclass(frozen=True)
class Cert:
    """A certificate with its key, as PEM, plus the parsed certificate."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def make_cert(
    cn: str | None = "localhost",
    *,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    issuer: Cert | None = None,
    ca: bool = False,
    sans: tuple[str, ...] = ("localhost", LOOPBACK),
) -> Cert:
    """A certificate for `cn` (self-signed unless `issuer`), valid as given.

    Defaults: valid from a day ago for a year. `sans` entries that parse as
    IP addresses become IP SANs.
    """
    now = datetime.now(UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn else [])
    if not cn:
        subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "No CN Ltd")])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - timedelta(days=1))
        .not_valid_after(not_after or now + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if sans:
        names: list[x509.GeneralName] = []
        for name in sans:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                names.append(x509.DNSName(name))
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    if ca:
        usage = x509.KeyUsage(
            digital_signature=True,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=True,
            crl_sign=True,
            encipher_only=False,
            decipher_only=False,
        )
        builder = builder.add_extension(usage, critical=True)
    signer = issuer.key if issuer else key
    return Cert(builder.sign(signer, hashes.SHA256()), key)


def server_context(cert: Cert) -> ssl.SSLContext:
    """A server-side TLS context presenting `cert`."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory() as tmp:
        cert_file, key_file = Path(tmp, "cert.pem"), Path(tmp, "key.pem")
        cert_file.write_bytes(cert.cert_pem)
        key_file.write_bytes(cert.key_pem)
        ctx.load_cert_chain(cert_file, key_file)
    return ctx


def trust(ca: Cert, directory: Path) -> str:
    """Write `ca` as a CA bundle in `directory`; return its path for SSL_CERT_FILE."""
    path = directory / "ca.pem"
    path.write_bytes(ca.cert_pem)
    return str(path)


@contextlib.asynccontextmanager
async def tls_server(cert: Cert, *, sni_seen: list[str | None] | None = None) -> AsyncIterator[int]:
    """A TLS server presenting `cert` that closes after the handshake.

    Server names the clients sent (SNI) are appended to `sni_seen`.
    """
    ctx = server_context(cert)
    if sni_seen is not None:

        def record(sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
            sni_seen.append(name)

        ctx.sni_callback = record

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    async with tcp_server(handle, tls=ctx) as port:
        yield port


# --------------------------------------------------------------------- DNS

Answerer = Callable[[dns.message.Message], dns.message.Message | None]


@dataclass
class Zone:
    """A toy authoritative zone: (name, type) → record texts.

    Names listed in `servfail` answer SERVFAIL, names absent entirely
    NXDOMAIN, present names without the type an empty NOERROR (NODATA).
    `queries` records every question seen, as (name, type) text.
    """

    records: dict[tuple[str, str], list[str]]
    servfail: set[str] = field(default_factory=set)
    refused: set[str] = field(default_factory=set)
    truncate_udp: bool = False
    queries: list[tuple[str, str]] = field(default_factory=list)

    def answer(self, query: dns.message.Message, *, over_tcp: bool = False) -> dns.message.Message:
        question = query.question[0]
        name, rdtype = question.name.to_text(), dns.rdatatype.to_text(question.rdtype)
        self.queries.append((name, rdtype))
        reply = dns.message.make_response(query)
        reply.flags |= dns.flags.AA
        if name in self.servfail:
            reply.set_rcode(dns.rcode.SERVFAIL)
        elif name in self.refused:
            reply.set_rcode(dns.rcode.REFUSED)
        elif not any(n == name for n, _ in self.records):
            reply.set_rcode(dns.rcode.NXDOMAIN)
        elif self.truncate_udp and not over_tcp:
            reply.flags |= dns.flags.TC
        else:
            self._add_chain(reply, name, rdtype)
        return reply

    def _add_chain(self, reply: dns.message.Message, name: str, rdtype: str) -> None:
        for _ in range(8):
            if (name, rdtype) in self.records:
                texts = self.records[(name, rdtype)]
                reply.answer.append(dns.rrset.from_text_list(name, 300, "IN", rdtype, texts))
                return
            cname = self.records.get((name, "CNAME"))
            if not cname or rdtype == "CNAME":
                return
            reply.answer.append(dns.rrset.from_text_list(name, 300, "IN", "CNAME", cname))
            name = cname[0]


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, answer: Answerer) -> None:
        self.answer = answer
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's UDP transport does not subclass asyncio.DatagramTransport.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, int]) -> None:
        reply = self.answer(dns.message.from_wire(data))
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply.to_wire(), addr)


@contextlib.asynccontextmanager
async def dns_server(answer: Answerer, *, zone: Zone | None = None) -> AsyncIterator[int]:
    """A UDP DNS responder on loopback; with `zone`, also TCP on the same port.

    TCP takes its ephemeral port first and UDP binds the same number: the
    other way round, a TCP client of another test may hold that number.
    """
    async with contextlib.AsyncExitStack() as stack:
        port = 0
        if zone is not None:

            async def over_tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                (size,) = struct.unpack("!H", await reader.readexactly(2))
                query = dns.message.from_wire(await reader.readexactly(size))
                wire = zone.answer(query, over_tcp=True).to_wire()
                writer.write(struct.pack("!H", len(wire)) + wire)
                await writer.drain()

            port = await stack.enter_async_context(tcp_server(over_tcp))
        transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: _Udp(answer), local_addr=(LOOPBACK, port)
        )
        stack.callback(transport.close)
        yield transport.get_extra_info("sockname")[1]


def zone_server(zone: Zone) -> contextlib.AbstractAsyncContextManager[int]:
    """Serve `zone` over UDP and TCP on one loopback port."""
    return dns_server(zone.answer, zone=zone)


def silent_dns_server() -> contextlib.AbstractAsyncContextManager[int]:
    """A UDP port that receives queries and never answers."""
    return dns_server(lambda _query: None)
