"""Contraindications that fit the moment (issue 16 item 6): the checklist needs an answer, a ticked
box never withholds the session's aftercare but holds the rebooking nudge until reviewed, the owner
approves (or declines a request), pregnancy pages on-call at once and is never approved."""

from datetime import timedelta

import pytest
from freezegun import freeze_time
from sqlmodel import select

from service.care.maintenance import rebooking_held, suggestion_for
from service.care.privacy import erase_client, export_client
from service.domain.contraindications import answer
from service.models import AuditEvent, Client, Escalation, ScreeningReview, Visit
from tests.conftest import BOTH_BACKENDS, auth, make_clinic
from tests.helpers import NOW, enrol, messages
from tests.web_helpers import csrf_token, log_in, make_staff

AFTERCARE = {"window_start", "hydration", "heat", "checkin", "followup"}
NIGHT = NOW.replace(hour=6)  # 02:00 in New York: quiet hours


def enrol_form(web, **fields):
    data = {"name": "Ana Ruiz", "phone": "(202) 555-0123", "sms_consent": "on", "language": "en",
            "pain_before": "6", "pain_after": "3", "csrf_token": csrf_token(web.get("/visits/new"))}
    return web.post("/visits/new", data=data | fields)


def staff(app, session, clinic, role="owner", email=None):
    user = make_staff(session, clinic, email or f"{role}@clinic.example", role=role)
    web = app.test_client()
    assert log_in(web, user.email).status_code == 302
    return web, user


def kinds(session):
    return {m.kind for m in messages(session)}


def review(session) -> ScreeningReview:
    session.expire_all()
    return session.exec(select(ScreeningReview)).one()


def actions(session):
    """The reviews' changes, as audited (not the list's views)."""
    return [(e.action, e.actor) for e in session.exec(select(AuditEvent).order_by(AuditEvent.id))
            if e.action.startswith("screening_") and e.action != "screening_reviews_viewed"]


def decide(web, review_id, action, note=""):
    token = csrf_token(web.get("/"))
    return web.post(f"/screening/{review_id}/{action}", data={"csrf_token": token, "note": note})


@pytest.mark.parametrize(("ticked", "none_apply", "expected"), [
    ([], False, (None, 'tick the boxes that apply, or "None of these apply"')),
    (["bleeding"], True, (None, 'tick the boxes that apply or "None of these apply", not both')),
    (["made_up"], False, (None, "unknown: made_up")),
    ([], True, ([], None)),
    (["pregnancy", "bleeding"], False, (["bleeding", "pregnancy"], None)),
])
def test_the_checklist_needs_an_answer(ticked, none_apply, expected):
    assert answer(ticked, none_apply) == expected


@freeze_time(NOW)
def test_no_answer_is_422_naming_the_checklist(app, session, clinic):
    web, _ = staff(app, session, clinic[0])
    response = enrol_form(web)
    assert response.status_code == 422
    assert 'id="contraindication-error"' in response.get_data(as_text=True)
    assert session.exec(select(Visit)).all() == []


@freeze_time(NOW)
def test_none_apply_is_the_normal_plan(app, session, clinic):
    web, _ = staff(app, session, clinic[0])
    assert enrol_form(web, none_apply="on").status_code == 302
    assert session.exec(select(Visit)).one().contraindications == []
    assert kinds(session) == AFTERCARE | {"rebook_nudge"}
    assert session.exec(select(ScreeningReview)).all() == []


@freeze_time(NOW)
def test_a_ticked_box_keeps_the_aftercare_holds_the_nudge_and_asks_for_a_review(app, session, clinic):
    web, _ = staff(app, session, clinic[0], role="clinician")
    assert enrol_form(web, contraindication="osteoporosis").status_code == 302
    visit = session.exec(select(Visit)).one()
    assert visit.contraindications == ["osteoporosis"]
    assert kinds(session) == AFTERCARE  # the session's aftercare, no rebooking nudge
    item = review(session)
    assert (item.status, item.visit_id, item.contraindications) == ("open", visit.id, ["osteoporosis"])
    assert rebooking_held(session, visit.client_id)
    assert suggestion_for(session, session.get(Client, visit.client_id)).weeks is None
    assert 'data-testid="needs-review">Needs review: 1<' in web.get("/").get_data(as_text=True)
    assert "Osteoporosis" in web.get("/screening").get_data(as_text=True)
    # A clinician closes it: off the list, the nudge still held (only the owner approves).
    assert decide(web, item.id, "close", "seen, GP letter asked for").status_code == 302
    assert review(session).status == "closed" and review(session).note == "seen, GP letter asked for"
    assert 'Needs review: 0<' in web.get("/").get_data(as_text=True)
    assert rebooking_held(session, visit.client_id) and "rebook_nudge" not in kinds(session)
    assert decide(web, item.id, "close").status_code == 409  # decided already
    assert ("screening_review_closed", f"staff:{item.decided_by_id}") in actions(session)


@freeze_time(NOW)
def test_a_request_to_go_on_is_the_owners_to_approve_and_both_are_audited(app, session, clinic):
    desk, clinician = staff(app, session, clinic[0], role="clinician")
    assert enrol_form(desk, contraindication="bleeding", override_reason="INR checked today"
                      ).status_code == 302
    item = review(session)
    assert (item.status, item.requested_by_id, item.request_reason) == (
        "override_requested", clinician.id, "INR checked today")
    assert decide(desk, item.id, "approve").status_code == 403  # a clinician's reason does not count
    assert "rebook_nudge" not in kinds(session)
    owner_web, owner = staff(app, session, clinic[0])
    assert "approval requested" in owner_web.get("/screening").get_data(as_text=True)
    assert decide(owner_web, item.id, "approve", "agreed with her GP").status_code == 302
    assert (review(session).status, review(session).decided_by_id) == ("approved", owner.id)
    nudge = messages(session, kind="rebook_nudge")
    assert [(m.status, m.visit_id) for m in nudge] == [("pending", item.visit_id)]
    assert nudge[0].due_at > NOW + timedelta(days=6)
    assert not rebooking_held(session, item.client_id)
    assert actions(session)[-2:] == [("screening_override_requested", f"staff:{clinician.id}"),
                                     ("screening_approved", f"staff:{owner.id}")]


@freeze_time(NOW)
def test_the_owner_declines_a_request_and_the_nudge_stays_held(app, session, clinic):
    desk, _ = staff(app, session, clinic[0], role="clinician")
    enrol_form(desk, contraindication="spinal_instability", override_reason="client insists")
    owner_web, owner = staff(app, session, clinic[0])
    assert decide(owner_web, review(session).id, "decline", "not without imaging").status_code == 302
    assert review(session).status == "closed"
    assert rebooking_held(session, review(session).client_id) and "rebook_nudge" not in kinds(session)
    assert actions(session)[-1] == ("screening_override_declined", f"staff:{owner.id}")


@freeze_time(NOW)
def test_the_owners_own_reason_approves_at_enrolment(app, session, clinic):
    web, owner = staff(app, session, clinic[0])
    assert enrol_form(web, contraindication="osteoporosis", override_reason="DEXA normal").status_code == 302
    assert (review(session).status, review(session).note) == ("approved", "DEXA normal")
    assert "rebook_nudge" in kinds(session)


@freeze_time(NIGHT)
def test_pregnancy_pages_on_call_at_once_even_at_night_and_is_never_approved(app, session, clinic):
    web, _ = staff(app, session, clinic[0])
    response = enrol_form(web, contraindication="pregnancy", override_reason="she insists")
    assert response.status_code == 302
    assert "Pregnancy cannot be approved" in web.get(response.headers["Location"]).get_data(True)
    escalation = session.exec(select(Escalation)).one()
    assert (escalation.severity, escalation.status) == ("urgent", "open")
    alerts = messages(session, kind="staff_alert")
    assert alerts and all(m.due_at <= NIGHT and m.priority == 0 for m in alerts)
    # The aftercare still goes, after quiet hours (where the window text covers the tips).
    assert kinds(session) - {"staff_alert"} == {"window_start", "checkin", "followup"}
    item = review(session)
    assert item.status == "open"  # the reason did not make it a request
    assert decide(web, item.id, "approve").status_code == 409
    assert review(session).status == "open" and "rebook_nudge" not in kinds(session)
    assert "Never approved" in web.get("/screening").get_data(as_text=True)


@pytest.mark.parametrize("backend", BOTH_BACKENDS)
def test_the_api_may_send_the_checklist_and_leaving_it_out_is_not_screened(client, session, clinic):
    key = clinic[1]
    enrol(client, key, contraindications=["compression_fracture"])
    assert "rebook_nudge" not in kinds(session) and review(session).status == "open"
    later = enrol(client, key, NOW + timedelta(days=7))  # not screened: the hold stays
    assert session.get(Visit, later["id"]).contraindications is None
    assert rebooking_held(session, later["client"]["id"])
    enrol(client, key, NOW + timedelta(days=14), contraindications=[])  # none apply: lifted
    assert not rebooking_held(session, later["client"]["id"])
    assert messages(session, kind="rebook_nudge", status="pending")
    bad = client.post("/api/v1/visits", headers=auth(key), json={
        "client": {"name": "Bo", "email": "bo@example.com"}, "contraindications": ["gout"]})
    assert bad.status_code == 422 and "contraindications.0" in bad.get_json()["fields"]


@pytest.mark.parametrize("backend", BOTH_BACKENDS)
def test_export_has_the_reviews_and_erasure_removes_them(client, session, clinic):
    body = enrol(client, clinic[1], contraindications=["bleeding"])
    ana = session.get(Client, body["client"]["id"])
    assert export_client(session, ana, NOW)["screening_reviews"][0]["contraindications"] == ["bleeding"]
    erase_client(session, ana, NOW, actor="test")
    session.commit()
    assert session.exec(select(ScreeningReview)).all() == []


@freeze_time(NOW)
def test_another_clinic_never_sees_them(app, session, clinic):
    enrol(app.test_client(), clinic[1], contraindications=["pregnancy"])
    item = review(session)
    other, _ = make_clinic(session, name="Other")
    web, _ = staff(app, session, other, email="owner@other.example")
    assert "Needs review: 0<" in web.get("/").get_data(as_text=True)
    assert "Ana" not in web.get("/screening").get_data(as_text=True)
    for action in ("close", "approve", "decline"):
        assert decide(web, item.id, action).status_code == 404
    assert review(session).status == "open"


@pytest.mark.parametrize(("role", "may_see", "may_close", "may_approve"), [
    ("owner", True, True, True), ("clinician", True, True, False),
    ("front_desk", False, False, False), ("read_only", True, False, False)])
def test_who_may_do_what(app, session, clinic, role, may_see, may_close, may_approve):
    web, _ = staff(app, session, clinic[0], role=role)
    assert (web.get("/screening").status_code == 200) is may_see
    assert ("Needs review" in web.get("/").get_data(as_text=True)) is may_see
    assert (decide(web, 999_999, "close").status_code == 404) is may_close
    assert (decide(web, 999_999, "approve").status_code == 404) is may_approve
