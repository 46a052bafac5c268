"""Ticket texts: one layout, rendered safely into each system's markup.

Every value in a ticket text comes from the outside (device names from an RMM,
check output, RMM messages, ingested events), so no value is ever injected as
markup: each renderer escapes it for its own format.

- `plain_text`: text/plain (Request Tracker, webhooks, the built-in store);
- `html_text`: HTML (Zammad, GLPI), every value `html.escape`d;
- `textile_text`: Redmine's Textile, every ASCII punctuation character of a value
  written as a numeric entity, so no Textile markup (`*bold*`, `"x":url`, `!img!`,
  tables, `h1.`) and no Redmine link or macro (`#12`, `r12`, `{{macro}}`, `[[page]]`,
  `user#1`, `attachment:x`) can form; digits around a dot stay readable (10.0.0.5);
- `markdown_text`: Redmine's CommonMark/Markdown, the values inside a fenced code
  block whose fence is longer than any backtick run in them (nothing inside a code
  block is markup or a Redmine link).

Each text ends with the line `monitord op <outbox id>` (`marker`), which is how a
retried operation finds out whether its note is already on the ticket.
"""

from __future__ import annotations

import html
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alerts.tickets.base import TicketOp

HEADINGS = {
    "trigger": "Problem",
    "reopen": "Problem returned",
    "update": "Update",
    "acknowledge": "Acknowledged",
    "resolve": "Recovered",
    "link": "Linked",
}
VERBS = {"open": "Problem", "comment": "Update", "resolve": "Recovered", "reopen": "Problem again"}
MAX_VALUE = 2000
MAX_EVIDENCE = 30
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def flat(value: object, limit: int = MAX_VALUE) -> str:
    """One line of text: no control characters or line breaks, at most `limit` chars."""
    text = _CONTROL.sub(" ", str(value)).replace("\r", " ").replace("\n", " ").strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def heading(op: TicketOp) -> str:
    return HEADINGS.get(op.event) or VERBS.get(op.op, "Update")


def facts(op: TicketOp) -> list[tuple[str, str]]:
    """The labelled facts; the basic three when the payload carries none (old rows)."""
    if op.facts:
        return [(flat(k, 60), flat(v, 500)) for k, v in op.facts]
    return [
        ("Device", flat(op.device_id)),
        ("Customer", flat(op.customer)),
        ("Priority", flat(op.priority)),
    ]


def evidence(op: TicketOp) -> list[str]:
    return [flat(line, 400) for line in op.evidence[:MAX_EVIDENCE]]


def marker(item_id: int) -> str:
    """The last line of every note: identifies the outbox operation that wrote it."""
    return f"monitord op {item_id}"


def has_marker(text: str, item_id: int) -> bool:
    return re.search(rf"\bmonitord op {item_id}\b", text) is not None


def plain_text(op: TicketOp) -> str:
    """The text as text/plain."""
    lines = [f"{heading(op)}: {flat(op.message)}", ""]
    lines += [f"{k}: {v}" for k, v in facts(op)]
    if op.evidence:
        lines += ["", "Evidence:", *(f"- {line}" for line in evidence(op))]
    if op.link:
        lines += ["", f"Details: {op.link}"]
    lines += ["", f"Key: {flat(op.dedup_key)}"]
    if op.item_id:
        lines.append(marker(op.item_id))
    return "\n".join(lines)


def html_text(op: TicketOp) -> str:
    """The text as HTML; every value escaped, never injected."""
    e = html.escape
    out = [f"<p><b>{e(heading(op))}:</b> {e(flat(op.message))}</p>"]
    out.append("<p>" + "<br>".join(f"{e(k)}: {e(v)}" for k, v in facts(op)) + "</p>")
    if op.evidence:
        items = "".join(f"<li>{e(line)}</li>" for line in evidence(op))
        out.append(f"<p>Evidence:</p><ul>{items}</ul>")
    if op.link:
        out.append(f'<p>Details: <a href="{e(op.link)}">{e(op.link)}</a></p>')
    tail = f"Key: {e(flat(op.dedup_key))}"
    if op.item_id:
        tail += f"<br>{marker(op.item_id)}"
    out.append(f"<p>{tail}</p>")
    return "".join(out)


def textile_escape(value: str) -> str:
    """`value` with no character Textile or Redmine could read as markup."""
    out = []
    for i, ch in enumerate(value):
        if ch.isascii() and not ch.isalnum() and ch not in " ,":
            between_digits = 0 < i < len(value) - 1 and (value[i - 1] + value[i + 1]).isdigit()
            if ch == "." and between_digits:
                out.append(ch)  # 10.0.0.5, 2.4.1: no markup starts with a digit-dot-digit
                continue
            out.append(f"&#{ord(ch)};")
        else:
            out.append(ch)
    return "".join(out)


def textile_text(op: TicketOp) -> str:
    """The text in Redmine's Textile; values escaped, the link (from the config) bare."""
    t = textile_escape
    lines = [f"*{t(heading(op))}:* {t(flat(op.message))}", ""]
    lines += [f"{t(k)}: {t(v)}" for k, v in facts(op)]
    if op.evidence:
        lines += ["", "Evidence:", "", *(f"* {t(line)}" for line in evidence(op))]
    if op.link:
        lines += ["", f"Details: {op.link}"]
    lines += ["", f"Key: {t(flat(op.dedup_key))}"]
    if op.item_id:
        lines.append(marker(op.item_id))
    return "\n".join(lines)


def markdown_text(op: TicketOp) -> str:
    """The text in (CommonMark) Markdown: the values in a fenced code block."""
    body = plain_text(op)
    if op.link:  # the link goes outside the block, where it is clickable
        body = body.replace(f"\n\nDetails: {op.link}", "")
    longest = max((len(run) for run in re.findall(r"`+", body)), default=0)
    fence = "`" * max(3, longest + 1)
    out = f"{fence}text\n{body}\n{fence}"
    if op.link:
        out += f"\n\nDetails: <{op.link}>"
    return out
