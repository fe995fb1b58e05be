"""The inbox, a client's conversation and a staff member's text back (issue 16 item 2): every text
and web check-in newest first, unread until someone opens the conversation, filtered by meaning,
one clinic's only; a reply goes through the outbox, the staff member recorded, opt-out checked
when it goes."""

import re
from datetime import timedelta

import pytest
from sqlmodel import select

from service.domain.messages import MessageKind
from service.models import AuditEvent, CheckIn, Client, InboundMessage, Message
from tests.conftest import BOTH_BACKENDS, make_clinic
from tests.helpers import NOW, PHONE, at, count_rows, drain, enrol, messages, text, texts_to
from tests.web_helpers import csrf_token, log_in, make_staff

LATER = NOW + timedelta(hours=8)  # 18:00 in New York: staff read the day's replies
QUIET = NOW + timedelta(hours=13, minutes=30)  # 23:30 in New York: the clinic's quiet hours
SAID = {  # what Ana sends through the day, an hour apart: text or web check-in -> its meaning
    "2": "check-in",
    "web:worse": "worse",
    "my foot is numb": "red flag",
    "can we move my appointment?": "reschedule",
    "is it ok to take ibuprofen?": "question",
    "hello there": "not understood",
    "web:pain 8": "worse",
}


def staff_web(app, session, clinic, role="clinician", moment=LATER):
    """A staff member of `clinic` logged in at `moment`: (test client, user)."""
    user = make_staff(session, clinic, f"{role}.{clinic.id}@clinic.example", role=role)
    web = app.test_client()
    with at(moment):
        assert log_in(web, user.email).status_code == 302
    return web, user


def web_checkin(session, client_id, moment, answer=None, pain=None, red_flags=()):
    session.add(CheckIn(client_id=client_id, answer=answer, pain=pain, red_flags=list(red_flags),
                        source="web", created_at=moment))
    session.commit()


@pytest.fixture
def ana(client, clinic, session, providers):
    """Ana, enrolled at NOW, who then sends SAID through the day: her client row."""
    enrol(client, clinic[1])
    ana = session.exec(select(Client)).one()
    for hour, said in enumerate(SAID, start=1):
        moment = NOW + timedelta(hours=hour)
        if said == "web:worse":
            web_checkin(session, ana.id, moment, answer="worse")
        elif said == "web:pain 8":
            web_checkin(session, ana.id, moment, pain=8)
        else:
            text(client, said, moment)
    return ana


def page(web, path, moment=LATER):
    with at(moment):
        response = web.get(path)
    return response.status_code, response.get_data(as_text=True)


def items(html):
    """(source, what it says) of each inbox item, top to bottom."""
    return re.findall(r'data-testid="inbox-item" data-source="(\w+)".*?data-testid="meaning">'
                      r'([^<]+)</span>', html, re.S)


def reply(web, client_id, words, moment=LATER, reply_id=None):
    with at(moment):
        token = csrf_token(web.get(f"/clients/{client_id}/conversation"))
        form = {"csrf_token": token, "text": words}
        if reply_id:
            form["reply_id"] = reply_id
        return web.post(f"/clients/{client_id}/reply", data=form)


@pytest.mark.parametrize("backend", BOTH_BACKENDS, indirect=True)
def test_the_inbox_lists_texts_and_web_check_ins_newest_first_by_meaning(app, session, clinic, ana):
    web, _ = staff_web(app, session, clinic[0])
    status, html = page(web, "/inbox")
    assert status == 200
    assert items(html) == [("web" if said.startswith("web:") else "sms", meaning)
                           for said, meaning in reversed(SAID.items())]
    assert "7 unread" in html and html.count("data-unread") == 7
    assert "is it ok to take ibuprofen?" in html and "pain 8/10" in html
    for meaning, expected in [("worse", ["web:pain 8", "web:worse"]),
                              ("red_flag", ["my foot is numb"]),
                              ("question", ["is it ok to take ibuprofen?"]),
                              ("reschedule", ["can we move my appointment?"]),
                              ("unknown", ["hello there"])]:
        status, html = page(web, f"/inbox?meaning={meaning}")
        assert status == 200
        assert [m for _, m in items(html)] == [SAID[said] for said in expected], meaning
    status, html = page(web, "/inbox?meaning=angry")
    assert status == 422 and "meaning: one of worse, red_flag" in html


def test_the_inbox_pages(app, session, clinic):
    ana = Client(clinic_id=clinic[0].id, name="Ana Ruiz", phone=PHONE, time_zone="UTC")
    session.add(ana)
    session.commit()
    session.add_all([InboundMessage(
        provider_sid=f"SMpage{minute}", clinic_id=clinic[0].id, client_id=ana.id, from_number=PHONE,
        to_number="+12025550100", body=f"question {minute}?", intent="unknown",
        received_at=NOW + timedelta(minutes=minute)) for minute in range(30)])
    session.commit()
    web, _ = staff_web(app, session, clinic[0])
    first, second = page(web, "/inbox")[1], page(web, "/inbox?page=2")[1]
    assert len(items(first)) == 25 and "question 29?" in first and "question 5?" in first
    assert len(items(second)) == 5 and "question 4?" in second and "question 0?" in second
    assert "Page 2 of 2" in second and "30 unread" in second


def test_opening_a_conversation_marks_that_clients_items_read(app, session, clinic, ana):
    ben = Client(clinic_id=clinic[0].id, name="Ben Ode", phone="+12025550177", time_zone="UTC")
    session.add(ben)
    session.commit()
    web_checkin(session, ben.id, NOW + timedelta(hours=2), answer="better")
    web, user = staff_web(app, session, clinic[0])
    assert "8 new" in page(web, "/")[1]  # the nav's count, on every page

    status, html = page(web, f"/clients/{ana.id}/conversation")
    assert status == 200
    _, inbox = page(web, "/inbox")
    assert "1 unread" in inbox and inbox.count("data-unread") == 1 and "1 new" in inbox
    session.expire_all()
    read = session.exec(select(InboundMessage.read_by_id, InboundMessage.read_at)).all()
    read += session.exec(select(CheckIn.read_by_id, CheckIn.read_at).where(
        CheckIn.client_id == ana.id, CheckIn.source == "web")).all()
    assert read and set(read) == {(user.id, LATER)}
    viewed = session.exec(select(AuditEvent).where(AuditEvent.action == "conversation_viewed")).one()
    assert (viewed.actor, viewed.client_id, viewed.detail) == (f"staff:{user.id}", ana.id,
                                                                {"marked_read": 7})


def test_another_clinics_texts_never_appear(app, session, clinic, ana):
    other, _ = make_clinic(session, name="Other Clinic")
    zed = Client(clinic_id=other.id, name="Zed Other", phone="+12025550199", time_zone="UTC")
    session.add(zed)
    session.commit()
    session.add_all([
        InboundMessage(provider_sid="SMother1", clinic_id=other.id, client_id=zed.id,
                       from_number=zed.phone, to_number="+12025550100", body="zed's own words",
                       intent="unknown", received_at=LATER),
        # Filed under our clinic by mistake, but the client is theirs: still not ours to read.
        InboundMessage(provider_sid="SMother2", clinic_id=clinic[0].id, client_id=zed.id,
                       from_number=zed.phone, to_number="+12025550100", body="zed misfiled",
                       intent="unknown", received_at=LATER),
    ])
    session.commit()
    web_checkin(session, zed.id, LATER, answer="worse", red_flags=["fever"])
    web, _ = staff_web(app, session, clinic[0])
    for path in ("/inbox", "/inbox?meaning=worse", "/inbox?meaning=unknown"):
        html = page(web, path)[1]
        assert "Zed" not in html and "zed" not in html
    assert "7 unread" in page(web, "/inbox")[1]
    assert page(web, f"/clients/{zed.id}/conversation")[0] == 404
    assert reply(web, ana.id, "ok").status_code == 302  # the form is fine ...
    with at(LATER):
        response = web.post(f"/clients/{zed.id}/reply", data={
            "csrf_token": csrf_token(web.get("/inbox")), "text": "hello"})
    assert response.status_code == 404  # ... but not for another clinic's client
    assert count_rows(session, Message, Message.client_id == zed.id) == 0


def test_a_reply_reaches_twilio_through_the_outbox_with_its_author(app, session, clinic, ana,
                                                                   providers, dispatcher):
    """A person answering now: it goes at once, on the urgent lane, even in the client's quiet
    hours (like our answers to a client's own text)."""
    moment = QUIET
    twilio, _ = providers
    drain(dispatcher, LATER - timedelta(minutes=1))  # what the plan and the replies had due
    before = len(texts_to(twilio, PHONE))
    web, user = staff_web(app, session, clinic[0], moment=moment)
    response = reply(web, ana.id, "Thursday at 4 works. Rest today.", moment)
    assert response.status_code == 302
    [queued] = messages(session, kind=MessageKind.STAFF_REPLY)
    assert (queued.staff_id, queued.priority, queued.channel, queued.due_at) == (
        user.id, 0, "sms", moment)
    drain(dispatcher, moment + timedelta(seconds=5))
    assert texts_to(twilio, PHONE)[before:] == ["Back Walk Clinic: Thursday at 4 works. Rest today."]
    [sent] = messages(session, kind=MessageKind.STAFF_REPLY)
    assert sent.status == "sent" and sent.staff_id == user.id
    audit = session.exec(select(AuditEvent).where(AuditEvent.action == "staff_replied")).one()
    assert audit.actor == f"staff:{user.id}" and audit.detail["message_id"] == sent.id

    html = page(web, f"/clients/{ana.id}/conversation", moment + timedelta(minutes=1))[1]
    sides = re.findall(r'data-testid="(from-client|to-client)"', html)
    assert sides[-1] == "to-client" and "from-client" in sides
    order = [html.index(s) for s in ("my foot is numb", "hello there", "Clinician",
                                     "Back Walk Clinic: Thursday at 4 works.")]
    assert order == sorted(order)


def test_a_reply_to_a_client_who_stopped_texts_is_not_sent(app, session, clinic, ana, providers,
                                                           dispatcher):
    twilio, smtp = providers
    drain(dispatcher, LATER - timedelta(minutes=1))
    before = len(texts_to(twilio, PHONE))
    web, _ = staff_web(app, session, clinic[0])
    assert reply(web, ana.id, "Call us when you can").status_code == 302
    # Her STOP lands after the reply was queued (as if after the claim): the send-time rule holds it.
    session.get(Client, ana.id).sms_opted_out_at = LATER
    session.commit()
    drain(dispatcher, LATER + timedelta(seconds=5))
    assert texts_to(twilio, PHONE)[before:] == []
    [held] = messages(session, kind=MessageKind.STAFF_REPLY)
    assert (held.status, held.error_code) == ("cancelled", "opted_out")

    # Opted out already and no email: nothing is queued, staff are told to call.
    response = reply(web, ana.id, "Are you ok?")
    assert response.status_code == 422 and "call them" in response.get_data(as_text=True)
    assert len(messages(session, kind=MessageKind.STAFF_REPLY)) == 1

    # With an email on file, the reply goes by email instead.
    session.get(Client, ana.id).email = "ana@example.com"
    session.commit()
    assert reply(web, ana.id, "Are you ok?").status_code == 302
    drain(dispatcher, LATER + timedelta(seconds=10))
    assert texts_to(twilio, PHONE)[before:] == []
    [email] = [m for m in smtp.messages if "Are you ok?" in str(m)]
    assert "ana@example.com" in str(email)


def test_a_stop_after_the_reply_was_queued_cancels_it(client, app, session, clinic, ana, providers,
                                                      dispatcher):
    twilio, _ = providers
    drain(dispatcher, LATER - timedelta(minutes=1))
    before = len(texts_to(twilio, PHONE))
    web, _ = staff_web(app, session, clinic[0])
    assert reply(web, ana.id, "Call us when you can").status_code == 302
    text(client, "STOP", LATER + timedelta(seconds=1))
    drain(dispatcher, LATER + timedelta(seconds=5))
    sent = texts_to(twilio, PHONE)[before:]
    assert len(sent) == 1 and "Call us" not in sent[0]  # the STOP's confirmation only


def test_an_empty_or_too_long_reply_is_refused_with_its_field(app, session, clinic, ana):
    web, _ = staff_web(app, session, clinic[0])
    for words, problem in [("", "Write the reply first"), ("   \n ", "Write the reply first"),
                           ("x" * 641, "Keep it to 640 characters (this is 641)")]:
        response = reply(web, ana.id, words)
        html = response.get_data(as_text=True)
        assert response.status_code == 422 and f"text: {problem}" in html
        assert 'aria-invalid="true"' in html
    assert messages(session, kind=MessageKind.STAFF_REPLY) == []
    for _ in range(2):  # the longest; and a double tap is one message
        assert reply(web, ana.id, "y" * 640, reply_id="a" * 32).status_code == 302
    assert len(messages(session, kind=MessageKind.STAFF_REPLY)) == 1


def test_the_preview_counts_the_replys_segments(app, session, clinic, ana):
    web, _ = staff_web(app, session, clinic[0])
    prefix = len("Back Walk Clinic: ")
    with at(LATER):
        token = csrf_token(web.get(f"/clients/{ana.id}/conversation"))
        counts = [web.post(f"/clients/{ana.id}/reply/preview", json={"text": "x" * n},
                           headers={"X-CSRFToken": token}).get_json()["segments"]
                  for n in (160 - prefix, 161 - prefix, 306 - prefix, 307 - prefix)]
        refused = web.post(f"/clients/{ana.id}/reply/preview", json={"text": ""},
                           headers={"X-CSRFToken": token})
    assert counts == [1, 2, 2, 3]
    assert refused.status_code == 422 and refused.get_json()["problem"] == "Write the reply first."


def test_who_may_read_the_inbox_and_reply(app, session, clinic, ana):
    for role, inbox, reply_status in [("front_desk", 403, 403), ("read_only", 200, 403),
                                      ("clinician", 200, 302)]:
        web, _ = staff_web(app, session, clinic[0], role=role)
        assert page(web, "/inbox")[0] == inbox, role
        assert page(web, f"/clients/{ana.id}/conversation")[0] == inbox, role
        assert ("nav-inbox" in page(web, "/")[1]) == (inbox == 200), role
        with at(LATER):
            token = csrf_token(web.get("/"))
            response = web.post(f"/clients/{ana.id}/reply", data={"csrf_token": token, "text": "hi"})
        assert response.status_code == reply_status, role
        if role == "read_only":
            assert 'name="text"' not in page(web, f"/clients/{ana.id}/conversation")[1]


def test_a_text_never_shows_a_web_check_in_that_has_the_same_id(app, session, clinic):
    """Text 1 and web check-in 1 are different things: the question must not read "pain 6/10"."""
    ana = Client(clinic_id=clinic[0].id, name="Ana Ruiz", phone=PHONE, time_zone="UTC")
    session.add(ana)
    session.commit()
    session.add(InboundMessage(provider_sid="SMsameid", clinic_id=clinic[0].id, client_id=ana.id,
                               from_number=PHONE, to_number="+12025550100",
                               body="Can I take a hot bath tonight?", intent="unknown",
                               received_at=NOW + timedelta(hours=1)))
    web_checkin(session, ana.id, NOW + timedelta(hours=2), answer="worse", pain=6)
    web, _ = staff_web(app, session, clinic[0])
    html = page(web, "/inbox")[1]
    web_item, text_item = html.split('data-testid="inbox-item"')[1:3]
    assert "pain 6/10" in web_item
    assert "hot bath" in text_item and "pain 6/10" not in text_item
