"""Each clinic its own sender (issue 14, items 1-3): set with the CLI or in settings, checked by
`doctor`; each clinic's texts leave from it, and a reply, a STOP or a status callback belongs to
the clinic whose sender it came to, whoever texted that phone last."""

import pytest
from sqlmodel import select

from service.models import AuditEvent, Clinic
from tests.conftest import make_clinic
from tests.web_helpers import csrf_token, log_in, make_staff

A_NUMBER, B_NUMBER = "+12025550170", "+12025550180"
B_SERVICE = "MG" + "b" * 32


def clinics(session) -> dict[str, Clinic]:
    session.expire_all()
    return {c.name: c for c in session.exec(select(Clinic))}


# --- setting the sender: create-clinic, set-sender, settings, doctor ------------------------------

def test_a_second_clinic_without_its_own_sender_is_refused(runner, session):
    assert runner.invoke(args=["create-clinic", "A", "--phone", "+12025550100"]).exit_code == 0
    refused = runner.invoke(args=["create-clinic", "B", "--phone", "+12025550100"])
    assert refused.exit_code == 1
    assert "each needs its own sender" in refused.output
    assert "without one so far: 1 (A)" in refused.output
    assert set(clinics(session)) == {"A"}

    created = runner.invoke(args=["create-clinic", "B", "--phone", "+12025550100",
                                  "--messaging-service", B_SERVICE, "--daily-send-cap", "200"])
    assert created.exit_code == 0, created.output
    assert "clinic 1 (A) has no sender of its own: aftercare set-sender 1" in created.output
    b = clinics(session)["B"]
    assert (b.sms_sender, b.daily_send_cap) == (B_SERVICE, 200)


@pytest.mark.parametrize("args, reason", [
    (["--sender", A_NUMBER, "--messaging-service", B_SERVICE], "not both"),
    (["--sender", B_SERVICE], "Invalid value for '--sender'"),
    (["--messaging-service", A_NUMBER], "MG and 32 lowercase hex digits"),
    (["--messaging-service", "MG123"], "MG and 32 lowercase hex digits"),
    (["--sender", "+1555"], "Invalid value for '--sender'"),
    (["--daily-send-cap", "0"], "Invalid value for '--daily-send-cap'"),
])
def test_create_clinic_checks_the_sender(runner, session, args, reason):
    result = runner.invoke(args=["create-clinic", "X", "--phone", "+12025550100", *args])
    assert result.exit_code == 2 and reason in result.output, result.output
    assert clinics(session) == {}


def test_set_sender_gives_a_clinic_its_own_and_refuses_another_clinics(runner, session):
    make_clinic(session, name="A")
    make_clinic(session, name="B", sms_sender=B_NUMBER)
    a = clinics(session)["A"]
    taken = runner.invoke(args=["set-sender", str(a.id), "--sender", B_NUMBER])
    assert taken.exit_code == 1 and f"{B_NUMBER} is another clinic's sender" in taken.output
    assert runner.invoke(args=["set-sender", str(a.id)]).exit_code == 2
    done = runner.invoke(args=["set-sender", str(a.id), "--sender", "(202) 555-0170"])
    assert done.exit_code == 0, done.output
    assert clinics(session)["A"].sms_sender == A_NUMBER


def doctor(settings):
    from service import create_app

    return create_app(settings, serving=False).test_cli_runner().invoke(args=["doctor"]).output


def test_doctor_fails_while_clinics_share_the_default_sender(settings, session):
    make_clinic(session, name="A")
    assert "clinic sender" not in doctor(settings)  # one clinic: the default is its own
    make_clinic(session, name="B", sms_sender=B_NUMBER)
    output = doctor(settings)
    assert ("FAIL  clinic sender: clinic 1 (A) shares the default sender with other clinics: "
            "aftercare set-sender 1 --sender +1...") in output
    a = clinics(session)["A"]
    a.sms_sender = A_NUMBER
    session.add(a)
    session.commit()
    assert "ok    clinic senders: each of the 2 clinics has its own" in doctor(settings)


def test_owners_set_the_sender_and_the_cap_in_settings(client, session):
    a, _ = make_clinic(session, name="A")
    make_clinic(session, name="B", sms_sender=B_NUMBER)
    log_in(client, make_staff(session, a, "owner@a.example").email)

    def save(**form):
        token = csrf_token(client.get("/settings"))
        return client.post("/settings/sender", data={"csrf_token": token, **form})

    assert "another clinic of this service sends from it" in save(
        sms_sender=B_NUMBER).get_data(as_text=True)
    assert "each needs its own number" in save(sms_sender="").get_data(as_text=True)
    assert save(sms_sender="MG12", daily_send_cap="x").status_code == 422
    assert clinics(session)["A"].sms_sender is None
    assert save(sms_sender="202-555-0170", daily_send_cap="150").status_code == 302
    a = clinics(session)["A"]
    assert (a.sms_sender, a.daily_send_cap) == (A_NUMBER, 150)
    assert f'value="{A_NUMBER}"' in client.get("/settings").get_data(as_text=True)
    assert session.exec(select(AuditEvent).where(AuditEvent.action == "sender_changed",
                                                 AuditEvent.clinic_id == a.id)).one()
