"""A fake Twilio REST API on 127.0.0.1: Twilio's behaviour for the Messages endpoint, with fault
injection, served by tests/fakes/http.py. The code under test uses the real ``twilio`` client,
sync or async, pointed at it with ``client.api.base_url = fake.url``.

Only ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` is implemented; anything else
answers 404 with Twilio's JSON error body.

Fault injection (call from any thread, at any time)::

    fake.fail_next(2, 500)                          # next 2 requests -> HTTP 500, code 20500
    fake.fail_next(1, 429, retry_after=3)           # adds "Retry-After: 3"
    fake.fail_next(1, 400, code=21211, to="+1555")  # only requests whose To is "+1555"
    fake.delay_next(1, 2.0)                         # next response is sent 2 s late
    fake.chaos(error_5xx=0.3, throttle_429=0.1, slow=0.05, slow_seconds=3,
               retry_after=1, slow_status=504)      # every request at random, until chaos()
    fake.timeline                                   # every attempt: (to, status, at, retry_after)

In a process of its own: tests/fakes/twilio_server.py.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import re
import time
from dataclasses import dataclass
from typing import IO, Any, NamedTuple
from urllib.parse import parse_qs

from tests.fakes.http import LoopbackServer, reason, response

__all__ = ["Attempt", "FakeTwilio", "ReceivedMessage", "TimedAttempt"]

_MESSAGES_PATH = re.compile(r"^/2010-04-01/Accounts/([^/]+)/Messages\.json$")


@dataclass
class ReceivedMessage:
    """One accepted ``Messages.json`` request."""

    account_sid: str
    form: dict[str, str]  # form fields, first value of each
    authorization: str | None  # raw Authorization header
    received_at: float  # time.time() on arrival
    sid: str  # "SM" + 32 hex, unique per accepted request

    @property
    def to(self) -> str | None:
        return self.form.get("To")

    @property
    def from_(self) -> str | None:
        return self.form.get("From")

    @property
    def body(self) -> str | None:
        return self.form.get("Body")

    @property
    def messaging_service_sid(self) -> str | None:
        return self.form.get("MessagingServiceSid")

    def to_json(self) -> dict[str, Any]:
        return {
            "sid": self.sid,
            "account_sid": self.account_sid,
            "to": self.to,
            "from": self.from_,
            "body": self.body,
            "messaging_service_sid": self.messaging_service_sid,
            "form": self.form,
            "authorization": self.authorization,
            "received_at": self.received_at,
        }


class Attempt(NamedTuple):
    """Every request to the Messages endpoint, accepted (201) or not."""

    to: str | None
    status: int

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class TimedAttempt(NamedTuple):
    """An attempt with its arrival time (time.time()) and the Retry-After it was answered."""

    to: str | None
    status: int
    at: float
    retry_after: float | str | None
    callback: str | None  # the StatusCallback form field: tells which outbox row it was


@dataclass
class _Chaos:
    error_5xx: float
    throttle_429: float
    slow: float
    slow_seconds: float
    retry_after: float | str | None
    slow_status: int | None
    rng: random.Random


@dataclass
class _Rule:
    remaining: int
    to: str | None
    status: int = 0
    code: int | None = None
    retry_after: float | str | None = None
    message: str | None = None
    seconds: float = 0.0


def _error_body(status: int, code: int | None, message: str) -> bytes:
    doc_code = code if code is not None else status
    return json.dumps(
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{doc_code}",
            "status": status,
        }
    ).encode()


_NOT_FOUND = json.dumps({"code": 20404, "message": "not found", "status": 404}).encode()


class FakeTwilio(LoopbackServer):
    """Fake Twilio Messages API on 127.0.0.1 (OS-chosen port unless ``port`` is given).

    ``validate=True`` answers like Twilio for requests it would reject: 401/20003 without an
    Authorization header, 400/21604 without To, 400/21603 without From or
    MessagingServiceSid, 400/21602 without Body, MediaUrl or ContentSid.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        log_path: str | os.PathLike[str] | None = None,
        validate: bool = True,
    ) -> None:
        super().__init__(host, port)
        self._log_path = log_path
        self._log: IO[str] | None = None
        self.validate = validate

        self._messages: list[ReceivedMessage] = []
        self._attempts: list[Attempt] = []
        self._timeline: list[TimedAttempt] = []
        self._chaos: _Chaos | None = None
        self._attempts_log: IO[str] | None = None
        self.attempts_log_path: str | os.PathLike[str] | None = None
        self._fail_rules: list[_Rule] = []
        self._delay_rules: list[_Rule] = []

        self._sid_prefix = os.urandom(8).hex()  # 16 hex; + 16-hex counter = 32 hex
        self._sid_counter = itertools.count(1)
        self._date_cache: tuple[int, str] = (0, "")

    def start(self) -> FakeTwilio:
        if self._log_path is not None:
            self._log = open(self._log_path, "a", encoding="utf-8", buffering=1)
        if self.attempts_log_path is not None:
            self._attempts_log = open(self.attempts_log_path, "a", encoding="utf-8", buffering=1)
        super().start()
        return self

    def stop(self) -> None:
        super().stop()
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._attempts_log is not None:
            self._attempts_log.close()
            self._attempts_log = None

    @property
    def messages(self) -> list[ReceivedMessage]:
        with self._lock:
            return list(self._messages)

    @property
    def attempts(self) -> list[Attempt]:
        """Every Messages.json request in arrival order, as Attempt(to, status)."""
        with self._lock:
            return list(self._attempts)

    @property
    def timeline(self) -> list[TimedAttempt]:
        """Every Messages.json request in arrival order, with its time and Retry-After."""
        with self._lock:
            return list(self._timeline)

    def chaos(
        self,
        error_5xx: float = 0.0,
        throttle_429: float = 0.0,
        slow: float = 0.0,
        *,
        slow_seconds: float = 2.0,
        retry_after: float | str | None = 1,
        slow_status: int | None = None,
        seed: int | None = None,
    ) -> None:
        """Random faults on every request until called again with no arguments: a share
        ``error_5xx`` answered 500 or 503, ``throttle_429`` answered 429 with ``Retry-After:
        retry_after``, ``slow`` answered ``slow_seconds`` late (with HTTP ``slow_status`` and
        nothing kept when it is given, e.g. 504 for a gateway timeout: a client that gave up
        can then safely try again). Rules from fail_next/delay_next come first."""
        with self._lock:
            if not (error_5xx or throttle_429 or slow):
                self._chaos = None
                return
            self._chaos = _Chaos(error_5xx, throttle_429, slow, slow_seconds, retry_after,
                                 slow_status, random.Random(seed))

    def _chaos_rules(self) -> tuple[_Rule | None, _Rule | None]:
        """(failure, delay) for one request; called under the lock."""
        chaos = self._chaos
        if chaos is None:
            return None, None
        draw = chaos.rng.random()
        if draw < chaos.error_5xx:
            status = chaos.rng.choice((500, 503))
            return _Rule(1, None, status=status, code=20000 + status), None
        draw -= chaos.error_5xx
        if draw < chaos.throttle_429:
            return _Rule(1, None, status=429, code=20429, retry_after=chaos.retry_after,
                         message="Too Many Requests"), None
        draw -= chaos.throttle_429
        if draw < chaos.slow:
            delay = _Rule(1, None, seconds=chaos.slow_seconds)
            if chaos.slow_status:
                status = chaos.slow_status
                return _Rule(1, None, status=status, code=20000 + status), delay
            return None, delay
        return None, None

    def reset(self) -> None:
        """Forget received messages, attempts and pending fault rules."""
        with self._lock:
            self._messages.clear()
            self._attempts.clear()
            self._timeline.clear()
            self._fail_rules.clear()
            self._delay_rules.clear()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[ReceivedMessage]:
        """Block until at least ``count`` messages were accepted; returns them.

        Raises TimeoutError if they do not arrive in ``timeout`` seconds.
        """
        with self._cond:
            if not self._cond.wait_for(lambda: len(self._messages) >= count, timeout):
                raise TimeoutError(
                    f"FakeTwilio: expected {count} messages within {timeout}s, "
                    f"got {len(self._messages)}"
                )
            return list(self._messages)

    def fail_next(
        self,
        n: int,
        status: int,
        code: int | None = None,
        retry_after: float | str | None = None,
        to: str | None = None,
        *,
        message: str | None = None,
    ) -> None:
        """Answer the next ``n`` Messages requests (only those with To == ``to`` if given)
        with HTTP ``status`` and a Twilio error body. ``code`` defaults to 20000 + status
        (Twilio's generic codes: 20429, 20500, 20503 ...). Failed requests are not recorded
        as messages, only as attempts."""
        if n <= 0:
            return
        if code is None:
            code = 20000 + status
        rule = _Rule(n, to, status=status, code=code, retry_after=retry_after, message=message)
        with self._lock:
            self._fail_rules.append(rule)

    def delay_next(self, n: int, seconds: float, to: str | None = None) -> None:
        """Send the next ``n`` Messages responses ``seconds`` late (asyncio timer; the loop
        keeps serving other connections). The request is still processed on arrival: a
        delayed success is recorded immediately, as real Twilio would have queued it even if
        the client times out. Combine with fail_next() for a slow failure."""
        if n <= 0:
            return
        with self._lock:
            self._delay_rules.append(_Rule(n, to, seconds=seconds))

    # ------------------------------------------------------------------ request handling

    @staticmethod
    def _take(rules: list[_Rule], to: str | None) -> _Rule | None:
        for i, rule in enumerate(rules):
            if rule.to is None or rule.to == to:
                rule.remaining -= 1
                if rule.remaining <= 0:
                    del rules[i]
                return rule
        return None

    def _date(self, now: float) -> str:
        second = int(now)
        cached_second, text = self._date_cache
        if cached_second != second:
            text = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(second))
            self._date_cache = (second, text)
        return text

    def _validation_error(self, headers: dict[str, str], form: dict[str, str]) -> _Rule | None:
        if not headers.get("authorization"):
            return _Rule(1, None, status=401, code=20003, message="Authenticate")
        if not form.get("To"):
            return _Rule(
                1, None, status=400, code=21604, message="A 'To' phone number is required."
            )
        if not form.get("From") and not form.get("MessagingServiceSid"):
            return _Rule(
                1, None, status=400, code=21603, message="A 'From' phone number is required."
            )
        if not (form.get("Body") or form.get("MediaUrl") or form.get("ContentSid")):
            return _Rule(1, None, status=400, code=21602, message="Message body is required.")
        return None

    def refuse(self, status: int, message: str) -> bytes:
        return response(status, _error_body(status, None, message), False)

    def handle(
        self, method: str, target: str, headers: dict[str, str], body: bytes, keep_alive: bool
    ) -> tuple[float, bytes]:
        match = _MESSAGES_PATH.match(target.partition("?")[0]) if method == "POST" else None
        if match is None:
            return 0.0, response(404, _NOT_FOUND, keep_alive)
        account_sid = match.group(1)
        parsed = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        form = {key: values[0] for key, values in parsed.items()}
        to = form.get("To")
        now = time.time()
        msg: ReceivedMessage | None = None
        with self._lock:
            delay_rule = self._take(self._delay_rules, to) if self._delay_rules else None
            fail = self._take(self._fail_rules, to) if self._fail_rules else None
            if fail is None and delay_rule is None and self._chaos is not None:
                fail, delay_rule = self._chaos_rules()
            if fail is None and self.validate:
                fail = self._validation_error(headers, form)
            status = fail.status if fail is not None else 201
            timed = TimedAttempt(to, status, now, fail.retry_after if fail else None,
                                 form.get("StatusCallback"))
            self._timeline.append(timed)
            if fail is not None:
                self._attempts.append(Attempt(to, fail.status))
            else:
                sid = f"SM{self._sid_prefix}{next(self._sid_counter):016x}"
                msg = ReceivedMessage(account_sid, form, headers.get("authorization"), now, sid)
                self._messages.append(msg)
                self._attempts.append(Attempt(to, 201))
                self._cond.notify_all()
            if self._attempts_log is not None:
                self._attempts_log.write(json.dumps(timed._asdict()) + "\n")
        delay = delay_rule.seconds if delay_rule is not None else 0.0

        if fail is not None:
            message = fail.message or f"Injected failure: {reason(fail.status)}"
            extra = b""
            if fail.retry_after is not None:
                extra = f"Retry-After: {fail.retry_after}\r\n".encode()
            payload = _error_body(fail.status, fail.code, message)
            return delay, response(fail.status, payload, keep_alive, extra)

        assert msg is not None
        if self._log is not None:
            self._log.write(json.dumps(msg.to_json()) + "\n")  # line-buffered: flushed
        date = self._date(now)
        base = f"/2010-04-01/Accounts/{account_sid}/Messages/{msg.sid}"
        num_media = len(parsed.get("MediaUrl", ()))
        payload = json.dumps(
            {
                "account_sid": account_sid,
                "api_version": "2010-04-01",
                "body": form.get("Body", ""),
                "date_created": date,
                "date_sent": None,
                "date_updated": date,
                "direction": "outbound-api",
                "error_code": None,
                "error_message": None,
                "from": form.get("From"),
                "messaging_service_sid": form.get("MessagingServiceSid"),
                "num_media": str(num_media),
                "num_segments": "1",
                "price": None,
                "price_unit": "USD",
                "sid": msg.sid,
                "status": "queued",
                "subresource_uris": {"media": f"{base}/Media.json"},
                "to": to,
                "uri": f"{base}.json",
            }
        ).encode()
        return delay, response(201, payload, keep_alive)


