"""The `aftercare` command a newcomer meets first (`make run` calls `db upgrade`, `demo`, `worker`)."""

import asyncio
import io

from sqlmodel import select

from service.messaging.channels import Outgoing
from service.messaging.channels.console import ConsoleChannel
from service.models import ApiKey, Clinic, Message, StaffUser


def test_demo_creates_the_clinic_once_and_enrols_a_visit_each_time(runner, session):
    first = runner.invoke(args=["demo"])
    assert first.exit_code == 0, first.output
    assert "owner@example.com /" in first.output and "ak_" in first.output
    second = runner.invoke(args=["demo"])
    assert second.exit_code == 0 and "ak_" not in second.output
    assert len(session.exec(select(Clinic)).all()) == 1
    assert session.exec(select(StaffUser)).one().role == "owner"
    assert len(session.exec(select(ApiKey)).all()) == 1
    first_messages = session.exec(
        select(Message).where(Message.kind == "window_start").order_by(Message.id)).all()
    assert [m.status for m in first_messages] == ["cancelled", "pending"]  # superseded


def test_the_printed_api_key_works(runner, client):
    output = runner.invoke(args=["demo"]).output
    key = next(word for word in output.split() if word.startswith("ak_"))
    response = client.get("/api/v1/visits/1", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200


def test_create_api_key_for_an_unknown_clinic_is_a_clear_error(runner):
    result = runner.invoke(args=["create-api-key", "42"])
    assert result.exit_code != 0 and "no clinic with id 42" in result.output


def test_console_channel_marks_what_it_did_not_send():
    stream = io.StringIO()
    channel = ConsoleChannel("SMS", stream)
    provider_id = asyncio.run(channel.send(Outgoing(to="+12025550123", body="Hi")))
    assert provider_id.startswith("console-")
    assert "SMS (console, not sent) to +12025550123" in stream.getvalue()
    assert "Hi" in stream.getvalue()
