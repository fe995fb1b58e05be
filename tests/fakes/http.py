"""The HTTP layer of the fakes: a lean HTTP/1.1 server on 127.0.0.1 (asyncio Protocol, no web
framework) on its own event loop in a daemon thread, with keep-alive, requests served in order,
and a delayed response holding back the later requests of its connection.

Each response is written with a single ``transport.write`` (status line, headers and body in one
bytes object): a separate write for the body costs a 40 ms delayed-ACK stall per request.

A subclass gives the behaviour: ``handle`` answers one request with (delay in seconds, response
bytes), ``refuse`` answers a request the parser rejects (then the connection closes).
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from http import HTTPStatus

_MAX_HEAD = 64 * 1024
_MAX_BODY = 4 * 1024 * 1024
_JSON_CT = b"Content-Type: application/json; charset=utf-8\r\n"


def reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def response(status: int, body: bytes, keep_alive: bool, extra: bytes = b"") -> bytes:
    """The whole response as ONE bytes object (one transport.write)."""
    return b"".join(
        (
            b"HTTP/1.1 %d %s\r\n" % (status, reason(status).encode()),
            _JSON_CT,
            b"Content-Length: %d\r\n" % len(body),
            extra,
            b"" if keep_alive else b"Connection: close\r\n",
            b"\r\n",
            body,
        )
    )



class HttpProtocol(asyncio.Protocol):
    """One client connection: lean HTTP/1.1 parser with keep-alive, requests served in order;
    each response written in one transport.write."""

    __slots__ = ("_server", "_transport", "_buf", "_busy", "_timer")

    def __init__(self, server: LoopbackServer) -> None:
        self._server = server
        self._transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._busy = False  # a delayed response is pending; later requests wait behind it
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self._server._conns.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        with self._server._cond:  # after every request the connection carried was read
            self._server._conns.discard(self)
            self._server._cond.notify_all()
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
            transport.write(self._server.refuse(status, message))
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
            delay, response = self._server.handle(method, target, headers, body, keep_alive)
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



class LoopbackServer:
    """Serves HTTP/1.1 on ``host`` (an OS-chosen port unless ``port`` is given) until stopped."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self._requested_port = port
        self._port: int | None = None
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopping: asyncio.Event | None = None
        self._conns: set[HttpProtocol] = set()

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes,
               keep_alive: bool) -> tuple[float, bytes]:
        raise NotImplementedError

    def refuse(self, status: int, message: str) -> bytes:
        raise NotImplementedError

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> LoopbackServer:
        """Start listening; returns self once the socket is bound."""
        if self._thread is not None:
            raise RuntimeError(f"{type(self).__name__} already started")
        ready = threading.Event()
        errors: list[BaseException] = []
        self._thread = threading.Thread(
            target=self._run, args=(ready, errors), name=type(self).__name__, daemon=True
        )
        self._thread.start()
        if not ready.wait(10):
            raise TimeoutError(f"{type(self).__name__} did not start within 10 s")
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

    def __enter__(self) -> LoopbackServer:
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
                lambda: HttpProtocol(self), self.host, self._requested_port, backlog=1024
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
            raise RuntimeError(f"{type(self).__name__} not started")
        return self._port

    @property
    def url(self) -> str:
        """Base URL for ``client.api.base_url``, e.g. "http://127.0.0.1:54321"."""
        return f"http://{self.host}:{self.port}"

    def wait_disconnected(self, timeout: float = 10.0) -> None:
        """Block until no client holds a connection open. A client process that was killed
        has its sockets closed by the kernel after what it wrote is delivered: once they are
        closed here, every request it sent has been counted."""
        with self._cond:
            if not self._cond.wait_for(lambda: not self._conns, timeout):
                raise TimeoutError(f"{type(self).__name__}: {len(self._conns)} connections still open "
                                   f"after {timeout}s")

