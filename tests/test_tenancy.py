"""Clinics kept apart (issue 14, item 4): one phone number can be a client at two clinics, and
whatever one clinic does with its client (export, erase, any page or API call) reads and changes
only that clinic's rows."""

import json
import re
from datetime import timedelta
from itertools import count

import pytest
import sqlalchemy as sa
from sqlmodel import SQLModel

from service.accounts import apikeys
from service.care import scope
from service.models import (
    ApiKey,
    CheckIn,
    Client,
    Escalation,
    InboundMessage,
    ScreeningReview,
    StaffUser,
    Visit,
)
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
    session.add(ScreeningReview(clinic_id=client.clinic_id, client_id=client.id,
                                contraindications=["osteoporosis"]))
    session.commit()
    return inbound


@pytest.fixture
def two_clinics(client, session):
    """Ana's phone is a client at clinic A and at clinic B; each clinic has her texts, check-ins,
    an escalation, an appointment, messages and audit events; B an owner. With A's API key."""
    (a, a_key), (b, b_key) = make_clinic(session, name="Clinic A"), make_clinic(session, name="Clinic B")
    ids = {}
    for clinic, key in ((a, a_key), (b, b_key)):
        ids[clinic.name] = enrol(client, key, person={"name": f"Ana at {clinic.name}"},
                                 external_id="booking-1", next_appointment={
                                     "starts_at": (NOW + timedelta(days=7)).isoformat()},
                                 )["client"]["id"]
    ana_a, ana_b = session.get(Client, ids["Clinic A"]), session.get(Client, ids["Clinic B"])
    assert ana_a.phone == ana_b.phone == PHONE
    reply(session, ana_a, "A: worse today")
    reply(session, ana_a, "A: sent before A knew it was Ana", linked=False)
    reply(session, ana_b, "B: still numb in my left leg")
    make_staff(session, b, "owner@b.example")
    return a, b, ana_a, ana_b, a_key


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
        result = runner.invoke(args=["erase-client", str(client_id), "--yes",
                                     "--clinic", str(clinic.id)])
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
        result = runner.invoke(args=["export-client", str(client_id), "--clinic", str(clinic.id)])
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
    a, b, ana_a, ana_b, _ = two_clinics
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
    a, b, ana_a, ana_b, _ = two_clinics
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



def test_the_cli_acting_for_one_clinic_refuses_another_clinic_s_client(runner, session,
                                                                        two_clinics):
    a, b, _, ana_b, _ = two_clinics
    before = rows_of(session, b.id, ana_b.id)
    for command in (["erase-client", "--yes"], ["export-client"]):
        result = runner.invoke(args=[*command, str(ana_b.id), "--clinic", str(a.id)])
        assert result.exit_code == 1
        assert f"clinic {a.id} has no client {ana_b.id}" in result.output
        assert "Ana at Clinic B" not in result.output
    assert rows_of(session, b.id, ana_b.id) == before


# --- every model, every route: clinic A asking for clinic B's rows ------------------------------

# What each id in a URL names. A route with an id parameter not listed here fails the walk.
ROUTE_IDS = {"client_id": Client, "visit_id": Visit, "escalation_id": Escalation,
             "key_id": ApiKey, "user_id": StaffUser, "review_id": ScreeningReview}


def clinic_models() -> list[type[SQLModel]]:
    """Every table that holds a clinic's data: with a clinic_id, or a client_id (a check-in is
    its client's clinic's). A model added later is in this list the day it is added."""
    tables = [table.name for table in SQLModel.metadata.sorted_tables
              if {"clinic_id", "client_id"} & set(table.c.keys())]
    models = {model.__tablename__: model for model in SQLModel.__subclasses__()
              if hasattr(model, "__table__")}
    return [models[name] for name in tables]


def test_every_model_s_rows_are_found_only_by_their_own_clinic(session, two_clinics):
    a, b, *_ = two_clinics
    models = clinic_models()
    assert {CheckIn, Client, InboundMessage, ApiKey} <= set(models)
    for model in models:
        theirs = session.exec(scope.mine(model, b.id)).all()
        assert theirs, f"clinic B has no {model.__name__}: add one to the two_clinics story"
        assert not {row.id for row in theirs} & {row.id for row in
                                                 session.exec(scope.mine(model, a.id))}, model
        for row in theirs:
            assert scope.owned(session, model, a.id, row.id) is None, (model, row.id)
            assert scope.owned(session, model, b.id, row.id) is row


def route_ids(rule) -> list[str]:
    return re.findall(r"<int:(\w+)>", rule.rule)


def test_every_route_with_an_id_is_404_for_another_clinic_and_changes_nothing(
        app, client, session, two_clinics):
    """A's owner (staff pages) and A's key (the API) ask for each of B's rows in every way the
    app offers, then B's owner does the same to show that the ids are real."""
    a, b, _, ana_b, a_key = two_clinics
    ids = {name: session.exec(scope.mine(model, b.id)).first().id
           for name, model in ROUTE_IDS.items()}
    rules = [rule for rule in app.url_map.iter_rules() if route_ids(rule)]
    unknown = {name for rule in rules for name in route_ids(rule)} - ROUTE_IDS.keys()
    assert not unknown, f"add {unknown} to ROUTE_IDS"
    assert {rule.endpoint.split(".")[0] for rule in rules} == {"staff", "api"}

    def walk(email: str, key: str) -> dict[str, int]:
        log_in(client, email)
        form = {"csrf_token": csrf_token(client.get("/")), "confirm": "ERASE", "note": "seen",
                "language": "es"}
        answers = {}
        for rule in rules:
            url = re.sub(r"<int:(\w+)>", lambda m: str(ids[m.group(1)]), rule.rule)
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                if rule.endpoint.startswith("api."):
                    response = client.open(url, method=method, json={},
                                           headers={"Authorization": f"Bearer {key}"})
                else:
                    response = client.open(url, method=method, data=form)
                answers[f"{method} {url}"] = response.status_code
        client.post("/logout", data={"csrf_token": form["csrf_token"]})
        return answers

    before = rows_of(session, b.id, ana_b.id)
    intruder = walk(make_staff(session, a, "owner@a.example").email, a_key)
    assert len(intruder) >= 14
    assert {call: status for call, status in intruder.items() if status != 404} == {}
    assert rows_of(session, b.id, ana_b.id) == before  # nothing changed, byte for byte

    b_key = apikeys.issue(session, b, "control")
    own = walk("owner@b.example", b_key)
    assert {call: status for call, status in own.items() if status in (403, 404)} == {}
