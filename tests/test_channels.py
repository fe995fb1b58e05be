"""Channel details the end-to-end tests do not reach: API-key auth, SMTP login and refusals."""

import asyncio
import base64

import pytest

from service.config import Config
from service.messaging.channels import Outgoing, PermanentError, TransientError
from service.messaging.channels.email_smtp import SMTPEmail, _by_code
from service.messaging.channels.sms_twilio import TwilioSMS
from tests.conftest import ACCOUNT_SID, FROM_NUMBER, NO_PROVIDERS
from tests.fakes.smtp_server import FakeSMTP

MESSAGE = Outgoing(to="ana@example.com", body="plain", subject="Hello", html="<p>html</p>")


def smtp_config(fake, **extra) -> Config:
    return Config({**NO_PROVIDERS, "SMTP_HOST": fake.host, "SMTP_PORT": fake.port,
                   "SMTP_TLS": "none", "SMTP_SENDER": "Clinic <care@clinic.example>", **extra})


async def send_and_close(channel, message):
    try:
        return await channel.send(message)
    finally:
        await channel.close()


def test_twilio_api_key_and_secret_authenticate_for_the_account(fake_twilio):
    config = Config({**NO_PROVIDERS, "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
                     "TWILIO_API_KEY_SID": "SK" + "3" * 32, "TWILIO_API_KEY_SECRET": "secret",
                     "TWILIO_FROM_NUMBER": FROM_NUMBER, "TWILIO_API_BASE_URL": fake_twilio.url})
    sid = asyncio.run(send_and_close(TwilioSMS(config), Outgoing(to="+12025550123", body="hi")))
    [received] = fake_twilio.messages
    assert received.sid == sid and received.account_sid == ACCOUNT_SID
    key = base64.b64encode(b"SK" + b"3" * 32 + b":secret").decode()
    assert received.authorization == f"Basic {key}"


def test_smtp_login_when_a_user_is_configured():
    with FakeSMTP(require_auth=("clinic", "pw")) as fake:
        config = smtp_config(fake, SMTP_USER="clinic", SMTP_PASSWORD="pw")
        asyncio.run(send_and_close(SMTPEmail(config), MESSAGE))
        [email] = fake.wait_for(1)
    assert email.login == "clinic"
    assert email.message.get_body(("html",)).get_content().strip() == "<p>html</p>"


def test_smtp_wrong_password_is_transient_so_nothing_is_lost():
    # 535: a settings problem the clinic can fix; the message waits rather than failing.
    with FakeSMTP(require_auth=("clinic", "pw")) as fake:
        config = smtp_config(fake, SMTP_USER="clinic", SMTP_PASSWORD="wrong")
        with pytest.raises(TransientError) as caught:
            asyncio.run(send_and_close(SMTPEmail(config), MESSAGE))
    assert caught.value.code == "smtp-auth"


@pytest.mark.parametrize("code, error", [(550, PermanentError), (552, PermanentError),
                                         (421, TransientError), (451, TransientError)])
def test_smtp_reply_codes_classify_by_their_first_digit(code, error):
    assert type(_by_code(code, b"reason")) is error


@pytest.mark.parametrize("stage", ["rcpt", "data"])
def test_smtp_451_is_transient(stage):
    with FakeSMTP(refuse=stage) as fake:
        with pytest.raises(TransientError) as caught:
            asyncio.run(send_and_close(SMTPEmail(smtp_config(fake)), MESSAGE))
    assert caught.value.code == "smtp-451"


def test_smtp_server_down_is_transient():
    with FakeSMTP() as fake:
        config = smtp_config(fake)
    with pytest.raises(TransientError):  # the port is closed now
        asyncio.run(send_and_close(SMTPEmail(config), MESSAGE))
