"""The database schema (SQLAlchemy Core). Alembic migrations create it.

Times are UTC epoch seconds in float columns: the check path writes
thousands of rows a second and converting to datetime objects would cost
more than the insert; the API renders them as ISO 8601.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    false,
)

metadata = MetaData()

customers = Table(
    "customers",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("display_name", Text, nullable=False, default=""),
    Column("data", JSON, nullable=False),  # contract, sites, contacts
    Column("updated_at", Float, nullable=False),
)

devices = Table(
    "devices",
    metadata,
    Column("id", String(200), primary_key=True),
    Column("customer", String(100), nullable=False, index=True),
    Column("site", String(100)),
    Column("name", String(100), nullable=False),
    Column("address", String(255), nullable=False),
    Column("role", String(20), nullable=False),
    Column("os", Text, nullable=False, default=""),
    Column("criticality", String(10), nullable=False),
    Column("tags", JSON, nullable=False),
    Column("parent_id", String(200)),
    Column("source", String(20), nullable=False, default="config"),
    Column("retired_at", Float),
    Column("updated_at", Float, nullable=False),
)

checks = Table(
    "checks",
    metadata,
    Column("id", String(300), primary_key=True),
    Column("device_id", String(200), nullable=False, index=True),
    Column("name", String(100), nullable=False),
    Column("kind", String(30), nullable=False),
    Column("params", JSON, nullable=False),
    Column("interval", Float, nullable=False),
    Column("retry_interval", Float, nullable=False),
    Column("max_attempts", Integer, nullable=False),
    Column("timeout", Float, nullable=False),
    Column("retired_at", Float),
    Column("updated_at", Float, nullable=False),
)

check_state = Table(
    "check_state",
    metadata,
    Column("check_id", String(300), primary_key=True),
    Column("status", SmallInteger, nullable=False),
    Column("state_type", SmallInteger, nullable=False),
    Column("hard_status", SmallInteger, nullable=False),
    Column("attempt", SmallInteger, nullable=False),
    Column("last_check", Float, nullable=False),
    Column("last_change", Float, nullable=False),
    Column("last_hard_change", Float, nullable=False),
    Column("history", BigInteger, nullable=False),
    Column("samples", SmallInteger, nullable=False),
    Column("flapping", Boolean, nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("output", Text, nullable=False),
    Column("duration", Float, nullable=False),
)

state_transitions = Table(
    "state_transitions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("check_id", String(300), nullable=False),
    Column("ts", Float, nullable=False),
    Column("change", String(12), nullable=False),
    Column("state_type", SmallInteger, nullable=False),
    Column("from_status", SmallInteger, nullable=False),
    Column("to_status", SmallInteger, nullable=False),
    Column("attempt", SmallInteger, nullable=False),
    Column("output", Text, nullable=False),
    Index("ix_state_transitions_check_ts", "check_id", "ts"),
)

results = Table(
    "results",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("check_id", String(300), nullable=False),
    Column("ts", Float, nullable=False, index=True),
    Column("status", SmallInteger, nullable=False),
    Column("duration", Float, nullable=False),
    Column("output", Text, nullable=False),
    Column("perfdata", Text, nullable=False),
)

events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts", Float, nullable=False, index=True),
    Column("source", String(30), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("fingerprint", String(64), nullable=False, index=True),
    Column("customer", String(100)),
    Column("device_id", String(200)),
    Column("check_id", String(300)),
    Column("status", SmallInteger, nullable=False),
    Column("message", Text, nullable=False),
    Column("category", String(50), nullable=False, default=""),
    Column("incident_id", Integer),
)

incidents = Table(
    "incidents",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("fingerprint", String(64), nullable=False, index=True),
    Column("kind", String(20), nullable=False),
    Column("state", String(15), nullable=False, index=True),
    Column("priority", String(2), nullable=False),
    Column("severity", SmallInteger, nullable=False),
    Column("title", Text, nullable=False),
    Column("customer", String(100)),
    Column("site", String(100)),
    Column("device_id", String(200)),
    Column("check_id", String(300)),
    Column("category", String(50), nullable=False, default=""),
    Column("flapping", Boolean, nullable=False, default=False),
    Column("opened_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("resolved_at", Float),
    Column("notify_at", Float),
    Column("wait_started", Float),
    Column("notified", Boolean, nullable=False, default=False),
    # Notified once (a return is a reopen); how many devices it last told of, when.
    Column("ever_notified", Boolean, nullable=False, default=False, server_default=false()),
    Column("told_members", Integer, nullable=False, default=0, server_default="0"),
    Column("told_at", Float),
    Column("parent_id", Integer, index=True),
    Column("muted_by", Text, nullable=False, default=""),
    Column("acked_by", String(100)),
    Column("acked_at", Float),
    Column("reason", Text, nullable=False, default=""),
)

incident_members = Table(
    "incident_members",
    metadata,
    Column("incident_id", Integer, ForeignKey("incidents.id"), primary_key=True),
    Column("member", String(300), primary_key=True),
    Column("device_id", String(200)),
    Column("state", String(15), nullable=False),
    Column("since", Float, nullable=False),
    Column("message", Text, nullable=False),
)

incident_log = Table(
    "incident_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("incident_id", Integer, ForeignKey("incidents.id"), nullable=False, index=True),
    Column("ts", Float, nullable=False),
    Column("actor", String(100), nullable=False),
    Column("action", String(30), nullable=False),
    Column("detail", Text, nullable=False),
)

tickets = Table(
    "tickets",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dedup_key", String(100), nullable=False, unique=True),
    Column("incident_id", Integer, index=True),
    Column("system", String(30), nullable=False),
    Column("external_id", String(100)),
    Column("status", String(15), nullable=False),
    Column("subject", Text, nullable=False),
    Column("customer", String(100)),
    Column("device_id", String(200)),
    Column("priority", String(2), nullable=False),
    Column("assignee", String(100)),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("resolved_at", Float),
    # For the monthly report: who resolved it and how, when it was closed, how often
    # the problem came back.
    Column("resolution", Text),
    Column("resolved_by", String(100)),
    Column("closed_at", Float),
    Column("reopened", Integer, nullable=False, default=0, server_default="0"),
)

# A ticket's history. `outbox_id`: the outbox item that wrote it (unique, so a
# redelivered operation writes nothing twice); None for what people wrote.
ticket_comments = Table(
    "ticket_comments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ticket_id", Integer, ForeignKey("tickets.id"), nullable=False, index=True),
    Column("ts", Float, nullable=False),
    Column("author", String(100), nullable=False),
    Column("body", Text, nullable=False),
    Column("kind", String(15), nullable=False, default="note", server_default="note"),
    Column("outbox_id", Integer),
    Index("ux_ticket_comments_outbox_id", "outbox_id", unique=True),
)

# Work on a built-in ticket: who, how long, what was done (the monthly report).
ticket_worklog = Table(
    "ticket_worklog",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ticket_id", Integer, ForeignKey("tickets.id"), nullable=False, index=True),
    Column("ts", Float, nullable=False),
    Column("author", String(100), nullable=False),
    Column("minutes", Integer, nullable=False),
    Column("note", Text, nullable=False),
)

# External ticket systems: which ticket each incident (dedup key) has in which
# configured system. The source of truth for "is there a ticket already" (the
# systems' own search is eventually consistent), so a restart opens no second one.
ticket_refs = Table(
    "ticket_refs",
    metadata,
    Column("system", String(100), primary_key=True),  # alerting.ticket_systems[].name
    Column("dedup_key", String(100), primary_key=True),
    Column("external_id", String(100), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("incident_id", Integer, index=True),
    Column("linked_by", String(100)),  # an operator linked it by hand (else monitord)
)

# Intent log of external ticket operations: an outbox item is recorded here before
# its first request, so a retry knows an earlier attempt may have reached the system
# (and checks for its note instead of writing it twice).
ticket_attempts = Table(
    "ticket_attempts",
    metadata,
    Column("outbox_id", Integer, primary_key=True),
    Column("system", String(100), nullable=False),
    Column("attempted_at", Float, nullable=False, index=True),
)

# Health of each external ticket system: failing since when and why, whether its
# internal incidents are up, and `blocked` (it refused our credentials or queue:
# later operations wait parked, without requests, until an operator retries).
ticket_systems = Table(
    "ticket_systems",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("failing_since", Float),
    Column("last_error", Text, nullable=False, default=""),
    Column("last_ok_at", Float),
    Column("unreachable_raised", Boolean, nullable=False, default=False),
    Column("blocked", Text, nullable=False, default=""),
    Column("parked_raised", Boolean, nullable=False, default=False),
    Column("updated_at", Float, nullable=False),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(10), nullable=False),  # ticket | page
    Column("target", String(100), nullable=False),  # ticket system or channel name
    Column("op_key", String(150), nullable=False, unique=True),  # idempotency of the op
    Column("op", String(20), nullable=False),
    Column("incident_id", Integer, index=True),
    Column("payload", JSON, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", Float, nullable=False),
    Column("delivered_at", Float),
    Column("parked", Boolean, nullable=False, default=False),
    Column("last_error", Text),
    Index("ix_outbox_pending", "delivered_at", "next_attempt_at"),
)

pages = Table(
    "pages",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("outbox_id", Integer, nullable=False, unique=True),
    Column("incident_id", Integer, index=True),
    Column("channel", String(100), nullable=False),
    Column("recipient", String(100), nullable=False),
    Column("kind", String(15), nullable=False),  # trigger | acknowledge | resolve
    Column("ts", Float, nullable=False),
    Column("text", Text, nullable=False),
)

# Heartbeats (passive checks): the newest signals per check, so a restart
# neither forgets a reported failure nor restarts a new check's first grace.
heartbeats = Table(
    "heartbeats",
    metadata,
    Column("check_id", String(300), primary_key=True),
    Column("created_at", Float, nullable=False),  # start of a never-pinged check's grace
    Column("last_kind", String(10)),  # newest signal: success | start | fail
    Column("last_at", Float),
    Column("last_body", Text, nullable=False, default=""),
    Column("outcome_kind", String(10)),  # newest success or fail
    Column("outcome_at", Float),
    Column("outcome_body", Text, nullable=False, default=""),
    Column("last_success_at", Float),
    Column("started_at", Float),  # an open /start, cleared by success or fail
)

# Recent signals per check (the newest 100 are kept), for looking back at a job.
heartbeat_pings = Table(
    "heartbeat_pings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("check_id", String(300), nullable=False),
    Column("kind", String(10), nullable=False),
    Column("ts", Float, nullable=False),
    Column("body", Text, nullable=False),
    Index("ix_heartbeat_pings_check_id", "check_id", "id"),
)

# Silences and maintenance windows made through the API or the CLI (those in the
# config live in the config). Rows are never deleted: expiring a silence early or
# deleting a window sets `ended_at`/`ended_by`, so who muted what, and when, stays
# on record next to the incidents it muted.
suppressions = Table(
    "suppressions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(12), nullable=False),  # silence | maintenance
    Column("spec", JSON, nullable=False),  # the Silence / MaintenanceWindow as JSON
    Column("created_by", String(100), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float),  # when it stops by itself; None: never
    Column("ended_at", Float),  # expired or deleted early
    Column("ended_by", String(100)),
)

# RMM sources (monitord.rmm): what each RMM account knows, mapped onto monitord's
# inventory, and every failure it reported with monitord's verdict on it.

# One row per RMM device: the mapping RMM id ↔ monitord device and the synced
# fields. `state`: active (in the inventory), unmapped (its client maps to no
# customer), conflict (reported, not synced) or retired (gone from the RMM longer
# than rmm.retire_after; the row and the device's history stay).
rmm_devices = Table(
    "rmm_devices",
    metadata,
    Column("source", String(30), primary_key=True),
    Column("rmm_id", String(100), primary_key=True),
    Column("device_id", String(200), index=True),
    Column("linked", Boolean, nullable=False, default=False),  # a device of the config
    Column("state", String(15), nullable=False),
    Column("customer", String(100)),
    Column("site", String(100)),
    Column("name", String(100), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("client_id", String(100), nullable=False),
    Column("client_name", Text, nullable=False),
    Column("site_id", String(100), nullable=False),
    Column("site_name", Text, nullable=False),
    Column("address", String(255), nullable=False),
    Column("external_ip", String(64), nullable=False, default=""),
    Column("os", Text, nullable=False, default=""),
    Column("data", JSON, nullable=False),  # addresses, description, extra as the RMM gave
    Column("last_seen", Float),  # the agent's last report
    Column("logged_on", Text, nullable=False, default=""),
    Column("first_synced", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("missing_since", Float),  # absent from the RMM's inventory since
    Column("retired_at", Float),
)

# Who was logged on where, and when (for caller lookup: name → the PC they sit at).
# A row lasts while the same user is seen on the device; `ended_at` when not any more.
rmm_logons = Table(
    "rmm_logons",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(30), nullable=False),
    Column("rmm_id", String(100), nullable=False),
    Column("device_id", String(200)),
    Column("user", Text, nullable=False),  # as the RMM writes it: DOMAIN\user
    Column("username", String(200), nullable=False, index=True),  # lower case, no domain
    Column("first_seen", Float, nullable=False),
    Column("last_seen", Float, nullable=False),
    Column("ended_at", Float),
    Index("ix_rmm_logons_device", "source", "rmm_id", "ended_at"),
)

# One row per RMM failure while it lasts (a key failing again after its clearance is
# a new row), and per blind spot (kind "blind-spot": monitord's own fault the RMM
# does not report). `verdict` with its `evidence` and deciding `rule`; `fingerprint`
# and `incident_id` of the incident the verdict feeds.
rmm_observations = Table(
    "rmm_observations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(30), nullable=False),
    Column("key", String(200), nullable=False),
    Column("origin", String(10), nullable=False),  # poll | webhook | monitord
    Column("rmm_device_id", String(100), nullable=False),
    Column("device_id", String(200), index=True),
    Column("customer", String(100)),
    Column("kind", String(15), nullable=False),
    Column("category", String(30), nullable=False),
    Column("check_type", String(50), nullable=False),
    Column("description", Text, nullable=False),
    Column("output", Text, nullable=False),
    Column("status", String(30), nullable=False),
    Column("started_at", Float),
    Column("consecutive_fails", Integer, nullable=False),
    Column("first_seen", Float, nullable=False),
    Column("last_seen", Float, nullable=False),
    Column("cleared_at", Float, index=True),
    Column("verdict", String(20)),
    Column("evidence", JSON, nullable=False),
    Column("rule", Text, nullable=False, default=""),
    Column("decided_at", Float),
    Column("verified_at", Float),
    Column("check_id", String(300)),  # monitord's own check covering the same fault
    Column("fingerprint", String(64), index=True),
    Column("incident_id", Integer, index=True),
    Column("escalated_at", Float),  # a disputed failure ticketed after rmm persist
    Index("ix_rmm_observations_key", "source", "key"),
)

rmm_verdict_log = Table(
    "rmm_verdict_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("observation_id", Integer, nullable=False, index=True),
    Column("ts", Float, nullable=False),
    Column("verdict", String(20), nullable=False),
    Column("rule", Text, nullable=False),
)

# Health of each source's feed. `stale_since` is set once no good poll came for
# rmm.stale_after; `stale_raised` while the internal "RMM feed stale" incident is up.
rmm_feeds = Table(
    "rmm_feeds",
    metadata,
    Column("source", String(30), primary_key=True),
    Column("kind", String(20), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("last_poll_at", Float),
    Column("last_good_at", Float),
    Column("failing_since", Float),
    Column("error", Text, nullable=False, default=""),
    Column("error_reason", String(20), nullable=False, default=""),
    Column("stale_since", Float),
    Column("stale_raised", Boolean, nullable=False, default=False),
    Column("last_sync_at", Float),
    Column("last_good_sync_at", Float),
    Column("sync_error", Text, nullable=False, default=""),
    Column("counts", JSON, nullable=False),  # the last sync's added/updated/retired/…
)

# What the sync could not decide: a device name another customer has, the same name
# twice in one customer, a client the mapping does not name. Reported, never guessed.
rmm_conflicts = Table(
    "rmm_conflicts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(30), nullable=False),
    Column("kind", String(20), nullable=False),  # other-customer | duplicate | unmapped-client
    Column("subject", String(100), nullable=False),  # RMM device or client id
    Column("name", Text, nullable=False),
    Column("customer", String(100)),
    Column("other", Text, nullable=False, default=""),
    Column("detail", Text, nullable=False),
    Column("first_seen", Float, nullable=False),
    Column("last_seen", Float, nullable=False),
    Column("resolved_at", Float),
    Index("ix_rmm_conflicts_subject", "source", "kind", "subject"),
)

# Paging (alerts.paging). On-call overrides made through the API or the CLI (those
# of the config live in the config); a deleted one keeps its row (`deleted_at`).
oncall_overrides = Table(
    "oncall_overrides",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("schedule", String(100), nullable=False),
    Column("layer", String(100), nullable=False),
    Column("engineer", String(100), nullable=False),
    Column("start", Float, nullable=False),
    Column("end", Float, nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Column("created_by", String(100), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("deleted_at", Float),
    Column("deleted_by", String(100)),
    Index("ix_oncall_overrides_layer", "schedule", "layer"),
)

# One escalation per notified incident (a reopen starts another): where it stands
# (pending until a deferred page is due, active, acked, exhausted, resolved), the
# next step and when it fires, who holds the acknowledgement and until when.
page_escalations = Table(
    "page_escalations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("incident_id", Integer, nullable=False, index=True),
    Column("policy", String(100), nullable=False),
    Column("state", String(12), nullable=False, index=True),
    Column("step", Integer, nullable=False, default=0),
    Column("loop", Integer, nullable=False, default=0),
    Column("next_at", Float),
    Column("reason", Text, nullable=False, default=""),
    Column("priority", String(2), nullable=False),
    Column("customer", String(100)),
    Column("created_at", Float, nullable=False),
    Column("started_at", Float),
    Column("updated_at", Float, nullable=False),
    Column("acked_by", String(100)),
    Column("acked_at", Float),
    Column("acked_via", String(30)),
    Column("ack_expires_at", Float),
    Column("acked_layer", String(201)),  # schedule/layer the acker was paged through
)

# Who an escalation paged, at which step, through what target; `outbox_id` of the
# page (None while `held` back by the per-engineer rate limit for a summary).
page_recipients = Table(
    "page_recipients",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("escalation_id", Integer, nullable=False, index=True),
    Column("incident_id", Integer, nullable=False, index=True),
    Column("engineer", String(100), nullable=False),
    Column("step", Integer, nullable=False),
    Column("loop", Integer, nullable=False),
    Column("via", String(201), nullable=False),
    Column("action", String(12), nullable=False),  # trigger | handover
    Column("outbox_id", Integer, index=True),
    Column("held", Boolean, nullable=False, default=False),
    Column("created_at", Float, nullable=False),
    Index("ix_page_recipients_engineer", "engineer", "created_at"),
)

# The delivery of one page outbox item: which of the engineer's channels it is on,
# consecutive failures there, and an intent record (`attempted_at`) written before
# each request, so a retry after a crash first asks the service (where it can)
# whether the interrupted attempt went out.
page_deliveries = Table(
    "page_deliveries",
    metadata,
    Column("outbox_id", Integer, primary_key=True),
    Column("channel_index", Integer, nullable=False, default=0),
    Column("channel", String(100), nullable=False),
    Column("recipient", String(200), nullable=False),
    Column("failures", Integer, nullable=False, default=0),
    Column("attempted_at", Float),
    Column("sent_at", Float),
    Column("remote_id", String(100)),
    Column("updated_at", Float, nullable=False),
    Index("ix_page_deliveries_remote", "channel", "recipient", "remote_id"),
)

# Health of each paging channel (its internal incident while it keeps failing) and,
# for Telegram, the next getUpdates offset.
page_channels = Table(
    "page_channels",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("failing_since", Float),
    Column("last_error", Text, nullable=False, default=""),
    Column("raised", Boolean, nullable=False, default=False),
    Column("last_ok_at", Float),
    Column("update_offset", BigInteger),
    Column("updated_at", Float, nullable=False),
)

# Every acknowledgement: who, when, through what (link, telegram, reply, api, cli).
page_acks = Table(
    "page_acks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("incident_id", Integer, nullable=False, index=True),
    Column("escalation_id", Integer),
    Column("by", String(100), nullable=False),
    Column("via", String(30), nullable=False),
    Column("ts", Float, nullable=False),
)
