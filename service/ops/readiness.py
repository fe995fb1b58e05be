"""Readiness: can this deployment do its work right now? The database answers, its schema is the
one this code was written for, some worker has sent a heartbeat recently, and dispatch is not
stalled (a live heartbeat does not prove that anything is sent). /readyz and `aftercare doctor` ask
the same questions.

A backlog alone is not a stall: a morning wave at a carrier's 30 texts a second keeps routine texts
waiting for many minutes while the worker sends all it may. Failing then would take the web app,
and with it the webhook that carries a client's red flag, out of a load balancer's rotation. So a
routine wait fails readiness only when nothing is being sent (no claim in hand, or one that has
hung); an urgent message (a reply, an alert) is never meant to wait, so its wait alone fails it."""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from alembic.script import ScriptDirectory
from sqlalchemy import func, inspect, select, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from service.db import MIGRATIONS
from service.messaging import outbox
from service.models import Message
from service.ops import heartbeat
from service.ops.collector import due_backlog

log = logging.getLogger(__name__)
OK, SKIPPED = "ok", "not checked"


@dataclass(frozen=True)
class Readiness:
    checks: dict[str, str]  # each check's result: OK, SKIPPED (an earlier one failed), or what is wrong
    oldest_due_seconds: int | None  # how long the oldest due message has waited; None: not read

    @property
    def failed(self) -> list[str]:
        return [name for name, result in self.checks.items() if result not in (OK, SKIPPED)]


@cache
def code_heads() -> frozenset[str]:
    return frozenset(ScriptDirectory(str(MIGRATIONS)).get_heads())


def check(engine: Engine, now: datetime, stale_after: timedelta,
          max_due_age: timedelta) -> Readiness:
    try:
        with engine.connect() as conn:
            current = _applied(conn)
            if current != code_heads():
                return Readiness({
                    "database": OK,
                    "migrations": f"the database is at {_names(current)}, this code needs "
                                  f"{_names(code_heads())}: run `aftercare db upgrade`",
                    "worker": SKIPPED, "dispatch": SKIPPED}, None)
            last = heartbeat.freshest(conn)
            oldest = [first for _, first in conn.execute(due_backlog(now))]  # per priority
            # The newest claim in hand (ix_message_claimed): the worker is sending right now.
            claimed = conn.execute(select(func.max(Message.claimed_at))
                                   .where(Message.status == "claimed")).scalar()
    except SQLAlchemyError as exc:
        log.warning("readiness: database unreachable: %s", exc)
        reason = type(getattr(exc, "orig", None) or exc).__name__  # no host or user in the answer
        return Readiness({"database": f"unreachable ({reason})", "migrations": SKIPPED,
                          "worker": SKIPPED, "dispatch": SKIPPED}, None)
    waits = {priority: max(now - first, timedelta(0)) if first else timedelta(0)
             for priority, first in zip(outbox.PRIORITIES, oldest, strict=True)}
    sending = claimed is not None and now - claimed <= max_due_age
    waited = max(waits.values())
    return Readiness({"database": OK, "migrations": OK, "worker": _worker(last, now, stale_after),
                      "dispatch": _dispatch(waits[outbox.URGENT], waited, sending,
                                            max_due_age)},
                     int(waited.total_seconds()))


def _applied(conn: Connection) -> frozenset[str]:
    """The revisions in alembic_version (read directly: Alembic's own context logs every call)."""
    if not inspect(conn).has_table("alembic_version"):
        return frozenset()
    return frozenset(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())


def _worker(last: datetime | None, now: datetime, stale_after: timedelta) -> str:
    if last is None:
        return "no worker has ever sent a heartbeat: is `aftercare worker` running?"
    age = now - last
    if age > stale_after:
        return (f"the latest worker heartbeat is {age.total_seconds():.0f} s old "
                f"(limit {stale_after.total_seconds():.0f} s)")
    return OK


def _dispatch(urgent: timedelta, waited: timedelta, sending: bool, limit: timedelta) -> str:
    if urgent > limit:
        return (f"an urgent message (a reply or a staff alert) has waited "
                f"{urgent.total_seconds():.0f} s (limit {limit.total_seconds():.0f} s): "
                f"dispatch is stalled")
    if waited > limit and not sending:
        return (f"the oldest due message has waited {waited.total_seconds():.0f} s (limit "
                f"{limit.total_seconds():.0f} s) and nothing is being sent: dispatch is stalled")
    return OK


def _names(heads: frozenset[str]) -> str:
    return ", ".join(sorted(heads)) or "no revision"
