"""Run the Alembic migrations shipped inside the package."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config() -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (idempotent; run on every start)."""
    cfg = alembic_config()
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            # pysqlite opens no transaction before DDL, so each CREATE would commit on
            # its own and a crash mid-migration (kill -9 at the first start) would leave
            # tables without their revision: one transaction, all or nothing.
            conn.exec_driver_sql("BEGIN")
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
