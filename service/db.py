"""The database engine, request-scoped sessions and schema migrations.

The schema is only ever built by Alembic migrations, in the app and in the tests alike.
"""

import os
from pathlib import Path

import click
from alembic import command
from alembic.config import Config as AlembicConfig
from flask import Flask, current_app, g
from sqlalchemy import event
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import URL, Engine
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlmodel import Session, create_engine
from werkzeug.routing import IntegerConverter

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# Ids are PostgreSQL integers: a bigger one names no row, and must not reach a query (where it
# overflows the driver: a 500). `<int:...>` in every route stops there (RowId below): a 404.
MAX_ID = 2**31 - 1


def make_engine(url: str) -> Engine:
    # hide_parameters: a failed statement's error (and so the log line and traceback that quote
    # it) names the SQL but not the values: names, phone numbers, pain scores.
    if url.startswith("sqlite"):
        engine = create_engine(url, hide_parameters=True,
                               connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # A bounded connect: /readyz and doctor must answer even when the server is unreachable.
    engine = create_engine(url, hide_parameters=True, pool_pre_ping=True, pool_size=10,
                           max_overflow=10, connect_args={"connect_timeout": 5})
    event.listen(engine, "handle_error", _drop_server_detail)
    return engine


def make_async_engine(url: URL) -> AsyncEngine:
    """The same database for asyncio code (the dispatcher): psycopg's own async mode, or
    aiosqlite. No pre-ping: every caller retries a step that meets a dropped connection."""
    if url.get_backend_name() == "sqlite":
        engine = create_async_engine(url.set(drivername="sqlite+aiosqlite"), hide_parameters=True,
                                     connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_async_engine(url, hide_parameters=True, connect_args={"connect_timeout": 5})
    event.listen(engine.sync_engine, "handle_error", _drop_server_detail)
    return engine


def _drop_server_detail(context) -> None:
    """PostgreSQL quotes the values itself in an error's DETAIL ("Failing row contains (7, Dana
    Diaz, +12025550123, ...)", "Key (phone)=(...) already exists"), where hide_parameters does
    not reach: the message keeps its first line, which names the constraint (the driver's
    exception keeps every field in .diag, for code that needs one)."""
    for error in (context.original_exception, context.sqlalchemy_exception):
        if error is not None and error.args and isinstance(error.args[0], str):
            error.args = (error.args[0].split("\nDETAIL:")[0], *error.args[1:])


def dialect_insert(conn):
    """INSERT with the dialect's ON CONFLICT clauses (SQLite and PostgreSQL)."""
    return {"sqlite": sqlite_insert, "postgresql": pg_insert}[conn.dialect.name]


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # WAL lets the web process read while the worker writes; foreign keys are off by default.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def alembic_config(url: str) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    if url.startswith("sqlite:///"):
        _create_private(Path(url.removeprefix("sqlite:///")))
    command.upgrade(alembic_config(url), revision)


def _create_private(path: Path) -> None:
    """The SQLite file holds every client's data: readable by its owner and group only, whatever
    the umask of the process that creates it (SQLite gives its -wal and -shm files the database
    file's mode)."""
    path.parent.mkdir(mode=0o750, parents=True, exist_ok=True)
    if path.name != ":memory:":
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o640))


def engine() -> Engine:
    return current_app.extensions["aftercare.engine"]


def session() -> Session:
    """The request's session, opened on first use and closed at teardown."""
    if "db_session" not in g:
        g.db_session = Session(engine(), expire_on_commit=False)
    return g.db_session


def _close_session(_exc=None) -> None:
    s = g.pop("db_session", None)
    if s is not None:
        s.close()


@click.group("db")
def db_cli() -> None:
    """Database commands."""


@db_cli.command("upgrade")
def upgrade_command() -> None:
    """Migrate the database to the newest schema."""
    upgrade(current_app.config["DATABASE_URL"])
    click.echo("database is up to date")


class RowId(IntegerConverter):
    """`<int:...>` in a route: a row id, so at most MAX_ID (a bigger one is a 404)."""

    def __init__(self, map, *args, **kwargs):
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


def init_app(app: Flask) -> None:
    """Before the blueprints: their routes' `<int:...>` are RowIds."""
    app.url_map.converters["int"] = RowId
    app.extensions["aftercare.engine"] = make_engine(app.config["DATABASE_URL"])
    app.teardown_appcontext(_close_session)
    app.cli.add_command(db_cli)
