"""A real SMTP server for tests (aiosmtpd in a daemon thread on 127.0.0.1, OS-chosen port).

    with FakeSMTP(require_auth=("user", "secret")) as smtp:
        ... the app sends to smtp.host:smtp.port (plain SMTP, AUTH without TLS) ...
        [mail] = smtp.wait_for(1)
        assert mail.message["Subject"] == "Hello"

Transient failures: ``smtp.refuse = "rcpt"`` or ``"data"`` answers 451 to every RCPT TO or
DATA until set back to None; ``smtp.refuse_next(n, "data")`` refuses only the next n.
"""

from __future__ import annotations

import email
import email.policy
import threading
import time
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

__all__ = ["FakeSMTP", "ReceivedEmail"]

Stage = Literal["rcpt", "data"]
_STAGES = ("rcpt", "data")
REFUSE_RCPT = "451 4.3.0 Temporary failure (fake): try again later"
REFUSE_DATA = "451 4.3.0 Temporary failure (fake): message not accepted, try again later"
AUTH_REQUIRED = "530 5.7.0 Authentication required"


@dataclass
class ReceivedEmail:
    """One message accepted after DATA."""

    mail_from: str  # envelope MAIL FROM
    rcpt_tos: list[str]  # envelope RCPT TO, in order
    message: EmailMessage  # parsed with email.policy.default
    raw: bytes  # DATA as received (CRLF line endings, dot-unstuffed)
    received_at: float  # time.time()
    login: str | None  # AUTH user, if the client authenticated
    peer: Any  # (host, port) of the client

    @property
    def subject(self) -> str | None:
        return self.message["Subject"]


class _Controller(Controller):
    """aiosmtpd's Controller cannot be told port=0: its readiness probe connects to
    self.port. Learn the bound port from the listening socket before the probe."""

    def _trigger_server(self) -> None:
        if self.port == 0 and self.server is not None:
            self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class FakeSMTP:
    """SMTP sink on ``host``:``port`` collecting parsed messages, thread-safe.

    ``require_auth=(user, password)`` advertises AUTH PLAIN/LOGIN on the plain connection
    (auth_require_tls=False) and answers 530 to MAIL FROM until the client logged in; wrong
    credentials get 535.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        require_auth: tuple[str, str] | None = None,
        refuse: Stage | None = None,
        server_hostname: str = "fake-smtp.localhost",
    ) -> None:
        self.host = host
        self._requested_port = port
        self.require_auth = require_auth
        self._server_hostname = server_hostname  # avoids a getfqdn() DNS lookup per session
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._messages: list[ReceivedEmail] = []
        self._refuse: Stage | None = None
        self._refuse_next: list[list[Any]] = []  # [[remaining, stage], ...]
        self._refused = 0
        self._auth_failures = 0
        self._controller: _Controller | None = None
        self.refuse = refuse

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeSMTP:
        if self._controller is not None:
            raise RuntimeError("FakeSMTP already started")
        kwargs: dict[str, Any] = {}
        if self.require_auth is not None:
            kwargs.update(authenticator=self._authenticate, auth_require_tls=False)
        controller = _Controller(
            _Handler(self),
            hostname=self.host,
            port=self._requested_port,
            server_hostname=self._server_hostname,
            ready_timeout=10.0,
            **kwargs,
        )
        controller.start()
        self._controller = controller
        return self

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    def __enter__(self) -> FakeSMTP:
        return self if self._controller is not None else self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ public API

    @property
    def port(self) -> int:
        if self._controller is None:
            raise RuntimeError("FakeSMTP not started")
        return self._controller.port

    @property
    def messages(self) -> list[ReceivedEmail]:
        with self._lock:
            return list(self._messages)

    @property
    def refused(self) -> int:
        """How many RCPT/DATA commands were answered 451."""
        with self._lock:
            return self._refused

    @property
    def auth_failures(self) -> int:
        with self._lock:
            return self._auth_failures

    @property
    def refuse(self) -> Stage | None:
        return self._refuse

    @refuse.setter
    def refuse(self, stage: Stage | None) -> None:
        if stage is not None and stage not in _STAGES:
            raise ValueError(f"refuse must be None, 'rcpt' or 'data', not {stage!r}")
        with self._lock:
            self._refuse = stage

    def refuse_next(self, n: int, stage: Stage = "data") -> None:
        """Answer 451 to the next ``n`` RCPT TO (stage="rcpt") or DATA (stage="data")."""
        if stage not in _STAGES:
            raise ValueError(f"stage must be 'rcpt' or 'data', not {stage!r}")
        if n > 0:
            with self._lock:
                self._refuse_next.append([n, stage])

    def reset(self) -> None:
        """Forget messages and counters; turn refusal off."""
        with self._lock:
            self._messages.clear()
            self._refuse_next.clear()
            self._refuse = None
            self._refused = 0
            self._auth_failures = 0

    def wait_for(self, count: int, timeout: float = 5.0) -> list[ReceivedEmail]:
        """Block until at least ``count`` messages arrived; returns them (TimeoutError if not)."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self._messages) >= count, timeout):
                raise TimeoutError(
                    f"FakeSMTP: expected {count} messages within {timeout}s, "
                    f"got {len(self._messages)}"
                )
            return list(self._messages)

    # ------------------------------------------------------------------ loop-thread side

    def _should_refuse(self, stage: Stage) -> bool:
        with self._lock:
            refuse = self._refuse == stage
            if not refuse:
                for i, rule in enumerate(self._refuse_next):
                    if rule[1] == stage:
                        rule[0] -= 1
                        if rule[0] <= 0:
                            del self._refuse_next[i]
                        refuse = True
                        break
            if refuse:
                self._refused += 1
            return refuse

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        assert self.require_auth is not None
        user, password = self.require_auth
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == user.encode()
            and auth_data.password == password.encode()
        )
        if not ok:
            with self._lock:
                self._auth_failures += 1
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    def _record(self, session: Session, envelope: Envelope) -> None:
        raw = envelope.original_content or b""
        parsed = email.message_from_bytes(raw.replace(b"\r\n", b"\n"), policy=email.policy.default)
        auth = session.auth_data  # (session.login_data is deprecated)
        item = ReceivedEmail(
            mail_from=envelope.mail_from or "",
            rcpt_tos=list(envelope.rcpt_tos),
            message=parsed,  # type: ignore[arg-type]  # policy.default yields EmailMessage
            raw=raw,
            received_at=time.time(),
            login=auth.login.decode() if isinstance(auth, LoginPassword) else None,
            peer=session.peer,
        )
        with self._cond:
            self._messages.append(item)
            self._cond.notify_all()


class _Handler:
    """aiosmtpd handler hooks; runs on the controller's loop thread."""

    def __init__(self, fake: FakeSMTP) -> None:
        self._fake = fake

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list
    ) -> str:
        # Enforce AUTH here rather than with aiosmtpd's auth_required, which warns on every
        # connection when combined with auth_require_tls=False.
        if self._fake.require_auth is not None and not session.authenticated:
            return AUTH_REQUIRED
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list
    ) -> str:
        if self._fake._should_refuse("rcpt"):
            return REFUSE_RCPT
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self._fake._should_refuse("data"):
            return REFUSE_DATA
        self._fake._record(session, envelope)
        return "250 OK: queued"
