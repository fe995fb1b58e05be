"""Outgoing channels behind one small interface.

A channel's `send` returns the provider's id, or raises TransientError (try again later) or
PermanentError (this recipient will never get it on this channel).
"""

from dataclasses import dataclass
from typing import Protocol

from service.config import Config


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str  # e.g. "text/calendar"
    data: bytes


@dataclass(frozen=True)
class Outgoing:
    to: str
    body: str
    subject: str | None = None
    html: str | None = None
    attachments: tuple[Attachment, ...] = ()
    status_callback: str | None = None
    sender: str | None = None  # an SMS's clinic's own number or Messaging Service; None: the default


class SendError(Exception):
    def __init__(self, message: str, code: str | None = None):
        super().__init__(message)
        self.code = code


class TransientError(SendError):
    def __init__(self, message: str, code: str | None = None, retry_after: float | None = None):
        super().__init__(message, code)
        self.retry_after = retry_after


class PermanentError(SendError):
    pass


class Channel(Protocol):
    sender: str  # the rate limit applies per sender (a From number, a Messaging Service, an inbox)

    async def send(self, message: Outgoing) -> str: ...

    async def close(self) -> None: ...


def build_channels(config: Config) -> dict[str, Channel]:
    """Real providers where configured; otherwise the console, so development needs no accounts."""
    from service.messaging.channels.console import ConsoleChannel
    from service.messaging.channels.email_smtp import SMTPEmail
    from service.messaging.channels.sms_twilio import TwilioSMS

    return {
        "sms": TwilioSMS(config) if config.sms_configured else ConsoleChannel("SMS"),
        "email": SMTPEmail(config) if config.email_configured else ConsoleChannel("EMAIL"),
    }
