"""The ticket tables (and the incident columns the lifecycle needs): the migration
creates exactly what the schema declares, on both back-ends."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from monitord.storage.db import open_database
from monitord.storage.schema import metadata

MINE = ("ticket", "ever_notified", "told_members", "told_at")


def test_migration_matches_the_schema(db_url: str) -> None:
    engine = open_database(db_url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
        assert [d for d in diff if any(word in repr(d) for word in MINE)] == []
    finally:
        engine.dispose()
