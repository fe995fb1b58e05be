"""Least privilege (issue 15 item 4): every staff route names a permission, each role gets exactly
what domain.roles' table grants, front desk sees no clinical detail, role changes are audited."""

import pytest
from sqlalchemy import event
from sqlmodel import select

from service.accounts.apikeys import PREFIX_LENGTH
from service.domain.roles import PERMISSIONS, Role
from service.models import (
    AuditEvent,
    CheckIn,
    Client,
    Escalation,
    InboundMessage,
    StaffUser,
    Visit,
    utcnow,
)
from tests.conftest import auth, make_clinic
from tests.web_helpers import csrf_token, log_in, make_staff

ABSENT = 999_999  # an id no row has: a route that lets the role in answers 404, not 403
# What only a clinical reader may see, one marker per kind of clinical detail.
REASON, REPLY, PAIN = "red flag: numbness in the left foot", "my toes went numb overnight", "pain 7/10"


def staff_rules(app):
    return [rule for rule in app.url_map.iter_rules() if rule.endpoint.startswith("staff.")]


def as_role(app, session, clinic, role):
    user = make_staff(session, clinic, f"{role}@clinic.example", role=role)
    web = app.test_client()
    assert log_in(web, user.email).status_code == 302
    return web, user


def test_every_staff_route_names_its_permission(app):
    missing = [rule.endpoint for rule in staff_rules(app)
               if getattr(app.view_functions[rule.endpoint], "permission", None) is None]
    assert staff_rules(app) and missing == []


@pytest.mark.parametrize("role", list(Role))
def test_each_role_gets_exactly_what_the_table_grants_on_every_staff_route(app, session, clinic,
                                                                           role):
    web, _ = as_role(app, session, clinic[0], role)
    token = csrf_token(web.get("/"))  # every role may open the dashboard (its logout form)
    seen = {}
    for rule in staff_rules(app):
        path = rule.build({arg: ABSENT for arg in rule.arguments}, append_unknown=False)[1]
        permission = app.view_functions[rule.endpoint].permission
        for method in {"GET", "POST"} & rule.methods:
            response = web.open(path, method=method, data={"csrf_token": token}
                                if method == "POST" else None)
            seen[f"{method} {path}"] = (response.status_code == 403,
                                        permission not in PERMISSIONS[role])
    assert seen and {route: got for route, (got, _) in seen.items()} == \
        {route: expected for route, (_, expected) in seen.items()}


@pytest.fixture
def chart(session, clinic):
    """A client with every kind of clinical detail: a check-in, an open escalation, a reply."""
    here = clinic[0]
    client = Client(clinic_id=here.id, name="Ana Ruiz", phone="+12025550123", time_zone="UTC",
                    baseline_pain=6)
    session.add(client)
    session.flush()
    visit = Visit(clinic_id=here.id, client_id=client.id, occurred_at=utcnow(), visit_number=1,
                  pain_before=6, pain_after=3)
    session.add(visit)
    session.flush()
    session.add_all([
        CheckIn(client_id=client.id, visit_id=visit.id, answer="worse", pain=7, source="sms"),
        Escalation(clinic_id=here.id, client_id=client.id, severity="urgent", reasons=[REASON]),
        InboundMessage(provider_sid="SM1", clinic_id=here.id, client_id=client.id,
                       from_number="+12025550123", to_number="+12025550100", body=REPLY),
    ])
    session.commit()
    return client, visit


def pages(web, client, visit) -> str:
    return "".join(web.get(path).get_data(as_text=True)
                   for path in ("/", f"/clients/{client.id}", f"/visits/{visit.id}", "/visits/new"))


def test_front_desk_sees_names_and_enrols_but_no_clinical_detail(app, session, clinic, chart):
    clinician, _ = as_role(app, session, clinic[0], Role.CLINICIAN)
    shown = pages(clinician, *chart)
    assert all(marker in shown for marker in (REASON, REPLY, PAIN, "Baseline pain", "Acknowledge"))

    desk, _ = as_role(app, session, clinic[0], Role.FRONT_DESK)
    shown = pages(desk, *chart)
    assert "Ana Ruiz" in shown and "Enrol after a session" in shown
    assert not any(marker in shown for marker in (REASON, REPLY, PAIN, "Baseline pain",
                                                  "pain 6 → 3", "Acknowledge", "Export data"))


def test_a_front_desk_client_page_never_reads_clinical_rows(app, session, clinic, chart):
    """Hidden is not enough: the page's statements never touch check-ins or escalations."""
    client, _ = chart
    engine = app.extensions["aftercare.engine"]

    def tables_read(web) -> str:
        seen = []
        listener = lambda *args: seen.append(args[2].lower())  # noqa: E731
        event.listen(engine, "before_cursor_execute", listener)
        try:
            assert web.get(f"/clients/{client.id}").status_code == 200
        finally:
            event.remove(engine, "before_cursor_execute", listener)
        return " ".join(seen)

    clinician, _ = as_role(app, session, clinic[0], Role.CLINICIAN)
    assert "from check_in" in tables_read(clinician) and "from escalation" in tables_read(clinician)
    desk, _ = as_role(app, session, clinic[0], Role.FRONT_DESK)
    read = tables_read(desk)
    assert "from check_in" not in read and "from escalation" not in read


def test_read_only_sees_the_chart_and_no_button_that_changes_it(app, session, clinic, chart):
    reader, _ = as_role(app, session, clinic[0], Role.READ_ONLY)
    shown = pages(reader, *chart)
    assert REASON in shown and PAIN in shown
    assert not any(button in shown for button in ("Acknowledge", "Enrol", "Save language",
                                                  "Revoke link", "Export data", "Settings"))


def test_the_client_page_and_the_api_say_who_acknowledged(app, session, clinic, chart):
    web, user = as_role(app, session, clinic[0], Role.CLINICIAN)
    client, _ = chart
    escalation = session.exec(select(Escalation)).one()
    page = web.get(f"/clients/{client.id}")
    web.post(f"/escalations/{escalation.id}/acknowledge",
             data={"csrf_token": csrf_token(page), "note": "Called her"})
    assert f"by {user.name}: “Called her”" in web.get(f"/clients/{client.id}").get_data(True)
    api = app.test_client().get(f"/api/v1/clients/{client.id}/escalations", headers=auth(clinic[1]))
    assert [e["acknowledged_by"] for e in api.get_json()["escalations"]] == [user.name]


def test_an_api_acknowledgement_is_audited_with_its_key(app, session, clinic, chart):
    """Which key did it, not just "api": a clinic with several keys can tell them apart."""
    client, _ = chart
    escalation = session.exec(select(Escalation)).one()
    api = app.test_client()
    assert api.post(f"/api/v1/escalations/{escalation.id}/acknowledge", headers=auth(clinic[1]),
                    json={"note": "Called"}).status_code == 200
    event = session.exec(select(AuditEvent).where(
        AuditEvent.action == "escalation_acknowledged")).one()
    assert event.actor == f"api:{clinic[1][:PREFIX_LENGTH]}"


def change_role(web, staff_id, role):
    token = csrf_token(web.get("/settings"))
    return web.post("/settings/staff/role",
                    data={"csrf_token": token, "staff_id": str(staff_id), "role": role})


def test_an_owner_changes_a_role_audited_but_not_their_own(app, session, clinic):
    owner, me = as_role(app, session, clinic[0], Role.OWNER)
    lee = make_staff(session, clinic[0], "lee@clinic.example", role=Role.CLINICIAN)
    assert change_role(owner, lee.id, "front_desk").status_code == 302
    assert change_role(owner, me.id, "read_only").status_code == 302
    other, _ = make_clinic(session, name="Other")
    stranger = make_staff(session, other, "them@elsewhere.example", role=Role.CLINICIAN)
    assert change_role(owner, stranger.id, "owner").status_code == 404
    session.expire_all()
    assert [session.get(StaffUser, u.id).role for u in (lee, me, stranger)] == \
        ["front_desk", "owner", "clinician"]
    [event] = session.exec(select(AuditEvent).where(AuditEvent.action == "role_changed")).all()
    assert (event.actor, event.detail) == (f"staff:{me.id}", {"staff_id": lee.id,
                                                              "was": "clinician",
                                                              "role": "front_desk"})


def test_settings_add_staff_with_each_role(app, session, clinic):
    owner, _ = as_role(app, session, clinic[0], Role.OWNER)
    token = csrf_token(owner.get("/settings"))
    owner.post("/settings/staff", data={"csrf_token": token, "name": "Desk", "role": "front_desk",
                                        "email": "desk@clinic.example",
                                        "password": "correct horse battery"})
    desk = session.exec(select(StaffUser).where(StaffUser.email == "desk@clinic.example")).one()
    assert desk.role == "front_desk"


def test_create_user_takes_every_role_and_defaults_to_clinician(runner, session, clinic):
    for email, role in (("kim@clinic.example", []), ("desk@clinic.example", ["--role", "front_desk"])):
        result = runner.invoke(args=["create-user", str(clinic[0].id), email, "--name", "K",
                                     "--password", "correct horse battery", *role])
        assert result.exit_code == 0, result.output
    assert [u.role for u in session.exec(select(StaffUser).order_by(StaffUser.id))] == \
        ["clinician", "front_desk"]
    staff = runner.invoke(args=["create-user", str(clinic[0].id), "x@clinic.example", "--name", "X",
                                "--password", "correct horse battery", "--role", "staff"])
    assert staff.exit_code == 2
