"""The fake's HTTP layer: reading and recording requests, serving faults, writing answers."""

from __future__ import annotations

import copy
import json
import select
import socket
import sys
import time
import typing as t
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from typing_extensions import override

from fake_usersnap import endpoints
from fake_usersnap.faults import Fault, RecordedRequest, gzip_bomb
from fake_usersnap.protocol import API_PREFIX, ApiError, encode_json
from fake_usersnap.store import Store

if t.TYPE_CHECKING:
    import threading

    from fake_usersnap.contract import ContractLog
    from fake_usersnap.prerendered import PrerenderedFeedback

#: How often a trickle checks whether the client hung up or the fake is stopping.
_POLL_S = 0.05


class Served(Store, t.Protocol):
    """What the HTTP layer needs of the fake it serves (a :class:`FakeUsersnap` is one)."""

    @property
    def clock_offset_seconds(self) -> float:
        """How far the fake's clock is from the real one (the ``Date`` header uses it)."""
        ...

    @property
    def latency_seconds(self) -> float:
        """How long every request waits before it is answered."""
        ...

    @property
    def closing(self) -> threading.Event:
        """Set once the fake stops, so answers still trickling out end."""
        ...

    @property
    def prerendered(self) -> PrerenderedFeedback | None:
        """The benchmark's pre-rendered pages, if any."""
        ...

    @property
    def contract(self) -> ContractLog | None:
        """Where each request's problems with the spec go (None: not checked)."""
        ...

    def record(self, request: RecordedRequest) -> None:
        """Keep a request in the log."""
        ...

    def take_fault(self, method: str, path: str) -> Fault | None:
        """The scripted fault that strikes this request, if any."""
        ...

    def authenticate(self, header: str | None) -> str:
        """Verify the bearer JWT; raise the :class:`ApiError` to answer if it fails."""
        ...


class QuietServer(ThreadingHTTPServer):
    """Ignores clients that hang up (after a stall, the tap has given up and gone)."""

    daemon_threads = True
    fake: Served

    @override
    def handle_error(self, request: t.Any, client_address: t.Any) -> None:
        """Report only errors that are not a client hanging up."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class Handler(BaseHTTPRequestHandler):
    """Answers one connection's requests from the :class:`FakeUsersnap` it serves."""

    #: When the answer to the request being handled may leave (see :meth:`_wait_latency`).
    _answer_at = 0.0

    protocol_version = "HTTP/1.1"
    # Headers and body go out as two writes; with Nagle's algorithm on, each answer would
    # wait for the client's delayed ACK (about 40 ms).
    disable_nagle_algorithm = True
    server: QuietServer

    @override
    def log_message(self, format: str, *args: t.Any) -> None:
        """Stay quiet: tests read the tap's output, not the server's."""

    def do_GET(self) -> None:
        """Routed like every method: a route that does not take GET answers 405."""
        self._handle("GET")

    def do_POST(self) -> None:
        """Routed like every method: a route that does not take POST answers 405."""
        self._handle("POST")

    def do_PUT(self) -> None:
        """Routed like every method: a route that does not take PUT answers 405."""
        self._handle("PUT")

    def do_DELETE(self) -> None:
        """Routed like every method: a route that does not take DELETE answers 405."""
        self._handle("DELETE")

    @override
    def date_time_string(self, timestamp: float | None = None) -> str:
        """The ``Date`` header, by the fake's clock (see ``clock_offset_seconds``)."""
        now = time.time() + self.fake.clock_offset_seconds
        return super().date_time_string(now if timestamp is None else timestamp)

    @property
    def fake(self) -> Served:
        """The fake whose data and faults this server answers from."""
        return self.server.fake

    def _handle(self, method: str) -> None:
        fake = self.fake
        self._answer_at = time.monotonic() + fake.latency_seconds
        split = urlsplit(self.path)
        path = split.path.removeprefix(API_PREFIX)
        params = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw_body = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw_body) if raw_body else None
        except ValueError:
            body = raw_body.decode("utf-8", "replace")
        auth = self.headers.get("Authorization")
        headers = dict(self.headers.items())
        record = RecordedRequest(
            method,
            path,
            params,
            body,
            auth.removeprefix("Bearer ") if auth else None,
            headers=headers,
        )
        fake.record(record)
        contract = fake.contract
        if contract is not None and len(raw_body) == length:  # not a client cut off mid-send
            contract.check(method, self.path, raw_body, headers)
        fault = fake.take_fault(method, path)
        if fault is not None and self._serve_fault(fault, record):
            return
        pace = fault.seconds if fault is not None and fault.kind == "trickle" else None
        try:
            fake.authenticate(auth)
            endpoints.check_request(fake, method, split.path, params)
            rendered = (
                fake.prerendered.answer(method, split.path, params, body)
                if fake.prerendered is not None
                else None
            )
            if rendered is not None:
                self._send_bytes(200, rendered, record, pace)
                return
            data = endpoints.answer(fake, method, split.path, params, body)
        except ApiError as error:
            self._send_bytes(error.status, encode_json(error.envelope()), record, pace)
            return
        envelope: dict[str, t.Any] = {"status": True, "data": data}
        payload: dict[str, t.Any] | bytes = envelope
        if fault is not None and fault.transform is not None:
            payload = fault.transform(copy.deepcopy(envelope), record)
        # A transform may answer bytes: a body no JSON encoder would write.
        answer = payload if isinstance(payload, bytes) else encode_json(payload)
        self._send_bytes(200, answer, record, pace)

    def _serve_fault(self, fault: Fault, record: RecordedRequest) -> bool:  # noqa: PLR0911 - one per kind
        """Serve a fault; False means "then answer normally" (stall, call, mangle, trickle)."""
        self._wait_latency()
        if fault.kind == "stall":
            time.sleep(fault.seconds)
            return False
        if fault.kind == "call":
            if fault.action is not None:
                fault.action()
            return False
        if fault.kind in {"mangle", "trickle"}:
            return False
        if fault.kind == "gzip_bomb":
            self._send_gzip_bomb(fault.inflates_to, record)
            return True
        if fault.kind == "reset":
            record.status = -1
            self.close_connection = True
            self.connection.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
            self.connection.close()
            return True
        if fault.kind == "truncate":
            body = fault.body or b'{"status": true, "data": {"has_more": false, "feedbacks": ['
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body) * 2))
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
            self.close_connection = True
            record.status = 200
            return True
        status = fault.status if fault.kind == "status" else 200
        default = ApiError(status, HTTPStatus(status).phrase, "FAULT")
        body = fault.body if fault.body is not None else encode_json(default.envelope())
        record.status = status
        self.send_response(status)
        headers = {"Content-Type": "application/json", **fault.headers}
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        return True

    def _send_bytes(
        self, status: int, body: bytes, record: RecordedRequest, pace: float | None = None
    ) -> None:
        """Status line, headers, body; with ``pace``, the body one byte every ``pace`` s."""
        self._wait_latency()
        record.status = status
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if pace is None:
            self.wfile.write(body)
        else:
            self._trickle(body, pace, record)

    def _wait_latency(self) -> None:
        """Wait until ``latency_seconds`` after the request came: the answer's making included.

        The latency stands for the API's whole time to answer, so the fake's own work on a
        page (reading the store, encoding) adds no stall of its own on top of it.
        """
        left = self._answer_at - time.monotonic()
        if left > 0:
            time.sleep(left)

    def _send_gzip_bomb(self, inflates_to: int, record: RecordedRequest) -> None:
        """A 200 whose gzip body inflates to ``inflates_to`` bytes, until the client hangs up."""
        length, chunks = gzip_bomb(inflates_to)
        record.status = 200
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(length))
        self.end_headers()
        try:
            for chunk in chunks:
                self.wfile.write(chunk)
        except ConnectionError:
            record.hung_up = True
            self.close_connection = True

    def _trickle(self, body: bytes, pace: float, record: RecordedRequest) -> None:
        """Send a byte, wait ``pace`` s, repeat: until done, the client hangs up, or stop()."""
        for offset in range(len(body)):
            self.wfile.flush()
            if not self._wait(pace):
                record.hung_up = not self.fake.closing.is_set()
                self.close_connection = True
                return
            try:
                self.wfile.write(body[offset : offset + 1])
            except ConnectionError:
                record.hung_up = True
                self.close_connection = True
                return

    def _wait(self, seconds: float) -> bool:
        """Wait ``seconds``; False as soon as the client hangs up or the fake stops."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if self.fake.closing.is_set():
                return False
            readable, _, _ = select.select([self.connection], [], [], min(left, _POLL_S))
            if readable:
                try:
                    if not self.connection.recv(1, socket.MSG_PEEK):
                        return False  # end of stream: the client closed its side
                except ConnectionError:
                    return False
                time.sleep(min(left, _POLL_S))  # a next request already sent: keep waiting
        return not self.fake.closing.is_set()
