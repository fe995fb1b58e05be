"""SMS through Twilio's async client (many requests in flight from one process)."""

import asyncio
import re

import aiohttp
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from service.config import Config
from service.messaging.channels import Outgoing, PermanentError, TransientError

# Twilio answers these for a request that may succeed later; every other 4xx is about the message.
TRANSIENT_STATUSES = {401, 408, 429}


MESSAGING_SERVICE_SID = re.compile(r"MG[0-9a-f]{32}")


def check_messaging_service(value: str) -> str:
    """A Messaging Service SID as a clinic's sender (ValueError saying what is wrong)."""
    if not MESSAGING_SERVICE_SID.fullmatch(value.strip()):
        raise ValueError("a Messaging Service SID is MG and 32 lowercase hex digits")
    return value.strip()


def sender_fields(sender: str) -> dict[str, str]:
    """How Twilio is told who sends: a Messaging Service picks its own number from its pool."""
    if MESSAGING_SERVICE_SID.fullmatch(sender):
        return {"messaging_service_sid": sender}
    return {"from_": sender}


def _retry_after(headers) -> float | None:
    try:
        return float(headers.get("Retry-After"))
    except (TypeError, ValueError):
        return None


class _HttpClient(AsyncTwilioHttpClient):
    """Raises TransientError on 5xx and 429 while the response headers (Retry-After) are at hand:
    Twilio's exceptions do not carry them."""

    async def request(self, *args, **kwargs):
        response = await super().request(*args, **kwargs)
        status = response.status_code
        if status >= 500 or status in TRANSIENT_STATUSES:
            raise TransientError(f"Twilio answered HTTP {status}", code=f"http-{status}",
                                 retry_after=_retry_after(response.headers))
        return response


class TwilioSMS:
    def __init__(self, config: Config):
        self.config = config
        self.sender = config.TWILIO_MESSAGING_SERVICE_SID or config.TWILIO_FROM_NUMBER
        self._client: Client | None = None

    def _connect(self) -> Client:
        """Built on first use: aiohttp's session must be created inside the running event loop."""
        cfg = self.config
        http = _HttpClient()
        if cfg.TWILIO_API_KEY_SID and cfg.TWILIO_API_KEY_SECRET:
            client = Client(cfg.TWILIO_API_KEY_SID, cfg.TWILIO_API_KEY_SECRET,
                            cfg.TWILIO_ACCOUNT_SID, http_client=http)
        else:
            client = Client(cfg.TWILIO_ACCOUNT_SID, cfg.TWILIO_AUTH_TOKEN, http_client=http)
        if cfg.TWILIO_API_BASE_URL:
            client.api.base_url = cfg.TWILIO_API_BASE_URL.rstrip("/")
        return client

    async def send(self, message: Outgoing) -> str:
        """From the message's own sender (its clinic's), else the installation's default."""
        self._client = self._client or self._connect()
        try:
            async with asyncio.timeout(self.config.SEND_TIMEOUT_SECONDS):
                sent = await self._client.messages.create_async(
                    to=message.to, body=message.body, status_callback=message.status_callback,
                    **sender_fields(message.sender or self.sender),
                )
        except (TwilioRestException, TwilioServiceException) as exc:
            # Since twilio 9.10 some errors are TwilioServiceException: both carry a code.
            raise PermanentError(str(exc)[:500], code=str(exc.code or exc.status)) from None
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise TransientError(f"network: {exc!r}"[:500], code="network") from None
        return sent.sid

    async def close(self) -> None:
        if self._client is not None:
            await self._client.http_client.close()
            self._client = None
