"""Readiness: can this deployment do its work right now? The database answers, its schema is the
one this code was written for, and some worker has sent a heartbeat recently. /readyz and
`aftercare doctor` ask the same questions."""

import logging
from datetime import datetime, timedelta
from functools import cache

from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from service import heartbeat
from service.db import MIGRATIONS

log = logging.getLogger(__name__)
OK, SKIPPED = "ok", "not checked"


@cache
def code_heads() -> frozenset[str]:
    return frozenset(ScriptDirectory(str(MIGRATIONS)).get_heads())


def checks(engine: Engine, now: datetime, stale_after: timedelta) -> dict[str, str]:
    """Each check's result: OK, SKIPPED (an earlier one failed), or what is wrong."""
    try:
        with engine.connect() as conn:
            current = _applied(conn)
            if current != code_heads():
                return {"database": OK,
                        "migrations": f"the database is at {_names(current)}, this code needs "
                                      f"{_names(code_heads())}: run `aftercare db upgrade`",
                        "worker": SKIPPED}
            last = heartbeat.freshest(conn)
    except SQLAlchemyError as exc:
        log.warning("readiness: database unreachable: %s", exc)
        reason = type(getattr(exc, "orig", None) or exc).__name__  # no host or user in the answer
        return {"database": f"unreachable ({reason})", "migrations": SKIPPED, "worker": SKIPPED}
    return {"database": OK, "migrations": OK, "worker": _worker(last, now, stale_after)}


def _applied(conn: Connection) -> frozenset[str]:
    """The revisions in alembic_version (read directly: Alembic's own context logs every call)."""
    if not inspect(conn).has_table("alembic_version"):
        return frozenset()
    return frozenset(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())


def failed(results: dict[str, str]) -> list[str]:
    return [name for name, result in results.items() if result not in (OK, SKIPPED)]


def _worker(last: datetime | None, now: datetime, stale_after: timedelta) -> str:
    if last is None:
        return "no worker has ever sent a heartbeat: is `aftercare worker` running?"
    age = now - last
    if age > stale_after:
        return (f"the latest worker heartbeat is {age.total_seconds():.0f} s old "
                f"(limit {stale_after.total_seconds():.0f} s)")
    return OK


def _names(heads: frozenset[str]) -> str:
    return ", ".join(sorted(heads)) or "no revision"
