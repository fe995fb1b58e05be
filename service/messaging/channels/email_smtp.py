"""Email over SMTP: text + HTML parts, attachments (the .ics of an appointment), STARTTLS or SSL."""

import asyncio
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import make_msgid, parseaddr

from service.config import Config
from service.messaging.channels import Outgoing, PermanentError, TransientError


class SMTPEmail:
    def __init__(self, config: Config, concurrency: int = 4):
        self.config = config
        self.sender = config.SMTP_SENDER
        self._slots = asyncio.Semaphore(concurrency)

    def build(self, message: Outgoing) -> EmailMessage:
        email = EmailMessage()
        email["From"] = self.sender
        email["To"] = message.to
        email["Subject"] = message.subject or ""
        email["Message-ID"] = make_msgid(domain=self.sender.rpartition("@")[2].strip("> ") or None)
        email.set_content(message.body)
        if message.html:
            email.add_alternative(message.html, subtype="html")
        for a in message.attachments:
            maintype, _, subtype = a.content_type.partition("/")
            email.add_attachment(a.data, maintype=maintype, subtype=subtype, filename=a.filename)
        return email

    def connect(self) -> smtplib.SMTP:
        """A connection as configured (TLS, login); `aftercare doctor` tries it too."""
        cfg = self.config
        timeout = cfg.SEND_TIMEOUT_SECONDS
        if cfg.SMTP_TLS == "ssl":
            smtp = smtplib.SMTP_SSL(cfg.SMTP_HOST, cfg.SMTP_PORT, timeout=timeout,
                                    context=ssl.create_default_context())
        else:
            smtp = smtplib.SMTP(cfg.SMTP_HOST, cfg.SMTP_PORT, timeout=timeout)
        try:
            if cfg.SMTP_TLS == "starttls":
                smtp.starttls(context=ssl.create_default_context())
            if cfg.SMTP_USER:
                smtp.login(cfg.SMTP_USER, cfg.SMTP_PASSWORD or "")
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _deliver(self, email: EmailMessage) -> None:
        with self.connect() as smtp:
            smtp.send_message(email)

    async def send(self, message: Outgoing) -> str:
        # The address was checked when it was stored; checked again here, since a line break in
        # a header would add headers (or recipients) of its own.
        if not _one_address(message.to):
            raise PermanentError("not a single email address", code="invalid-recipient")
        try:
            email = self.build(message)
        except (ValueError, TypeError) as exc:  # e.g. a line break in the subject
            raise PermanentError(f"email not built: {exc}"[:500], code="invalid-email") from None
        try:
            async with self._slots:
                await asyncio.to_thread(self._deliver, email)
        except smtplib.SMTPAuthenticationError as exc:
            # Wrong settings, not a bad recipient: the message waits while someone fixes them.
            raise TransientError(f"SMTP login refused: {exc.smtp_code}", code="smtp-auth") from None
        except smtplib.SMTPRecipientsRefused as exc:
            code, reason = next(iter(exc.recipients.values()))
            raise _by_code(code, reason) from None
        except smtplib.SMTPResponseException as exc:
            raise _by_code(exc.smtp_code, exc.smtp_error) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise TransientError(f"smtp: {exc!r}"[:500], code="smtp-network") from None
        return email["Message-ID"]

    async def close(self) -> None:
        pass


def _one_address(value: str) -> bool:
    name, address = parseaddr(value)
    return bool(address) and "@" in address and not any(c in value for c in "\r\n\x00,;")


def _by_code(code: int, reason) -> Exception:
    text = reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)
    error = PermanentError if 500 <= code < 600 else TransientError
    return error(f"SMTP {code} {text}"[:500], code=f"smtp-{code}")
