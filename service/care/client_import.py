"""Clients from a CSV file (`aftercare import-clients`).

Every row is checked first, with the JSON API's own rules (schemas.ClientIn), and every problem is
reported with its line number, so that one pass over the file fixes them all. A row that matches
an existing client of the clinic (same phone, else same email) updates it, as an enrolment does:
importing the same file twice changes nothing.
"""

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TextIO

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from service.care.enrolment import upsert_client
from service.care.schemas import ClientIn, field_errors
from service.domain.i18n import N_
from service.models import Clinic

COLUMNS = tuple(ClientIn.model_fields)  # name, phone, email, language, time_zone, sms_consent


@dataclass(frozen=True)
class Row:
    line: int
    client: ClientIn


@dataclass(frozen=True)
class Problem:
    line: int
    field: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.field}: {self.reason}"


class BadHeader(Exception):
    """The file is not a client list at all: no row can be read."""


def read(stream: TextIO) -> tuple[list[Row], list[Problem]]:
    """The valid rows and the problems of the others (a row may have several). Raises BadHeader
    when the first line does not name known columns."""
    reader = csv.DictReader(stream)
    header = [name.strip() for name in reader.fieldnames or []]
    unknown = [name for name in header if name not in COLUMNS]
    if unknown or "name" not in header:
        reason = (f"unknown column {unknown[0]!r}" if unknown else "no 'name' column")
        raise BadHeader(f"line 1: {reason} (the columns are {', '.join(COLUMNS)})")
    rows, problems, phones = [], [], {}
    for record in reader:
        line = reader.line_num
        if None in record:
            problems.append(Problem(line, "row", N_("more cells than columns")))
            continue
        values = {key.strip(): value.strip() for key, value in record.items() if value and value.strip()}
        if not values:  # a spreadsheet's empty row
            continue
        parsed = _parse(line, values)
        if isinstance(parsed, ClientIn) and parsed.phone in phones:
            parsed = [Problem(line, "phone", f"same number as line {phones[parsed.phone]}")]
        if isinstance(parsed, list):
            problems += parsed
            continue
        if parsed.phone:
            phones[parsed.phone] = line
        rows.append(Row(line, parsed))
    return rows, problems


def _parse(line: int, values: dict) -> ClientIn | list[Problem]:
    try:
        client = ClientIn.model_validate(values)
    except ValidationError as exc:
        return [Problem(line, field, reason) for field, reason in field_errors(exc).items()]
    if not client.phone and not client.email:
        return [Problem(line, "phone", N_("a phone or an email is required"))]
    return client


class Conflict(Exception):
    """A row matched one client by email while its phone belongs to another."""


def save(session: Session, clinic: Clinic, rows: Iterable[Row], now: datetime) -> int:
    """Adds or updates each row's client in the session (the caller commits); returns how many."""
    count = 0
    for row in rows:
        try:
            upsert_client(session, clinic, row.client, now)
        except IntegrityError:
            raise Conflict(Problem(row.line, "phone", N_("belongs to another client of the clinic "
                                                         "than the email"))) from None
        count += 1
    return count
