"""Ticket texts: one layout, each format escaping every value (Redmine's rendering of
Textile is checked against the real server in test_redmine)."""

from __future__ import annotations

import html
import re

from alerts.tickets.base import TicketOp
from alerts.tickets.texts import (
    has_marker,
    html_text,
    markdown_text,
    plain_text,
    textile_escape,
    textile_text,
)

EVIL = 'srv<b>x</b> *y* `z` ```` "l":http://e.x #1 {{toc}} 10.0.0.5\nh1. new line'


def op(**kw: object) -> TicketOp:
    base: dict[str, object] = {
        "op": "open",
        "dedup_key": "monitord-7-1",
        "subject": "[P2] s",
        "customer": "acme",
        "device_id": EVIL,
        "priority": "P2",
        "message": EVIL,
        "ts": 1.0,
        "item_id": 42,
        "event": "trigger",
        "facts": (("Device", EVIL), ("Priority", "P2")),
        "evidence": (EVIL, "second"),
        "link": "https://mon.example/api/v1/incidents/7",
    }
    base.update(kw)
    return TicketOp(**base)  # type: ignore[arg-type]


def test_plain_text_layout_flattens_values_and_ends_with_the_marker() -> None:
    text = plain_text(op())
    flat = EVIL.replace("\n", " ")
    assert text.splitlines() == [
        f"Problem: {flat}",
        "",
        f"Device: {flat}",
        "Priority: P2",
        "",
        "Evidence:",
        f"- {flat}",
        "- second",
        "",
        "Details: https://mon.example/api/v1/incidents/7",
        "",
        "Key: monitord-7-1",
        "monitord op 42",
    ]
    assert has_marker(text, 42) and not has_marker(text, 4) and not has_marker("op 420", 42)


def test_html_escapes_every_value() -> None:
    text = html_text(op())
    assert "<b>x</b>" not in text and "&lt;b&gt;x&lt;/b&gt;" in text
    assert set(re.findall(r"<(\w+)", text)) == {"p", "b", "br", "ul", "li", "a"}
    assert html.unescape(re.sub(r"<[^>]+>", "", text)).count(EVIL.replace("\n", " ")) == 3


def test_textile_leaves_no_markup_character_but_keeps_addresses_readable() -> None:
    escaped = textile_escape(EVIL.replace("\n", " "))
    assert re.search(r"[<>*`\"#{}:|\[\]!@_+^~%=-]", escaped.replace("&#", "")) is None
    assert "10.0.0.5" in escaped
    assert textile_escape("h1. x") == "h1&#46; x"
    assert textile_text(op()).endswith("\nmonitord op 42")


def test_markdown_puts_values_in_a_fence_longer_than_any_backtick_run() -> None:
    text = markdown_text(op())
    fence = "`````"  # EVIL has a run of four
    assert text.startswith(fence + "text\n")
    assert f"\n{fence}\n\nDetails: <https://mon.example/api/v1/incidents/7>" in text
    assert text.count(fence) == 2 and has_marker(text, 42)
