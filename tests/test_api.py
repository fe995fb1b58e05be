"""The enrolment API: what a booking system sees."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from freezegun import freeze_time
from sqlmodel import func, select

from service.accounts.apikeys import PREFIX_LENGTH
from service.care import enrolment
from service.care.schemas import VisitIn
from service.models import ApiKey, Client, Escalation, Message, Visit
from tests.conftest import BOTH_BACKENDS, auth, make_clinic

NOW = datetime(2026, 6, 10, 14, 0, tzinfo=UTC)  # 10:00 in New York


def visit_body(**overrides):
    body = {
        "external_id": "booking-1",
        "client": {"name": "Ana Ruiz", "phone": "+12025550123", "email": "ana@example.com",
                   "sms_consent": True, "time_zone": "America/New_York"},
        "occurred_at": NOW.isoformat(),
        "pain_before": 6, "pain_after": 3,
    }
    body.update(overrides)
    return body


@pytest.fixture(autouse=True)
def frozen():
    with freeze_time(NOW + timedelta(minutes=1)):
        yield


def test_enrol_plans_every_message_in_one_go(client, clinic, session):
    _, key = clinic
    response = client.post("/api/v1/visits", json=visit_body(), headers=auth(key))
    assert response.status_code == 201
    visit = response.get_json()
    assert visit["visit_number"] == 1
    assert visit["window_ends_at"] == "2026-06-11T14:00:00+00:00"
    assert visit["client"]["phone"] == "+12025550123"
    assert visit["client"]["baseline_pain"] == 6
    # A phone with consent and an email: each message once, by text (one channel by default).
    kinds = [(m["kind"], m["channel"]) for m in visit["messages"]]
    expected = ["window_start", "hydration", "heat", "checkin", "followup", "rebook_nudge"]
    assert kinds == [(k, "sms") for k in expected]
    assert visit["channels"] == ["sms"]
    first = visit["messages"][0]
    # Due at once: enrolled a minute after the session.
    assert first["kind"] == "window_start" and first["due_at"] == "2026-06-10T14:01:00+00:00"
    assert session.exec(select(func.count()).select_from(Message)).one() == 6


def test_national_phone_is_normalised_and_channels_follow_consent(client, clinic):
    _, key = clinic
    body = visit_body(client={"name": "Bo", "phone": "(202) 555-0142", "sms_consent": True})
    visit = client.post("/api/v1/visits", json=body, headers=auth(key)).get_json()
    assert visit["client"]["phone"] == "+12025550142"
    assert visit["channels"] == ["sms"]
    assert visit["client"]["time_zone"] == "America/New_York"  # the clinic's


def test_retry_with_same_external_id_creates_nothing_new(client, clinic, session):
    _, key = clinic
    first = client.post("/api/v1/visits", json=visit_body(), headers=auth(key))
    again = client.post("/api/v1/visits", json=visit_body(), headers=auth(key))
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.get_json() == first.get_json()
    assert session.exec(select(func.count()).select_from(Visit)).one() == 1
    assert session.exec(select(func.count()).select_from(Message)).one() == 6


def test_a_retry_of_the_same_request_written_otherwise_is_the_same_request(client, clinic):
    """Times are instants and channels a set: the same request, however it is written."""
    _, key = clinic
    first = client.post("/api/v1/visits", json=visit_body(channels=["sms", "email"]),
                        headers=auth(key))
    again = client.post("/api/v1/visits", json=visit_body(
        channels=["email", "sms"],
        occurred_at=NOW.astimezone(ZoneInfo("America/New_York")).isoformat(),
        client={**visit_body()["client"], "phone": "(202) 555-0123"}), headers=auth(key))
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.get_json() == first.get_json()


@pytest.mark.parametrize("change, fields", [
    ({"client": {"name": "Bo Diaz", "phone": "+12025550142", "sms_consent": True}},
     {"client.name", "client.phone", "client.email", "client.time_zone"}),
    ({"occurred_at": (NOW - timedelta(hours=1)).isoformat()}, {"occurred_at"}),
    ({"pain_after": 4, "channels": ["email"]}, {"pain_after", "channels"}),
    ({"next_appointment": {"starts_at": (NOW + timedelta(days=7)).isoformat()}},
     {"next_appointment"}),
])
def test_a_retry_with_another_body_is_409_naming_each_field_that_differs(client, clinic, session,
                                                                         change, fields):
    _, key = clinic
    first = client.post("/api/v1/visits", json=visit_body(), headers=auth(key))
    other = client.post("/api/v1/visits", json=visit_body(**change), headers=auth(key))
    assert (first.status_code, other.status_code) == (201, 409)
    body = other.get_json()
    assert body["error"] == "idempotency_conflict"
    assert set(body["fields"]) == fields
    assert f"visit {first.get_json()['id']}" in body["message"]
    assert session.exec(select(func.count()).select_from(Visit)).one() == 1
    assert session.exec(select(func.count()).select_from(Client)).one() == 1
    # The first request, again: still the visit it made.
    assert client.post("/api/v1/visits", json=visit_body(), headers=auth(key)).status_code == 200


def test_a_retry_after_the_client_changed_is_still_the_same_request(client, clinic, session):
    """Compared with the first request, not with the client's row as it is now."""
    _, key = clinic
    first = client.post("/api/v1/visits", json=visit_body(), headers=auth(key))
    renamed = visit_body(external_id="booking-2", occurred_at=(NOW + timedelta(minutes=1)).isoformat(),
                         client={**visit_body()["client"], "name": "Ana Ruiz-Lopez"})
    assert client.post("/api/v1/visits", json=renamed, headers=auth(key)).status_code == 201
    assert session.get(Client, first.get_json()["client_id"]).name == "Ana Ruiz-Lopez"
    again = client.post("/api/v1/visits", json=visit_body(), headers=auth(key))
    assert again.status_code == 200 and again.get_json()["id"] == first.get_json()["id"]


@pytest.mark.parametrize("backend", BOTH_BACKENDS)
def test_a_retry_that_loses_the_race_answers_with_the_visit_that_won(client, clinic, session,
                                                                     monkeypatch):
    _, key = clinic
    first = client.post("/api/v1/visits", json=visit_body(), headers=auth(key))
    # The retry looks before the first request has committed, writes, and the unique (clinic,
    # external id) constraint turns it back: all it wrote is rolled back.
    looks = []
    real_find_visit = enrolment.find_visit

    def find_visit_too_early(*args):
        looks.append(args)
        return None if len(looks) == 1 else real_find_visit(*args)

    monkeypatch.setattr(enrolment, "find_visit", find_visit_too_early)
    again = client.post("/api/v1/visits", json=visit_body(), headers=auth(key))
    assert (first.status_code, again.status_code, len(looks)) == (201, 200, 2)
    assert again.data == first.data
    assert session.exec(select(func.count()).select_from(Visit)).one() == 1
    assert session.exec(select(func.count()).select_from(Message)).one() == 6
    # Another request that loses the same race is told so.
    looks.clear()
    other = client.post("/api/v1/visits", json=visit_body(pain_after=5), headers=auth(key))
    assert (other.status_code, set(other.get_json()["fields"])) == (409, {"pain_after"})
    assert session.exec(select(func.count()).select_from(Visit)).one() == 1


@pytest.mark.parametrize("backend", BOTH_BACKENDS)
def test_a_new_visit_is_answered_exactly_as_a_get_reads_it_back(client, clinic):
    """The 201 is built from what enrolment wrote rather than read back: not a byte may differ."""
    _, key = clinic
    bodies = [
        visit_body(),  # a new client, both channels
        visit_body(  # the same client again (a second visit), times given with offsets
            external_id="booking-2", channels=["sms"], pain_before=None,
            occurred_at=NOW.astimezone(ZoneInfo("America/New_York")).isoformat(),
            next_appointment={"starts_at": (NOW + timedelta(days=7, microseconds=250))
                              .astimezone(ZoneInfo("America/Chicago")).isoformat()}),
        visit_body(external_id="booking-3", rebook_weeks=4,  # a new client, email only
                   client={"name": "Bo", "email": "bo@example.com", "language": "es"}),
    ]
    for number, body in zip([1, 2, 1], bodies, strict=True):
        created = client.post("/api/v1/visits", json=body, headers=auth(key))
        assert created.status_code == 201
        assert created.get_json()["visit_number"] == number
        read = client.get(f"/api/v1/visits/{created.get_json()['id']}", headers=auth(key))
        assert created.data == read.data


@pytest.mark.parametrize("backend", BOTH_BACKENDS)
def test_planned_messages_and_the_audit_event_are_stored_as_the_models_define(client, clinic,
                                                                              session):
    _, key = clinic
    body = visit_body(next_appointment={"starts_at": (NOW + timedelta(days=7)).isoformat()})
    visit = client.post("/api/v1/visits", json=body, headers=auth(key)).get_json()
    rows = session.exec(select(Message).where(Message.visit_id == visit["id"])
                        .order_by(Message.id)).all()
    # ids in plan order, which is the order the API lists them in
    assert [(m.kind, m.channel) for m in rows] == [(m["kind"], m["channel"])
                                                   for m in visit["messages"]]
    reminder = visit["appointment"]["id"]
    for m in rows:
        assert (m.status, m.attempts, m.priority, m.params) == ("pending", 0, 1, {})
        assert (m.clinic_id, m.client_id) == (clinic[0].id, visit["client_id"])
        assert m.appointment_id == (reminder if m.kind == "appointment_reminder" else None)
        assert m.recipient == {"sms": "+12025550123", "email": "ana@example.com"}[m.channel]
        assert m.next_attempt_at == m.due_at
        assert m.created_at == NOW + timedelta(minutes=1)
        assert m.dedupe_key == f"visit:{visit['id']}:{m.kind}:{m.channel}"
        assert None is m.escalation_id is m.claimed_at is m.error_code is m.body is m.sent_at
    events = client.get(f"/api/v1/clients/{visit['client_id']}/audit", headers=auth(key))
    assert events.get_json()["events"] == [
        {"at": (NOW + timedelta(minutes=1)).isoformat(), "actor": f"api:{key[:PREFIX_LENGTH]}",
         "action": "visit_enrolled",
         "detail": {"visit_id": visit["id"], "superseded": [],
                    "request": VisitIn.model_validate(body).digests()}}]
    assert "+12025550123" not in events.get_data(as_text=True)  # digests, not a copy in clear


def test_next_appointment_gets_a_reminder_instead_of_a_nudge(client, clinic):
    _, key = clinic
    starts = NOW + timedelta(days=7)
    body = visit_body(next_appointment={"starts_at": starts.isoformat()}, channels=["sms"])
    visit = client.post("/api/v1/visits", json=body, headers=auth(key)).get_json()
    kinds = {m["kind"]: m["due_at"] for m in visit["messages"]}
    assert "rebook_nudge" not in kinds
    assert kinds["appointment_reminder"] == (starts - timedelta(days=1)).isoformat()
    assert visit["appointment"]["status"] == "booked"


def test_second_visit_supersedes_what_is_pending_from_the_first(client, clinic, session):
    _, key = clinic
    first = client.post("/api/v1/visits", json=visit_body(channels=["sms"]), headers=auth(key))
    body = visit_body(external_id="booking-2", channels=["sms"],
                      occurred_at=(NOW + timedelta(minutes=1)).isoformat())
    second = client.post("/api/v1/visits", json=body, headers=auth(key)).get_json()
    assert second["visit_number"] == 2
    assert second["client"]["id"] == first.get_json()["client"]["id"]
    old = session.exec(select(Message).where(Message.visit_id == first.get_json()["id"])).all()
    assert {m.status for m in old} == {"cancelled"}
    assert {m.error_code for m in old} == {"superseded"}
    assert {m["status"] for m in second["messages"]} == {"pending"}


@pytest.mark.parametrize("change, field, reason", [
    ({"client": {"name": "A", "phone": "+1202555", "sms_consent": True}}, "client.phone", "phone"),
    ({"client": {"name": "A", "phone": "hello", "sms_consent": True}}, "client.phone", "phone"),
    ({"client": {"name": "A", "email": "not-an-email"}}, "client.email", "email"),
    ({"client": {"name": "A", "email": "a@example.com", "time_zone": "Mars/Base"}},
     "client.time_zone", "time zone"),
    ({"client": {"name": "A", "phone": "+12025550123"}, "channels": ["sms"]},
     "client.sms_consent", "consent"),
    ({"client": {"name": "A", "email": "a@example.com"}, "channels": ["sms"]},
     "client.phone", "required"),
    ({"client": {"name": "A", "phone": "+12025550123"}}, "channels", "no channel"),
    ({"occurred_at": "2026-06-10T10:00:00"}, "occurred_at", "timezone"),
    ({"occurred_at": "yesterday"}, "occurred_at", "datetime"),
    ({"occurred_at": (NOW + timedelta(days=1)).isoformat()}, "occurred_at", "future"),
    ({"next_appointment": {"starts_at": (NOW - timedelta(hours=1)).isoformat()}},
     "next_appointment.starts_at", "after the visit"),
    ({"pain_before": 11}, "pain_before", "less than or equal to 10"),
    ({"channels": ["fax"]}, "channels.0", "sms"),
    ({"favourite_colour": "blue"}, "favourite_colour", "unknown field"),
    ({"client": {"name": "A", "email": "a@example.com", "age": 3}}, "client.age", "unknown field"),
    ({"client": None}, "client", "valid dictionary"),
])
def test_invalid_input_is_422_naming_the_field(client, clinic, session, change, field, reason):
    _, key = clinic
    response = client.post("/api/v1/visits", json=visit_body(**change), headers=auth(key))
    assert response.status_code == 422
    body = response.get_json()
    assert body["error"] == "validation_failed"
    assert field in body["fields"], body
    assert reason in body["fields"][field]
    assert session.exec(select(func.count()).select_from(Visit)).one() == 0


@pytest.mark.parametrize("data, content_type", [
    ("{not json", "application/json"), ("[1, 2]", "application/json"), ("a=b", "text/plain"),
])
def test_a_body_that_is_not_a_json_object_is_400(client, clinic, data, content_type):
    _, key = clinic
    response = client.post("/api/v1/visits", data=data, content_type=content_type,
                           headers=auth(key))
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_json"


@pytest.mark.parametrize("headers", [
    {}, {"Authorization": "Bearer ak_wrong"}, {"Authorization": "Basic dXNlcjpwYXNz"},
])
def test_missing_or_wrong_api_key_is_401(client, clinic, session, headers):
    response = client.post("/api/v1/visits", json=visit_body(), headers=headers)
    assert response.status_code == 401
    assert response.get_json()["error"] == "unauthorized"
    assert session.exec(select(func.count()).select_from(Visit)).one() == 0


def test_a_revoked_key_is_401(client, clinic, session):
    _, key = clinic
    row = session.exec(select(ApiKey)).one()
    row.revoked_at = NOW
    session.add(row)
    session.commit()
    assert client.post("/api/v1/visits", json=visit_body(), headers=auth(key)).status_code == 401


def test_a_key_with_the_right_prefix_but_wrong_secret_is_401(client, clinic):
    _, key = clinic
    forged = key[:12] + "x" * (len(key) - 12)
    assert client.get("/api/v1/visits/1", headers=auth(forged)).status_code == 401


def test_reads_are_scoped_to_the_key_s_clinic(client, clinic, session):
    _, key = clinic
    _, other_key = make_clinic(session, name="Other Clinic")
    visit = client.post("/api/v1/visits", json=visit_body(), headers=auth(key)).get_json()
    assert client.get(f"/api/v1/visits/{visit['id']}", headers=auth(key)).status_code == 200
    mine = client.get(f"/api/v1/clients/{visit['client_id']}", headers=auth(key))
    assert [v["id"] for v in mine.get_json()["visits"]] == [visit["id"]]
    for url in (f"/api/v1/visits/{visit['id']}", f"/api/v1/clients/{visit['client_id']}"):
        response = client.get(url, headers=auth(other_key))
        assert response.status_code == 404
        assert response.get_json()["error"] == "not_found"


def test_same_external_id_in_two_clinics_is_two_visits(client, clinic, session):
    _, key = clinic
    _, other_key = make_clinic(session, name="Other Clinic")
    a = client.post("/api/v1/visits", json=visit_body(), headers=auth(key))
    b = client.post("/api/v1/visits", json=visit_body(), headers=auth(other_key))
    assert (a.status_code, b.status_code) == (201, 201)
    assert a.get_json()["id"] != b.get_json()["id"]


def test_openapi_document_describes_every_api_route(app, client):
    doc = client.get("/api/v1/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    routes = {
        (rule.rule.replace("<int:", "{").replace(">", "}"), method.lower())
        for rule in app.url_map.iter_rules() if rule.rule.startswith("/api/")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    documented = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    assert routes == documented
    assert "client" in doc["components"]["schemas"]["VisitIn"]["properties"]


def test_an_escalation_is_unanswered_while_open_after_every_reminder(client, clinic, session):
    here, key = clinic
    body = client.post("/api/v1/visits", json=visit_body(), headers=auth(key)).get_json()
    row = Escalation(clinic_id=here.id, client_id=body["client"]["id"], severity="concern",
                     reasons=["said worse"], notify_count=here.renotify_max - 1)
    session.add(row)
    session.commit()

    def unanswered() -> bool:
        url = f"/api/v1/clients/{row.client_id}/escalations"
        [escalation] = client.get(url, headers=auth(key)).get_json()["escalations"]
        return escalation["unanswered"]

    assert not unanswered()
    row.notify_count = here.renotify_max
    session.add(row)
    session.commit()
    assert unanswered()
    row.status = "acknowledged"  # acknowledged: answered, whatever the count
    session.add(row)
    session.commit()
    assert not unanswered()
