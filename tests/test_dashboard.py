"""The triage dashboard (issue 16 items 3 and 4): counts that filter, rows most urgent first a page
at a time, today's replies by text and from the web, only the clinic's own rows, and an alert's
link that survives the login."""

import itertools
import re
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from freezegun import freeze_time
from sqlmodel import select

from service.care import triage
from service.models import (
    AuditEvent,
    CheckIn,
    Client,
    Escalation,
    InboundMessage,
    Message,
    utcnow,
)
from tests.conftest import make_clinic
from tests.web_helpers import PASSWORD, csrf_token, log_in, make_staff

NOW = datetime(2026, 6, 10, 14, 0, tzinfo=UTC)  # 10:00 in New York
NUMBERS = itertools.count(1000)


@pytest.fixture(autouse=True)
def clock():
    with freeze_time(NOW, tick=True) as frozen:
        yield frozen


@pytest.fixture
def here(clinic):
    return clinic[0]


def staff(client, session, here, role="owner"):
    log_in(client, make_staff(session, here, f"{role}@clinic.example", role=role).email)
    return client


def escalate(session, here, name, severity="concern", minutes=10, sent=0, status="open",
             reasons=("said worse",)) -> Escalation:
    person = Client(clinic_id=here.id, name=name, time_zone="America/New_York",
                    phone=f"+1202555{next(NUMBERS)}")
    session.add(person)
    session.flush()
    row = Escalation(clinic_id=here.id, client_id=person.id, severity=severity, status=status,
                     reasons=list(reasons), notify_count=sent,
                     opened_at=utcnow() - timedelta(minutes=minutes))
    session.add(row)
    session.commit()
    return row


def names(page) -> list[str]:
    """The client names of the escalation rows, top to bottom."""
    html = page.get_data(as_text=True)
    return re.findall(r'data-testid="escalation">.*?<strong>([^<]+)</strong>', html, re.S)


def count(page, name) -> int:
    match = re.search(rf'data-testid="count-{name}"[^>]*>\s*<strong>(\d+)</strong>',
                      page.get_data(as_text=True))
    return int(match.group(1))


def test_the_counts_are_the_clinic_s_open_escalations(client, session, here):
    escalate(session, here, "Urgent Ann", "urgent")
    escalate(session, here, "Urgent Unanswered Bo", "urgent", sent=3)
    escalate(session, here, "Concern Cy")
    escalate(session, here, "Concern Unanswered Di", sent=4)
    escalate(session, here, "Acknowledged Ed", "urgent", status="acknowledged")
    other, _ = make_clinic(session, name="Other Clinic")
    escalate(session, other, "Elsewhere Flo", "urgent", sent=3)
    page = staff(client, session, here).get("/")
    assert (count(page, "urgent"), count(page, "concern"), count(page, "unanswered")) == (2, 2, 2)
    assert "Elsewhere Flo" not in page.get_data(as_text=True)
    assert "Acknowledged Ed" not in page.get_data(as_text=True)


def test_rows_are_urgent_first_then_unanswered_then_the_longest_waiting(client, session, here):
    escalate(session, here, "Concern Old", minutes=300)
    escalate(session, here, "Urgent New", "urgent", minutes=5)
    escalate(session, here, "Concern Unanswered", minutes=60, sent=3)
    escalate(session, here, "Urgent Old", "urgent", minutes=50)
    escalate(session, here, "Urgent Unanswered", "urgent", minutes=1, sent=3)
    escalate(session, here, "Concern New", minutes=2)
    page = staff(client, session, here).get("/")
    assert names(page) == ["Urgent Unanswered", "Urgent Old", "Urgent New",
                           "Concern Unanswered", "Concern Old", "Concern New"]
    assert "5 h" in page.get_data(as_text=True)  # Concern Old's age, at a glance


def test_a_count_filters_the_list_and_the_list_comes_a_page_at_a_time(client, session, here):
    for i in range(triage.PER_PAGE + 5):
        escalate(session, here, f"Concern {i:02}", minutes=100 - i)
    escalate(session, here, "Urgent Only", "urgent")
    web = staff(client, session, here)
    first = web.get("/")
    assert len(names(first)) == triage.PER_PAGE and names(first)[0] == "Urgent Only"
    assert "Page 1 of 2" in first.get_data(as_text=True)
    second = web.get("/?page=2")
    assert names(second) == [f"Concern {i:02}" for i in range(triage.PER_PAGE - 1, 25)]
    assert names(web.get("/?show=urgent")) == ["Urgent Only"]
    assert names(web.get("/?show=concern&page=2")) == [f"Concern {i:02}" for i in range(20, 25)]
    assert names(web.get("/?show=unanswered")) == []


@pytest.mark.parametrize("query, field", [("page=0", "page:"), ("page=two", "page:"),
                                          ("show=everything", "show:")])
def test_a_bad_filter_or_page_is_named_and_the_first_page_shown(client, session, here, query, field):
    escalate(session, here, "Ana Ruiz")
    page = staff(client, session, here).get(f"/?{query}")
    assert page.status_code == 400
    assert field in page.get_data(as_text=True) and names(page) == ["Ana Ruiz"]


def test_the_sql_unanswered_rule_is_the_domain_s(session, here):
    rows = [escalate(session, here, f"Client {sent}", sent=sent) for sent in range(6)]
    board = triage.board(session, here, utcnow(), show="unanswered")
    assert {e.id for e, _ in board.escalations} == \
        {row.id for row in rows if row.unanswered(here.renotify_max)}


def test_front_desk_sees_the_rows_and_a_call_link_but_no_reason(client, session, here):
    escalate(session, here, "Ana Ruiz", "urgent", reasons=["red flag: new leg weakness"])
    html = staff(client, session, here, role="front_desk").get("/").get_data(as_text=True)
    assert "Ana Ruiz" in html and 'href="tel:+1202555' in html
    assert "leg weakness" not in html and "Acknowledge" not in html


def test_today_s_replies_are_texts_and_web_check_ins(client, session, here):
    ana = Client(clinic_id=here.id, name="Ana Ruiz", time_zone="America/New_York")
    bo = Client(clinic_id=here.id, name="Bo Web", time_zone="America/New_York")
    session.add_all([ana, bo])
    session.flush()
    session.add_all([
        InboundMessage(provider_sid="SM1", clinic_id=here.id, client_id=ana.id, intent="unknown",
                       from_number="+12025550123", to_number="+12025550100", body="a bit sore"),
        CheckIn(client_id=bo.id, answer="worse", pain=8, source="web",
                red_flags=["numbness"], created_at=utcnow() - timedelta(minutes=5)),
        CheckIn(client_id=bo.id, answer="better", pain=1, source="web",
                created_at=utcnow() - timedelta(days=1)),  # yesterday's: not today's
    ])
    session.commit()
    html = staff(client, session, here).get("/").get_data(as_text=True)
    replies = html[html.index('data-testid="replies"'):]
    assert "Today's replies (2)" in html
    assert "“a bit sore”" in replies
    assert '<span class="badge">not understood</span>' in replies  # in words, not "unknown"
    assert "Bo Web" in replies and "worse, pain 8/10" in replies
    assert "red flag: numbness or tingling" in replies and "pain 1/10" not in replies


def test_another_clinic_s_rows_never_appear(client, session, here):
    other, _ = make_clinic(session, name="Other Clinic")
    stranger = escalate(session, other, "Zed Stranger", "urgent")
    session.add_all([
        InboundMessage(provider_sid="SM9", clinic_id=other.id, client_id=stranger.client_id,
                       from_number="+12025550999", to_number="+12025550100", body="help"),
        CheckIn(client_id=stranger.client_id, answer="worse", source="web"),
        Message(clinic_id=other.id, client_id=stranger.client_id, kind="checkin", channel="sms",
                recipient="+12025550999", due_at=utcnow(), next_attempt_at=utcnow(),
                status="failed", dedupe_key="other:1"),
    ])
    session.commit()
    web = staff(client, session, here)
    for path in ("/", "/?show=urgent", "/?show=unanswered"):
        page = web.get(path).get_data(as_text=True)
        assert "Zed Stranger" not in page
    page = web.get("/")
    assert count(page, "urgent") == 0 and "Failed deliveries, last 7 days (0)" in page.get_data(True)


def test_a_text_filed_under_this_clinic_from_another_clinic_s_client_never_appears(
        client, session, here):
    other, _ = make_clinic(session, name="Other Clinic")
    zed = Client(clinic_id=other.id, name="Zed Misfiled", time_zone="America/New_York")
    session.add(zed)
    session.flush()
    session.add(InboundMessage(provider_sid="SM8", clinic_id=here.id, client_id=zed.id,
                               from_number="+12025550998", to_number="+12025550100",
                               body="misfiled words"))
    session.commit()
    html = staff(client, session, here).get("/").get_data(as_text=True)
    assert "Zed Misfiled" not in html and "misfiled words" not in html
    assert "Today's replies (0)" in html


def test_failed_deliveries_of_the_last_week_are_counted(client, session, here):
    ana = escalate(session, here, "Ana Ruiz").client_id
    for i, (status, days) in enumerate([("failed", 1), ("undelivered", 2), ("failed", 9),
                                        ("delivered", 1)]):
        due = utcnow() - timedelta(days=days)
        session.add(Message(clinic_id=here.id, client_id=ana, kind="checkin", channel="sms",
                            recipient="+12025550123", due_at=due, next_attempt_at=due,
                            status=status, dedupe_key=f"m:{i}"))
    session.commit()
    html = staff(client, session, here).get("/").get_data(as_text=True)
    assert "Failed deliveries, last 7 days (2)" in html
    assert "How&#39;s your back? check-in by text" in html  # in words, not "checkin by sms"
    spanish = client.get("/", headers={"Accept-Language": "es"}).get_data(as_text=True)
    assert "seguimiento «¿Cómo va su espalda?» por mensaje de texto" in spanish


def test_the_dashboard_view_is_audited_with_whom_it_showed(client, session, here):
    ana = escalate(session, here, "Ana Ruiz")
    staff(client, session, here).get("/")
    row = session.exec(select(AuditEvent).where(AuditEvent.action == "dashboard_viewed")).one()
    assert row.detail == {"shown": [ana.client_id]} and row.actor.startswith("staff:")


def test_acknowledge_returns_to_the_same_page_and_filter(client, session, here):
    for i in range(triage.PER_PAGE + 1):
        escalate(session, here, f"Concern {i:02}", minutes=100 - i)
    web = staff(client, session, here)
    page = web.get("/?show=concern&page=2")
    last = session.exec(select(Escalation).order_by(Escalation.id.desc())).first()
    answer = web.post(f"/escalations/{last.id}/acknowledge",
                      data={"csrf_token": csrf_token(page), "next": "/?show=concern&page=2"})
    assert answer.headers["Location"] == "/?show=concern&page=2"


def test_an_alert_link_opened_logged_out_lands_on_its_page_after_login(client, session, here):
    """The staff alert's client_url is /clients/<id>: the login keeps it through its form's POST
    (the form posts back to its own URL, next and all), and only ever to a path on this site."""
    ana = escalate(session, here, "Ana Ruiz").client_id
    user = make_staff(session, here, "owner@clinic.example")
    asked = client.get(f"/clients/{ana}")
    assert asked.status_code == 302 and asked.headers["Location"] == f"/login?next=%2Fclients%2F{ana}"
    form = client.get(asked.headers["Location"])
    answer = client.post(asked.headers["Location"], data={
        "email": user.email, "password": PASSWORD, "csrf_token": csrf_token(form)})
    assert answer.headers["Location"] == f"/clients/{ana}"
    assert client.get(answer.headers["Location"]).status_code == 200

    client.post("/logout", data={"csrf_token": csrf_token(client.get("/"))})
    form = client.get("/login?next=//evil.example/clients/1")
    answer = client.post("/login?next=//evil.example/clients/1", data={
        "email": user.email, "password": PASSWORD, "csrf_token": csrf_token(form)})
    assert answer.headers["Location"] == "/"



def test_the_alert_link_survives_the_two_factor_step(client, session, here):
    ana = escalate(session, here, "Ana Ruiz").client_id
    user = make_staff(session, here, "owner@clinic.example")
    user.totp_secret = pyotp.random_base32()
    session.add(user)
    session.commit()
    there = f"/login?next=/clients/{ana}"
    code_page = client.post(there, data={"email": user.email, "password": PASSWORD,
                                         "csrf_token": csrf_token(client.get(there))})
    location = code_page.headers["Location"]
    assert location.startswith("/login/code")
    done = client.post(location, data={"code": pyotp.TOTP(user.totp_secret).now(),
                                       "csrf_token": csrf_token(client.get(location))})
    assert done.status_code == 302 and done.headers["Location"] == f"/clients/{ana}"
