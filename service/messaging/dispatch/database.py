"""A drain's database steps, awaited on the event loop (an async engine): each in its own
transaction, tried again while the database is unreachable."""

import asyncio
import logging

from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)

# A database step is tried this many times (about 30 s) before the tick gives up.
DB_ATTEMPTS = 20


async def in_transaction(db: AsyncEngine, fn, *args):
    """Runs fn(connection, *args) in a transaction, again while the database is unreachable
    (restarted, a connection killed): each database step of a drain can be repeated safely, and
    an outcome must not be lost once its message went out."""
    delay = 0.05
    for attempt in range(DB_ATTEMPTS):
        try:
            async with db.begin() as conn:
                return await conn.run_sync(fn, *args)
        except (OperationalError, InterfaceError) as exc:
            if attempt == DB_ATTEMPTS - 1:
                raise
            log.warning("database unavailable, retrying in %.2f s: %s", delay,
                        str(exc).splitlines()[0][:200])
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
