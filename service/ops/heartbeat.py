"""Worker heartbeats: each worker process keeps its row fresh, so that /readyz and the metrics can
tell whether any worker is alive, on whichever host it runs."""

from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.engine import Connection, Engine

from service.db import dialect_insert
from service.models import WorkerHeartbeat, utcnow

table = WorkerHeartbeat.__table__
KEEP = timedelta(days=1)  # the row of a worker that died without a word goes after this


def beat(engine: Engine, worker_id: str) -> None:
    now = utcnow()
    with engine.begin() as conn:
        insert = dialect_insert(conn)(table).values(worker_id=worker_id, started_at=now,
                                                    last_seen_at=now)
        conn.execute(insert.on_conflict_do_update(index_elements=["worker_id"],
                                                  set_={"last_seen_at": now}))
        conn.execute(delete(table).where(table.c.last_seen_at < now - KEEP))


def freshest(conn: Connection) -> datetime | None:
    """The latest heartbeat of any worker."""
    return conn.execute(select(func.max(table.c.last_seen_at))).scalar()


def alive(conn: Connection, now: datetime, stale_after: timedelta) -> int:
    return conn.execute(select(func.count()).select_from(table)
                        .where(table.c.last_seen_at >= now - stale_after)).scalar()


def others_alive(conn: Connection, worker_id: str, now: datetime, stale_after: timedelta) -> int:
    """Live workers besides this one (whose own first beat may not be written yet)."""
    return conn.execute(select(func.count()).select_from(table)
                        .where(table.c.last_seen_at >= now - stale_after,
                               table.c.worker_id != worker_id)).scalar()
