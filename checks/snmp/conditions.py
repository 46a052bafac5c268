"""Thresholds: when a value is WARNING or CRITICAL.

A threshold (`warn:` or `crit:`) is one string in either of two forms:

- a simple comparison that says when to alert: `>80`, `>=80`, `<20`, `<=20`,
  `==2`, `!=1`; `==` and `!=` also compare text (`!=up`);
- a Nagios range (the plugin guidelines' grammar), which says what is fine and
  alerts outside it: `80` (alert below 0 or above 80), `20:` (alert below 20),
  `~:80` (alert above 80), `10:20` (alert outside 10..20), `@10:20` (alert
  inside 10..20).

A bare YAML number is a Nagios range (`crit: 90` alerts above 90). Thresholds
are parsed once, at config validation; evaluating one is a float comparison.
A value that is not a number never alerts a numeric threshold (the check says
so instead).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import PlainSerializer, PlainValidator

_NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_RANGE = re.compile(rf"^(?P<at>@)?(?:(?P<lo>~|{_NUM})?:)?(?P<hi>{_NUM})?$")
_COMPARE = re.compile(r"^(?P<op>>=|<=|==|!=|>|<)\s*(?P<operand>.+)$")

Value = int | float | str | bytes | tuple[int, ...] | None


def as_number(value: Value) -> float | None:
    """The value as a float: numbers as they are, numeric text parsed, else None."""
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


@dataclass(frozen=True, slots=True)
class Condition:
    """When a value alerts. Built by `parse_condition`; `text` is as configured.

    Numeric conditions alert outside [low, high] (inside when `inside`);
    `==`/`!=` conditions compare with `operand` (a number when it parses as
    one, else text).
    """

    text: str
    low: float = -math.inf
    high: float = math.inf
    inside: bool = False
    strict: bool = False  # `>`/`<` alert on the bound itself too? (False: `>80` is OK at 80)
    equals: float | str | None = None
    negate: bool = False  # `!=`

    def __repr__(self) -> str:
        return f"Condition({self.text!r})"

    def alerts(self, value: Value) -> bool:
        """True when `value` breaches this condition."""
        if self.equals is not None:
            same = _same(value, self.equals)
            return not same if self.negate else same
        number = as_number(value)
        if number is None:
            return False
        if self.strict:  # `>=`/`<=`: the bound itself alerts
            outside = number <= self.low or number >= self.high
        else:
            outside = number < self.low or number > self.high
        return not outside if self.inside else outside

    def nagios(self) -> str | None:
        """The condition as a Nagios range for perfdata, or None for `==`/`!=`."""
        if self.equals is not None:
            return None
        lo = "~" if self.low == -math.inf else format(self.low, "g")
        hi = "" if self.high == math.inf else format(self.high, "g")
        body = hi if lo == "0" and hi else f"{lo}:{hi}"
        return ("@" if self.inside else "") + body


def _same(value: Value, operand: float | str) -> bool:
    if isinstance(operand, float):
        number = as_number(value)
        return number is not None and number == operand
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return text == operand


def parse_condition(value: Any) -> Condition:
    """A `Condition` from config text or a number; raises ValueError saying why not."""
    if isinstance(value, Condition):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"expected a threshold like '>80', '<20' or '10:20', got {value!r}")
    text = format(value, "g") if isinstance(value, int | float) else value.strip()
    compare = _COMPARE.match(text)
    if compare is not None:
        return _comparison(text, compare["op"], compare["operand"].strip())
    match = _RANGE.match(text)
    if match is None or not (match["lo"] or match["hi"]):
        raise ValueError(
            f"{text!r} is not a threshold: use a comparison ('>80', '<=20', '!=1') "
            "or a Nagios range ('80', '20:', '~:80', '10:20', '@10:20')"
        )
    lo = match["lo"]
    low = -math.inf if lo == "~" else float(lo) if lo else 0.0
    high = float(match["hi"]) if match["hi"] else math.inf
    if low > high:
        raise ValueError(f"{text!r}: the range start is above its end")
    return Condition(text, low, high, inside=bool(match["at"]))


def _comparison(text: str, op: str, operand: str) -> Condition:
    if op in ("==", "!="):
        unquoted = operand.strip("'\"")
        try:
            equals: float | str = float(unquoted)
        except ValueError:
            equals = unquoted
        return Condition(text, equals=equals, negate=op == "!=")
    try:
        bound = float(operand)
    except ValueError:
        raise ValueError(f"{text!r}: {op} needs a number, got {operand!r}") from None
    # Alert above the bound = fine inside [-inf, bound]; `>=` makes the bound alert too.
    if op in (">", ">="):
        return Condition(text, -math.inf, bound, inside=False, strict=op == ">=")
    return Condition(text, bound, math.inf, inside=False, strict=op == "<=")


Threshold = Annotated[
    Condition,
    PlainValidator(parse_condition),
    PlainSerializer(lambda c: c.text, return_type=str),
]
"""A `warn:`/`crit:` field: validated into a Condition, dumped as its text."""
