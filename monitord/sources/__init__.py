"""Event sources: turn outside signals into `correlator.events.Event`s.

Checks *look* at devices on a schedule; sources *listen*: SNMP traps,
pushed events (ingest), later RMM webhooks. A source never judges or opens incidents
itself: it maps what it received to events (problem, recovery, info) with
source-independent fingerprints and hands them to a sink (`App.submit`), so
the correlator treats a trap and a failed check of the same fault as one.
"""

from __future__ import annotations

from monitord.errors import MonitordError


class SourceError(MonitordError):
    """An event source cannot start (address in use, permission denied); says why."""
