"""Whose rows: every query of a clinic's data goes through here, so that one clinic never reads,
changes or erases another's. A row is the clinic's by its clinic_id or, for a table without one
(a check-in), by its client's.

The worker's outbox claim is left out on purpose: it serves every clinic (messaging/outbox.py).
"""

from sqlalchemy import ColumnElement
from sqlmodel import Session, SQLModel, select

from service.models import Client


def belongs(model: type[SQLModel], clinic_id: int) -> ColumnElement[bool]:
    """The condition "this row is the clinic's", for a query that joins or selects more than one
    table (mine() is the usual way)."""
    columns = model.__table__.c
    if "clinic_id" in columns:
        return columns.clinic_id == clinic_id
    if "client_id" in columns:
        return columns.client_id.in_(select(Client.id).where(Client.clinic_id == clinic_id))
    raise TypeError(f"{model.__name__} belongs to no clinic")


def mine(model: type[SQLModel], clinic_id: int):
    """select(model) of the clinic's rows only; add the rest of the query to it."""
    return select(model).where(belongs(model, clinic_id))


def theirs(model: type[SQLModel], client: Client) -> ColumnElement[bool]:
    """The condition "this row is the client's", within the client's clinic (a row without a
    clinic_id of its own, a check-in, is its client's clinic's already)."""
    columns = model.__table__.c
    condition = columns.client_id == client.id
    return condition & (columns.clinic_id == client.clinic_id) if "clinic_id" in columns else condition


def owned(session: Session, model: type[SQLModel], clinic_id: int, row_id: int):
    """The row if it is the clinic's; None if it does not exist or is another clinic's (callers
    answer 404 to both: no hint that it exists)."""
    return session.exec(mine(model, clinic_id).where(model.__table__.c.id == row_id)).first()
