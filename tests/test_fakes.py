"""The protocol fakes in tests/fakes speak real HTTP/SMTP to the real client libraries."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import smtplib
import subprocess
import sys
from email.message import EmailMessage
from pathlib import Path

import aiohttp
import pytest
import requests
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from tests.fakes.smtp_server import FakeSMTP
from tests.fakes.twilio import Attempt, FakeTwilio

ACCOUNT = "AC" + "0" * 32
TOKEN = "token"
FROM = "+15550000000"
SID_RE = re.compile(r"^SM[0-9a-f]{32}$")


@pytest.fixture
def twilio_fake():
    with FakeTwilio() as fake:
        yield fake


@pytest.fixture
def smtp_fake():
    with FakeSMTP() as fake:
        yield fake


def sync_client(fake: FakeTwilio, **http_kwargs) -> Client:
    client = Client(ACCOUNT, TOKEN, http_client=TwilioHttpClient(**http_kwargs))
    client.api.base_url = fake.url
    return client


# --------------------------------------------------------------------------- Twilio


def test_twilio_sync_send_is_recorded(twilio_fake):
    client = sync_client(twilio_fake)
    sent = client.messages.create(to="+15551230001", from_=FROM, body="hi there")

    assert SID_RE.match(sent.sid)
    assert sent.status == "queued"
    assert (sent.to, sent.from_, sent.body) == ("+15551230001", FROM, "hi there")
    [msg] = twilio_fake.wait_for(1)
    assert msg.sid == sent.sid
    assert msg.account_sid == ACCOUNT
    assert msg.form["To"] == "+15551230001"
    assert msg.form["From"] == FROM
    assert msg.form["Body"] == "hi there"
    expected = base64.b64encode(f"{ACCOUNT}:{TOKEN}".encode()).decode()
    assert msg.authorization == f"Basic {expected}"
    assert twilio_fake.attempts == [Attempt("+15551230001", 201)]


# twilio 9.13's async client still passes aiohttp.BasicAuth, deprecated in aiohttp 3.14.
@pytest.mark.filterwarnings(
    "ignore:BasicAuth is deprecated:DeprecationWarning",
    "ignore:The 'auth' parameter is deprecated:DeprecationWarning",
)
def test_twilio_async_concurrent_sends_get_unique_sids(twilio_fake):
    async def send_all() -> list[str]:
        # AsyncTwilioHttpClient opens an aiohttp ClientSession in __init__: build it in the loop.
        client = Client(ACCOUNT, TOKEN, http_client=AsyncTwilioHttpClient())
        client.api.base_url = twilio_fake.url
        gate = asyncio.Semaphore(32)

        async def send(i: int) -> str:
            async with gate:
                msg = await client.messages.create_async(
                    to=f"+1555{i:07d}", from_=FROM, body=f"message {i}"
                )
                return msg.sid

        try:
            return await asyncio.gather(*(send(i) for i in range(200)))
        finally:
            await client.http_client.close()

    sids = asyncio.run(send_all())
    assert len(set(sids)) == 200
    received = twilio_fake.wait_for(200)
    assert {m.sid for m in received} == set(sids)
    assert {m.form["To"] for m in received} == {f"+1555{i:07d}" for i in range(200)}


def test_twilio_fail_next_then_success(twilio_fake):
    client = sync_client(twilio_fake)
    twilio_fake.fail_next(2, 500)
    statuses = []
    for _ in range(3):
        try:
            client.messages.create(to="+15551230001", from_=FROM, body="retry me")
            statuses.append(201)
        except TwilioRestException as exc:
            assert exc.code == 20500
            statuses.append(exc.status)
    assert statuses == [500, 500, 201]
    assert len(twilio_fake.messages) == 1
    assert [a.status for a in twilio_fake.attempts] == [500, 500, 201]


def test_twilio_fail_next_only_for_given_to(twilio_fake):
    client = sync_client(twilio_fake)
    twilio_fake.fail_next(1, 400, code=21211, to="+15559999999")
    client.messages.create(to="+15551230001", from_=FROM, body="ok")
    with pytest.raises(TwilioRestException) as info:
        client.messages.create(to="+15559999999", from_=FROM, body="bad number")
    assert (info.value.status, info.value.code) == (400, 21211)
    assert [m.form["To"] for m in twilio_fake.messages] == ["+15551230001"]


def test_twilio_429_retry_after_visible_to_aiohttp(twilio_fake):
    url = f"{twilio_fake.url}/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
    form = {"To": "+15551230001", "From": FROM, "Body": "hi"}

    async def post_twice():
        headers = {"Authorization": aiohttp.encode_basic_auth(ACCOUNT, TOKEN)}
        async with aiohttp.ClientSession(headers=headers) as session:
            async with session.post(url, data=form) as first:
                first_result = (first.status, first.headers.get("Retry-After"), await first.json())
            async with session.post(url, data=form) as second:
                second_result = (second.status, await second.json())
        return first_result, second_result

    twilio_fake.fail_next(1, 429, retry_after=7)
    (status, retry_after, body), (status2, body2) = asyncio.run(post_twice())
    assert (status, retry_after) == (429, "7")
    assert body["code"] == 20429 and body["status"] == 429
    assert status2 == 201 and SID_RE.match(body2["sid"])


def test_twilio_unknown_path_is_404(twilio_fake):
    response = requests.get(f"{twilio_fake.url}/2010-04-01/Accounts/{ACCOUNT}.json", timeout=5)
    assert response.status_code == 404
    assert response.json() == {"code": 20404, "message": "not found", "status": 404}


def test_twilio_delay_next_trips_client_timeout(twilio_fake):
    client = sync_client(twilio_fake, timeout=0.2)
    twilio_fake.delay_next(1, 1.0)
    with pytest.raises(requests.exceptions.Timeout):
        client.messages.create(to="+15551230001", from_=FROM, body="slow")
    # Twilio accepted it even though the client gave up: the ambiguous case.
    assert len(twilio_fake.wait_for(1)) == 1


def test_twilio_standalone_process_logs_messages(tmp_path: Path):
    log = tmp_path / "messages.jsonl"
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.twilio_server", "--port", "0", "--log", str(log)],
        cwd=root,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        client = Client(ACCOUNT, TOKEN)
        client.api.base_url = url
        sent = client.messages.create(to="+15551230001", from_=FROM, body="from a subprocess")
        [line] = log.read_text().splitlines()
        logged = json.loads(line)
        assert logged["sid"] == sent.sid
        assert (logged["to"], logged["body"]) == ("+15551230001", "from a subprocess")
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
        proc.stdout.close()


# --------------------------------------------------------------------------- SMTP


def make_email(to: str = "patient@example.org") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Clinic <clinic@example.com>"
    msg["To"] = to
    msg["Subject"] = "Your exercises – week 1"
    msg.set_content("Plain text: bend gently.\n")
    msg.add_alternative("<p>HTML: <b>bend gently</b>.</p>\n", subtype="html")
    return msg


def test_smtp_multipart_with_attachment(smtp_fake):
    msg = make_email()
    pdf = b"%PDF-1.4\n" + bytes(range(256)) * 4
    msg.add_attachment(pdf, maintype="application", subtype="pdf", filename="plan.pdf")
    with smtplib.SMTP(smtp_fake.host, smtp_fake.port, timeout=5) as smtp:
        smtp.send_message(msg)

    [got] = smtp_fake.wait_for(1)
    assert got.mail_from == "clinic@example.com"
    assert got.rcpt_tos == ["patient@example.org"]
    assert got.subject == "Your exercises – week 1"
    assert got.message.get_body(("plain",)).get_content() == "Plain text: bend gently.\n"
    assert "<b>bend gently</b>" in got.message.get_body(("html",)).get_content()
    [attachment] = got.message.iter_attachments()
    assert attachment.get_filename() == "plan.pdf"
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_content() == pdf
    assert got.login is None


def test_smtp_auth_required():
    with FakeSMTP(require_auth=("mailer", "s3cret")) as fake:
        with smtplib.SMTP(fake.host, fake.port, timeout=5) as smtp:
            with pytest.raises(smtplib.SMTPSenderRefused) as info:
                smtp.send_message(make_email())
            assert info.value.smtp_code == 530
        with smtplib.SMTP(fake.host, fake.port, timeout=5) as smtp:
            with pytest.raises(smtplib.SMTPAuthenticationError):
                smtp.login("mailer", "wrong")
        with smtplib.SMTP(fake.host, fake.port, timeout=5) as smtp:
            smtp.login("mailer", "s3cret")
            smtp.send_message(make_email())
        [got] = fake.wait_for(1)
        assert got.login == "mailer"
        assert fake.auth_failures >= 1  # smtplib retries with each offered mechanism


def test_smtp_refuse_is_transient(smtp_fake):
    smtp_fake.refuse_next(1, "data")
    with smtplib.SMTP(smtp_fake.host, smtp_fake.port, timeout=5) as smtp:
        with pytest.raises(smtplib.SMTPDataError) as info:
            smtp.send_message(make_email())
        assert info.value.smtp_code == 451
        smtp.send_message(make_email())  # the retry on the same connection goes through

    smtp_fake.refuse = "rcpt"
    with smtplib.SMTP(smtp_fake.host, smtp_fake.port, timeout=5) as smtp:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            smtp.send_message(make_email())
    assert refused.value.recipients["patient@example.org"][0] == 451
    smtp_fake.refuse = None

    assert len(smtp_fake.wait_for(1)) == 1
    assert smtp_fake.refused == 2
