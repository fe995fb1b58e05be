"""A fake Twilio REST API speaking real HTTP/1.1 on 127.0.0.1.

Used by the test-suite and by bench/. Pure asyncio (a Protocol, no web framework) on its own
event loop in a daemon thread, so the code under test can use the real ``twilio`` client,
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

Keep-alive responses are written with a single ``transport.write`` (status line, headers and
body in one bytes object): a separate write for the body costs a 40 ms delayed-ACK stall per
request.

Standalone (for subprocess-based tests)::

    python -m tests.fakes.twilio_server --port 0 --log /tmp/messages.jsonl

prints its URL on the first stdout line and serves until SIGINT/SIGTERM, appending each
accepted message to ``--log`` as one JSON line (flushed per line); ``--attempts-log FILE`` adds
every attempt, refused or not, and ``--chaos 5xx=0.3,429=0.1,slow=0.05,slow_seconds=3,
retry_after=1,slow_status=504,seed=7`` switches the random faults on.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import re
import signal
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import IO, Any, NamedTuple
from urllib.parse import parse_qs

__all__ = ["Attempt", "FakeTwilio", "ReceivedMessage", "TimedAttempt", "main"]

_MESSAGES_PATH = re.compile(r"^/2010-04-01/Accounts/([^/]+)/Messages\.json$")
_MAX_HEAD = 64 * 1024
_MAX_BODY = 4 * 1024 * 1024
_JSON_CT = b"Content-Type: application/json; charset=utf-8\r\n"


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


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _response(status: int, body: bytes, keep_alive: bool, extra: bytes = b"") -> bytes:
    """The whole response as ONE bytes object (one transport.write)."""
    return b"".join(
        (
            b"HTTP/1.1 %d %s\r\n" % (status, _reason(status).encode()),
            _JSON_CT,
            b"Content-Length: %d\r\n" % len(body),
            extra,
            b"" if keep_alive else b"Connection: close\r\n",
            b"\r\n",
            body,
        )
    )


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


class _HttpProtocol(asyncio.Protocol):
    """One client connection: lean HTTP/1.1 parser with keep-alive, requests served in order."""

    __slots__ = ("_fake", "_transport", "_buf", "_busy", "_timer")

    def __init__(self, fake: FakeTwilio) -> None:
        self._fake = fake
        self._transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._busy = False  # a delayed response is pending; later requests wait behind it
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self._fake._conns.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        with self._fake._cond:  # after every request the connection carried was read
            self._fake._conns.discard(self)
            self._fake._cond.notify_all()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._transport = None

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def data_received(self, data: bytes) -> None:
        self._buf += data
        if not self._busy:
            self._process()

    def _abort(self, status: int, message: str) -> None:
        transport = self._transport
        if transport is not None:
            transport.write(_response(status, _error_body(status, None, message), False))
            transport.close()
        self._buf.clear()

    def _process(self) -> None:
        buf = self._buf
        while buf and self._transport is not None:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > _MAX_HEAD:
                    self._abort(431, "request header too large")
                return
            lines = buf[:end].decode("latin-1").split("\r\n")
            request_line = lines[0].split(" ")
            if len(request_line) != 3:
                self._abort(400, "bad request line")
                return
            method, target, version = request_line
            headers: dict[str, str] = {}
            for line in itertools.islice(lines, 1, None):
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if "transfer-encoding" in headers:
                self._abort(501, "chunked request bodies are not supported by the fake")
                return
            try:
                length = int(headers.get("content-length", "0"))
            except ValueError:
                self._abort(400, "bad Content-Length")
                return
            if length < 0 or length > _MAX_BODY:
                self._abort(413, "request body too large")
                return
            total = end + 4 + length
            if len(buf) < total:
                return
            body = bytes(buf[end + 4 : total])
            del buf[:total]
            connection = headers.get("connection", "").lower()
            if version == "HTTP/1.1":
                keep_alive = "close" not in connection
            else:
                keep_alive = "keep-alive" in connection
            delay, response = self._fake._dispatch(method, target, headers, body, keep_alive)
            if delay > 0:
                self._busy = True
                loop = asyncio.get_running_loop()
                self._timer = loop.call_later(delay, self._send_delayed, response, keep_alive)
                return
            self._transport.write(response)
            if not keep_alive:
                self._transport.close()
                return

    def _send_delayed(self, response: bytes, keep_alive: bool) -> None:
        self._timer = None
        self._busy = False
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        transport.write(response)
        if not keep_alive:
            transport.close()
            return
        self._process()


class FakeTwilio:
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
        self.host = host
        self._requested_port = port
        self._port: int | None = None
        self._log_path = log_path
        self._log: IO[str] | None = None
        self.validate = validate

        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
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

        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopping: asyncio.Event | None = None
        self._conns: set[_HttpProtocol] = set()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeTwilio:
        """Start listening; returns self once the socket is bound."""
        if self._thread is not None:
            raise RuntimeError("FakeTwilio already started")
        if self._log_path is not None:
            self._log = open(self._log_path, "a", encoding="utf-8", buffering=1)
        if self.attempts_log_path is not None:
            self._attempts_log = open(self.attempts_log_path, "a", encoding="utf-8", buffering=1)
        ready = threading.Event()
        errors: list[BaseException] = []
        self._thread = threading.Thread(
            target=self._run, args=(ready, errors), name="FakeTwilio", daemon=True
        )
        self._thread.start()
        if not ready.wait(10):
            raise TimeoutError("FakeTwilio did not start within 10 s")
        if errors:
            self._thread.join()
            self._thread = None
            raise errors[0]
        return self

    def stop(self) -> None:
        """Close the listener and every open connection, then end the loop thread."""
        thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is None:
            return
        if loop is not None and stopping is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(stopping.set)
            except RuntimeError:  # loop already closed
                pass
        thread.join(10)
        self._thread = None
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._attempts_log is not None:
            self._attempts_log.close()
            self._attempts_log = None

    def __enter__(self) -> FakeTwilio:
        return self if self._thread is not None else self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self, ready: threading.Event, errors: list[BaseException]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve(ready, errors))
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()
                ready.set()

    async def _serve(self, ready: threading.Event, errors: list[BaseException]) -> None:
        self._stopping = asyncio.Event()
        try:
            loop = asyncio.get_running_loop()
            server = await loop.create_server(
                lambda: _HttpProtocol(self), self.host, self._requested_port, backlog=1024
            )
        except BaseException as exc:  # handed to start()
            errors.append(exc)
            ready.set()
            return
        self._port = server.sockets[0].getsockname()[1]
        ready.set()
        try:
            await self._stopping.wait()
        finally:
            server.close()
            for conn in list(self._conns):
                conn.close()
            await server.wait_closed()
            await asyncio.sleep(0)  # let connection_lost callbacks run

    # ------------------------------------------------------------------ public API

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("FakeTwilio not started")
        return self._port

    @property
    def url(self) -> str:
        """Base URL for ``client.api.base_url``, e.g. "http://127.0.0.1:54321"."""
        return f"http://{self.host}:{self.port}"

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

    def wait_disconnected(self, timeout: float = 10.0) -> None:
        """Block until no client holds a connection open. A client process that was killed
        has its sockets closed by the kernel after what it wrote is delivered: once they are
        closed here, every request it sent has been counted."""
        with self._cond:
            if not self._cond.wait_for(lambda: not self._conns, timeout):
                raise TimeoutError(f"FakeTwilio: {len(self._conns)} connections still open "
                                   f"after {timeout}s")

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

    def _dispatch(
        self, method: str, target: str, headers: dict[str, str], body: bytes, keep_alive: bool
    ) -> tuple[float, bytes]:
        match = _MESSAGES_PATH.match(target.partition("?")[0]) if method == "POST" else None
        if match is None:
            return 0.0, _response(404, _NOT_FOUND, keep_alive)
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
            message = fail.message or f"Injected failure: {_reason(fail.status)}"
            extra = b""
            if fail.retry_after is not None:
                extra = f"Retry-After: {fail.retry_after}\r\n".encode()
            payload = _error_body(fail.status, fail.code, message)
            return delay, _response(fail.status, payload, keep_alive, extra)

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
        return delay, _response(201, payload, keep_alive)


def main(argv: Iterable[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.twilio_server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 = OS-chosen port (default)")
    parser.add_argument("--log", metavar="FILE", help="append accepted messages as JSON lines")
    parser.add_argument(
        "--no-validate", action="store_true", help="accept requests Twilio would reject"
    )
    parser.add_argument("--attempts-log", metavar="FILE",
                        help="append every attempt (accepted or refused) as JSON lines")
    parser.add_argument("--chaos", metavar="SPEC", default="",
                        help="random faults, e.g. 5xx=0.3,429=0.1,slow=0.05,slow_seconds=3,"
                             "retry_after=1,slow_status=504,seed=7")
    args = parser.parse_args(list(argv) if argv is not None else None)

    stop_signals = {signal.SIGINT, signal.SIGTERM}
    # Block before starting the loop thread so it inherits the mask; sigwait() below gets them.
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    fake = FakeTwilio(args.host, args.port, log_path=args.log, validate=not args.no_validate)
    fake.attempts_log_path = args.attempts_log
    if args.chaos:
        spec = dict(item.split("=", 1) for item in args.chaos.split(","))
        fake.chaos(
            error_5xx=float(spec.get("5xx", 0)), throttle_429=float(spec.get("429", 0)),
            slow=float(spec.get("slow", 0)), slow_seconds=float(spec.get("slow_seconds", 2)),
            retry_after=spec.get("retry_after", "1"),
            slow_status=int(spec["slow_status"]) if "slow_status" in spec else None,
            seed=int(spec["seed"]) if "seed" in spec else None,
        )
    fake.start()
    try:
        print(fake.url, flush=True)
        signal.sigwait(stop_signals)
    finally:
        fake.stop()


if __name__ == "__main__":
    main()
