"""E-mail against a real SMTP server on loopback (aiosmtpd)."""

from __future__ import annotations

import datetime
import ssl
from email import message_from_bytes, policy
from ipaddress import IPv4Address
from pathlib import Path

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from alerts.channels.email import thread_id
from monitord.errors import DeliveryError, Reason
from tests.channels.cases import build, page
from tests.channels.emulators import SmtpEmulator
from tests.conftest import free_port


def _received(smtp: SmtpEmulator, index: int = 0) -> tuple[list[str], str, object]:
    env = smtp.messages[index]
    assert isinstance(env.content, bytes)
    return env.rcpt_tos, str(env.mail_from), message_from_bytes(env.content, policy=policy.default)


async def test_message(smtp: SmtpEmulator, session: aiohttp.ClientSession) -> None:
    result = await build("email", session, "", smtp.port).send(page("email"))
    rcpt, sender, msg = _received(smtp)
    assert rcpt == ["jan@msp.example"] and sender == "monitord@msp.example"
    assert msg["From"] == "monitord@msp.example"  # type: ignore[index]
    assert msg["To"] == "jan@msp.example"  # type: ignore[index]
    assert msg["Subject"] == "[P1] srv-db01 (Customer A) DOWN"  # type: ignore[index]
    assert msg["Message-ID"] == result.remote_id  # type: ignore[index]
    assert msg["References"] == thread_id("monitord-incident-17")  # type: ignore[index]
    assert msg["X-Monitord-Action"] == "trigger"  # type: ignore[index]
    assert msg["Date"] == "Tue, 14 Nov 2023 22:13:20 +0000"  # type: ignore[index]
    assert msg.get_content_type() == "text/plain"  # type: ignore[attr-defined]
    body = msg.get_content().replace("\r\n", "\n")  # type: ignore[attr-defined]
    assert body == (
        "ping loss 100% since 02:14 UTC\n\nAcknowledge: https://monitor.msp.example/ack/7f3a9c41\n"
    )


async def test_resolve_threads_and_has_no_ack_link(
    smtp: SmtpEmulator, session: aiohttp.ClientSession
) -> None:
    channel = build("email", session, "", smtp.port)
    await channel.send(page("email"))
    await channel.send(page("email", "resolve", title="Žluťoučký kůň"))
    _, _, first = _received(smtp, 0)
    _, _, second = _received(smtp, 1)
    assert second["Subject"] == "RESOLVED [P1] Žluťoučký kůň"  # type: ignore[index]
    assert second["In-Reply-To"] == first["References"]  # type: ignore[index]
    assert "Acknowledge" not in second.get_content()  # type: ignore[attr-defined]


async def test_wrong_password(smtp: SmtpEmulator, session: aiohttp.ClientSession) -> None:
    channel = build("email", session, "", smtp.port, password="bad-password-1")
    with pytest.raises(DeliveryError) as info:
        await channel.send(page("email"))
    assert (info.value.permanent, info.value.reason) == (True, Reason.AUTH)
    assert smtp.messages == []


async def test_starttls_unsupported_is_permanent(
    smtp: SmtpEmulator, session: aiohttp.ClientSession
) -> None:
    # the loopback server offers no STARTTLS: refusing to send in clear is right
    channel = build("email", session, "", smtp.port, security="starttls")
    with pytest.raises(DeliveryError, match="STARTTLS") as info:
        await channel.send(page("email"))
    assert (info.value.permanent, info.value.reason) == (True, Reason.CLIENT_ERROR)
    assert smtp.messages == []


async def test_connection_refused(session: aiohttp.ClientSession) -> None:
    channel = build("email", session, "", free_port())
    with pytest.raises(DeliveryError) as info:
        await channel.send(page("email"))
    assert (info.value.permanent, info.value.reason) == (False, Reason.NETWORK)


def _server_tls(tmp_path: Path) -> tuple[ssl.SSLContext, str]:
    """A self-signed certificate for 127.0.0.1: the server's context and the CA file."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "smtp test")])
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(IPv4Address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert_file, key_file)
    return ctx, str(cert_file)


@pytest.mark.parametrize("security", ["starttls", "tls"])
async def test_tls(security: str, tmp_path: Path, session: aiohttp.ClientSession) -> None:
    ctx, ca_file = _server_tls(tmp_path)
    server = SmtpEmulator()
    server.start(free_port(), **{security: ctx})
    try:
        channel = build("email", session, "", server.port, security=security, ca_file=ca_file)
        await channel.send(page("email"))
        assert len(server.messages) == 1
        untrusted = build("email", session, "", server.port, security=security)
        with pytest.raises(DeliveryError) as info:
            await untrusted.send(page("email"))
        assert (info.value.permanent, info.value.reason) == (False, Reason.NETWORK)
        assert len(server.messages) == 1
    finally:
        server.stop()


async def test_header_injection_is_refused(
    smtp: SmtpEmulator, session: aiohttp.ClientSession
) -> None:
    channel = build("email", session, "", smtp.port)
    with pytest.raises(DeliveryError) as info:
        await channel.send(page("email", recipient="jan@msp.example\nBcc: eve@evil.example"))
    assert info.value.permanent
    assert smtp.messages == []
