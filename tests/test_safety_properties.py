"""Property: for any interleaving of enrolments, replies, time passing and dispatch runs, no text
reaches a number that said STOP (but the one confirmation), and every "worse" leaves exactly one
open escalation for that client."""

import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from freezegun import freeze_time
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session, func, select
from twilio.request_validator import RequestValidator

from service import create_app
from service.accounts import apikeys
from service.messaging.dispatch import Dispatcher
from service.models import Client, Clinic, Escalation
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, NO_PROVIDERS, PUBLIC_URL
from tests.fakes.twilio import FakeTwilio

PHONES = ["+12025550123", "+12025550124", "+12025550125"]
START_AT = datetime(2026, 3, 7, 20, 0, tzinfo=UTC)  # a DST change comes up in New York
REPLIES = ["STOP", "stop texting me", "START", "3", "worse", "1", "2", "pain 8", "C", "hello",
           "my leg is numb"]

steps = st.lists(st.one_of(
    st.tuples(st.just("enrol"), st.sampled_from(PHONES)),
    st.tuples(st.just("reply"), st.sampled_from(PHONES), st.sampled_from(REPLIES)),
    st.tuples(st.just("wait"), st.sampled_from([1, 30, 125, 400, 1440, 4320])),
    st.tuples(st.just("dispatch")),
), min_size=1, max_size=30)


@pytest.fixture(scope="module")
def twilio():
    with FakeTwilio() as fake:
        yield fake


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=steps)
def test_stop_is_final_and_worse_always_escalates_once(steps, sqlite_template, twilio):
    twilio.reset()
    with tempfile.TemporaryDirectory() as folder:
        database = Path(folder) / "aftercare.db"
        shutil.copy(sqlite_template, database)
        app = create_app({**NO_PROVIDERS, "TESTING": True, "DATABASE_URL": f"sqlite:///{database}",
                          "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
                          "TWILIO_FROM_NUMBER": FROM_NUMBER, "TWILIO_API_BASE_URL": twilio.url})
        try:
            run(app, twilio, steps)
        finally:
            app.extensions["aftercare.engine"].dispose()


def run(app, twilio, steps):
    engine = app.extensions["aftercare.engine"]
    http = app.test_client()
    with Session(engine) as session:
        clinic = Clinic(name="Prop Clinic", phone="+12025550100", on_call_phones=["+12025550101"])
        session.add(clinic)
        session.commit()
        key = apikeys.issue(session, clinic, "prop")
    dispatcher = Dispatcher(app.extensions["aftercare.config"], engine, "prop-worker")
    opted_out_since: dict[str, int] = {}  # phone -> how many texts the fake had at its STOP
    said_worse: set[str] = set()
    now = START_AT
    with freeze_time(now, real_asyncio=True) as clock:
        for sid, step in enumerate(steps):
            if step[0] == "enrol":
                body = {"client": {"name": "Pat Doe", "phone": step[1], "sms_consent": True,
                                   "time_zone": "America/New_York"}, "pain_before": 3}
                http.post("/api/v1/visits", json=body, headers={"Authorization": f"Bearer {key}"})
            elif step[0] == "reply":
                _, phone, words = step
                form = {"MessageSid": f"SM{sid:032d}", "From": phone, "To": FROM_NUMBER,
                        "Body": words}
                url = f"{PUBLIC_URL}/webhooks/twilio/sms"
                signature = RequestValidator(AUTH_TOKEN).compute_signature(url, form)
                http.post("/webhooks/twilio/sms", data=form,
                          headers={"X-Twilio-Signature": signature})
                known = _client(engine, phone) is not None
                if known and words.lower() in ("stop", "stop texting me"):
                    opted_out_since.setdefault(phone, len(twilio.messages))
                elif known and words == "START":
                    opted_out_since.pop(phone, None)
                elif known and words in ("3", "worse"):
                    said_worse.add(phone)
            elif step[0] == "wait":
                now += timedelta(minutes=step[1])
                clock.move_to(now)
            else:
                dispatcher.drain()
            for phone, seen in opted_out_since.items():
                after_stop = [m.body for m in twilio.messages[seen:] if m.to == phone]
                assert all("no more texts" in body for body in after_stop), after_stop
                assert len(after_stop) <= 1
            for phone in said_worse:
                client = _client(engine, phone)
                with Session(engine) as session:
                    open_count = session.exec(select(func.count()).select_from(Escalation).where(
                        Escalation.client_id == client.id, Escalation.status == "open")).one()
                assert open_count == 1


def _client(engine, phone):
    with Session(engine) as session:
        return session.exec(select(Client).where(Client.phone == phone)).first()
