"""The inbox on a phone (Chromium, 390x844): a clinician opens the inbox from the nav, opens a
client's conversation (which marks it read), types a reply with its live segment count, sends it,
and the text reaches the fake Twilio through the outbox and the dispatcher.

The server runs on the real clock: the clinic has no quiet hours, so nothing here waits for them."""

import threading
from datetime import time, timedelta

from sqlmodel import select

from service.domain.messages import MessageKind
from service.messaging.dispatch import Dispatcher
from service.models import CheckIn, Client, InboundMessage, Message, utcnow
from tests.browser.conftest import log_in, no_horizontal_scroll, shot
from tests.conftest import make_clinic
from tests.web_helpers import make_staff

PHONE_NUMBER = "+12025550142"


def test_open_the_inbox_and_a_conversation_and_reply(page, live, db, providers):
    base, app = live
    clinic, _ = make_clinic(db, name="Sunrise Back Walking", quiet_start=time(0), quiet_end=time(0))
    nurse = make_staff(db, clinic, "nurse@sunrise.example", role="clinician")
    maria = Client(clinic_id=clinic.id, name="Maria Lopez", phone=PHONE_NUMBER,
                   time_zone="America/New_York", sms_consent_at=utcnow())
    db.add(maria)
    db.commit()
    now = utcnow()
    db.add_all([
        InboundMessage(provider_sid="SMbrowser1", clinic_id=clinic.id, client_id=maria.id,
                       from_number=PHONE_NUMBER, to_number=clinic.phone, intent="unknown",
                       body="Can I take a hot bath tonight?", received_at=now - timedelta(hours=1)),
        CheckIn(client_id=maria.id, answer="worse", pain=6, source="web",
                created_at=now - timedelta(minutes=5)),
    ])
    db.commit()

    log_in(page, base, nurse.email)
    nav = page.locator("[data-testid=nav-inbox]")
    assert "2 new" in nav.inner_text()
    nav.click()
    page.wait_for_url(f"{base}/inbox")
    items = page.locator("[data-testid=inbox-item]")
    assert items.count() == 2
    assert "worse" in items.nth(0).inner_text()  # the web check-in, newest first
    assert "Can I take a hot bath tonight?" in items.nth(1).inner_text()
    assert no_horizontal_scroll(page)
    shot(page, "inbox")

    items.nth(1).get_by_role("link", name="Maria Lopez").click()
    page.wait_for_url(f"{base}/clients/{maria.id}/conversation")
    assert page.locator("[data-testid=from-client]").count() == 2
    assert "new" not in page.locator("[data-testid=nav-inbox]").inner_text()  # read now
    page.fill("#text", "Not tonight: a warm shower is fine. Call us if it gets worse.")
    page.wait_for_selector("[data-testid=segments] >> text=1 text message(s), GSM-7")
    assert no_horizontal_scroll(page)
    shot(page, "conversation-reply")
    page.get_by_role("button", name="Send").click()
    page.wait_for_selector("text=Reply on its way by text.")
    assert "Not tonight: a warm shower is fine." in page.locator("[data-testid=to-client]").last.inner_text()

    twilio, _ = providers
    dispatcher = Dispatcher(app.extensions["aftercare.config"], app.extensions["aftercare.engine"],
                            worker_id="browser-test")
    # Playwright's sync API runs an event loop in this thread; the dispatcher runs its own.
    worker = threading.Thread(target=dispatcher.drain)
    worker.start()
    worker.join(timeout=30)
    [sent] = [m for m in twilio.wait_for(1) if m.to == PHONE_NUMBER]
    assert sent.body == ("Sunrise Back Walking: Not tonight: a warm shower is fine. "
                         "Call us if it gets worse.")
    db.expire_all()
    row = db.exec(select(Message).where(Message.kind == MessageKind.STAFF_REPLY)).one()
    assert (row.status, row.staff_id) == ("sent", nurse.id)
    page.reload()
    assert "sent" in page.locator("[data-testid=to-client]").last.inner_text()
