"""A clinic's daily send cap (issue 14, item 6): over it, the clinic's plan texts wait for its
next day while its urgent advice and its staff alerts go; its on-call emails hear of it once a
day; another clinic's texts are not touched."""

from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from service.models import Message
from tests.conftest import BOTH_BACKENDS, make_clinic
from tests.helpers import NOW, ON_CALL_PHONE, drain, messages, seed_wave, text, texts_to

B_NUMBER = "+12025550180"
A_WAVE = "+1303555"  # seed_wave's numbers: A's clients (area 303), B's (area 404)
# The next midnight in New York is in the clients' quiet hours (21:00-08:00): held texts go at 08:00.
NEXT_MORNING = datetime(2026, 6, 11, 12, 0, tzinfo=UTC)


def cap_alerts(fake_smtp) -> list:
    return [m for m in fake_smtp.messages if "daily limit" in (m.subject or "")]


def sent_checkins(session, clinic_id) -> list[Message]:
    return [m for m in messages(session, clinic_id=clinic_id, kind="checkin")
            if m.status == "sent"]


@pytest.mark.parametrize("backend", BOTH_BACKENDS)
def test_a_clinic_at_its_daily_cap_holds_its_plan_texts_while_its_urgent_advice_goes(
        app, client, session, providers, dispatcher):
    fake_twilio, fake_smtp = providers
    a, _ = make_clinic(session, name="A", daily_send_cap=3)  # the default sender's clinic
    b, _ = make_clinic(session, name="B", sms_sender=B_NUMBER)  # no cap
    engine = app.extensions["aftercare.engine"]
    seed_wave(engine, a.id, 5, NOW, area="303")
    seed_wave(engine, b.id, 5, NOW, area="404")

    # One batch crosses A's cap: its first three go, the other two wait for A's next morning.
    drain(dispatcher, NOW)
    assert len(sent_checkins(session, a.id)) == 3
    assert len(sent_checkins(session, b.id)) == 5  # same drain, no cap: all of B's
    held = messages(session, clinic_id=a.id, kind="checkin", status="pending")
    assert [(m.error_code, m.next_attempt_at, m.attempts) for m in held] == \
        [("daily_cap", NEXT_MORNING, 0)] * 2
    # A's on-call email hears of it, once.
    [alert] = cap_alerts(fake_smtp)
    assert alert.rcpt_tos == ["oncall@example.com"]
    assert "A reached its daily limit of 3 aftercare texts" in alert.subject
    assert "wait until tomorrow morning" in alert.message.get_body(("plain",)).get_content()

    # Capped as it is, a red-flag reply from A's client gets its urgent advice, and the on-call
    # phone its alert.
    later = NOW + timedelta(minutes=10)
    capped_client = A_WAVE + "0000"
    text(client, "I have numbness in my legs", later, sender=capped_client)
    drain(dispatcher, later)
    [advice] = messages(session, recipient=capped_client, kind="urgent_advice")
    assert advice.status == "sent" and texts_to(fake_twilio, capped_client)[-1] == advice.body
    [page] = messages(session, recipient=ON_CALL_PHONE, kind="staff_alert")
    assert page.status == "sent" and texts_to(fake_twilio, ON_CALL_PHONE)

    # A plan text due later that day waits too; two more drains that day alert no one again.
    seed_wave(engine, a.id, 1, NOW + timedelta(hours=1), area="305")
    drain(dispatcher, NOW + timedelta(hours=1))
    drain(dispatcher, NOW + timedelta(hours=2))
    assert len(sent_checkins(session, a.id)) == 3
    assert len(messages(session, clinic_id=a.id, kind="checkin", status="pending")) == 3
    assert len(cap_alerts(fake_smtp)) == 1

    # A's next morning: a new day's cap, and the three held texts go.
    drain(dispatcher, NEXT_MORNING)
    assert len(sent_checkins(session, a.id)) == 6
    assert messages(session, clinic_id=a.id, kind="checkin", status="pending") == []
    assert len(cap_alerts(fake_smtp)) == 1


@contextmanager
def cap_counts():
    """The statements that count a clinic's texts of the day, on any engine (the dispatcher's
    async one too)."""
    seen = []

    def look(conn, cursor, statement, *args):
        if "GROUP BY message.clinic_id" in statement:
            seen.append(statement)

    event.listen(Engine, "before_cursor_execute", look)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", look)


def test_the_cap_costs_one_query_per_batch_and_none_without_a_capped_clinic(
        app, session, providers, dispatcher):
    a, _ = make_clinic(session, name="A", daily_send_cap=1000)
    b, _ = make_clinic(session, name="B", sms_sender=B_NUMBER)
    engine = app.extensions["aftercare.engine"]
    seed_wave(engine, b.id, 40, NOW, area="404")
    with cap_counts() as uncapped:
        drain(dispatcher, NOW)
    assert len(sent_checkins(session, b.id)) == 40 and uncapped == []

    seed_wave(engine, a.id, 40, NOW, area="303")  # one batch of 40 texts
    with cap_counts() as capped:
        drain(dispatcher, NOW)
    assert len(sent_checkins(session, a.id)) == 40 and len(capped) == 1
