"""Clinics kept apart (issue 14, item 4): one phone number can be a client at two clinics, and
whatever one clinic does with its client (export, erase, any page or API call) reads and changes
only that clinic's rows."""

import json
from itertools import count

import pytest
import sqlalchemy as sa
from sqlmodel import SQLModel

from service.models import CheckIn, Client, Escalation, InboundMessage
from tests.conftest import BOTH_BACKENDS, FROM_NUMBER, make_clinic
from tests.helpers import NOW, PHONE, enrol
from tests.web_helpers import csrf_token, log_in, make_staff

_sids = count(1)


def reply(session, client: Client, body: str, *, linked: bool = True) -> InboundMessage:
    """A text from the client's phone, stored at its clinic (as the webhook stores it) with its
    check-in and an escalation; `linked=False`: a text the clinic could not tie to a client yet."""
    inbound = InboundMessage(provider_sid=f"SM{next(_sids):032x}", clinic_id=client.clinic_id,
                             client_id=client.id if linked else None, from_number=client.phone,
                             to_number=FROM_NUMBER, body=body, received_at=NOW)
    session.add(inbound)
    session.flush()
    if not linked:
        session.commit()
        return inbound
    session.add(CheckIn(client_id=client.id, answer="worse", pain=6, source="sms",
                        inbound_message_id=inbound.id, created_at=NOW))
    session.add(Escalation(clinic_id=client.clinic_id, client_id=client.id, severity="concern",
                           reasons=["said worse"], ack_note=f"called {client.name}"))
    session.commit()
    return inbound


@pytest.fixture
def two_clinics(client, session):
    """Ana's phone is a client at clinic A and at clinic B; each clinic has her texts, check-ins,
    an escalation, messages and audit events."""
    (a, a_key), (b, b_key) = make_clinic(session, name="Clinic A"), make_clinic(session, name="Clinic B")
    ids = {}
    for clinic, key in ((a, a_key), (b, b_key)):
        ids[clinic.name] = enrol(client, key, person={"name": f"Ana at {clinic.name}"},
                                 external_id="booking-1")["client"]["id"]
    ana_a, ana_b = session.get(Client, ids["Clinic A"]), session.get(Client, ids["Clinic B"])
    assert ana_a.phone == ana_b.phone == PHONE
    reply(session, ana_a, "A: worse today")
    reply(session, ana_a, "A: sent before A knew it was Ana", linked=False)
    reply(session, ana_b, "B: still numb in my left leg")
    return a, b, ana_a, ana_b


def rows_of(session, clinic_id: int, client_id: int) -> dict[str, list[tuple]]:
    """Every row of every table that is the clinic's (by clinic_id, or by its client), as stored."""
    session.expire_all()
    found = {}
    for table in SQLModel.metadata.sorted_tables:
        mine = [table.c[name] == value for name, value in
                (("clinic_id", clinic_id), ("client_id", client_id)) if name in table.c]
        if mine:
            found[table.name] = [tuple(row) for row in session.execute(
                sa.select(table).where(sa.or_(*mine)).order_by(*table.primary_key))]
    return found


def erase(how: str, web, runner, session, clinic, client_id: int) -> None:
    if how == "cli":
        result = runner.invoke(args=["erase-client", str(client_id), "--yes"])
        assert result.exit_code == 0, result.output
    else:
        staff = make_staff(session, clinic, f"owner@{clinic.id}.example")
        log_in(web, staff.email)
        page = web.get(f"/clients/{client_id}/erase")
        response = web.post(f"/clients/{client_id}/erase",
                            data={"csrf_token": csrf_token(page), "confirm": "ERASE"})
        assert response.status_code == 302


def export(how: str, web, runner, session, clinic, client_id: int) -> str:
    if how == "cli":
        result = runner.invoke(args=["export-client", str(client_id)])
        assert result.exit_code == 0, result.output
        return result.stdout
    staff = make_staff(session, clinic, f"owner@{clinic.id}.example")
    log_in(web, staff.email)
    response = web.get(f"/clients/{client_id}/export.json")
    assert response.status_code == 200
    return response.get_data(as_text=True)


@pytest.mark.parametrize("how", ["cli", "staff"])
@pytest.mark.parametrize("backend", BOTH_BACKENDS)
def test_erasing_a_client_at_one_clinic_leaves_the_other_clinic_s_rows_as_they_were(
        client, runner, session, two_clinics, how):
    a, b, ana_a, ana_b = two_clinics
    theirs = rows_of(session, b.id, ana_b.id)
    assert all(theirs[table] for table in ("client", "visit", "message", "inbound_message",
                                           "check_in", "escalation", "audit_event"))

    erase(how, client, runner, session, a, ana_a.id)

    assert rows_of(session, b.id, ana_b.id) == theirs  # byte for byte
    assert [(i.from_number, i.body) for i in session.exec(
        sa.select(InboundMessage).where(InboundMessage.clinic_id == a.id)).scalars()] == [
        ("[erased]", ""), ("[erased]", "")]  # A's own, the unlinked one too
    assert session.get(Client, ana_a.id).phone is None


@pytest.mark.parametrize("how", ["cli", "staff"])
def test_an_export_at_one_clinic_holds_nothing_of_the_other_clinic(
        client, runner, session, two_clinics, how):
    a, b, ana_a, ana_b = two_clinics
    data = export(how, client, runner, session, a, ana_a.id)

    assert "Clinic B" not in data and "B: still numb" not in data
    exported = json.loads(data)
    assert exported["client"]["id"] == ana_a.id
    assert sorted(i["body"] for i in exported["inbound_messages"]) == [
        "A: sent before A knew it was Ana", "A: worse today"]
    for section, rows in exported.items():
        if isinstance(rows, list):
            assert all(row.get("clinic_id", a.id) == a.id and row.get("client_id", ana_a.id)
                       in (ana_a.id, None) for row in rows), section
    assert len(exported["check_ins"]) == 1 and len(exported["escalations"]) == 1
