"""HTTP transport: sessions, a deadline and a size limit on each whole answer, clear failures.

``requests`` timeouts apply to each socket read, so a server (or proxy) that sends one byte
a second never times out. :class:`DeadlineAdapter` bounds the whole answer instead: at
``request_timeout`` seconds from the start, a watchdog shuts the socket and the try fails as
a timeout (and is retried like one).
"""

from __future__ import annotations

import contextlib
import errno
import heapq
import itertools
import socket
import threading
import time
import typing as t
from urllib.parse import urlsplit

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter
from requests.models import DEFAULT_REDIRECT_LIMIT
from typing_extensions import override

from tap_usersnap.http.errors import BodyTooLargeError
from tap_usersnap.http.loggable import describe_request, loggable_path

#: Seconds to wait for a connection.
CONNECT_TIMEOUT_SECONDS = 10.0
#: Longest body of one answer, decompressed: a page of 100 items is well under 1 MB, and a
#: gzip body of 1 MB can inflate to 1 GB.
MAX_BODY_BYTES = 64 * 1024 * 1024
#: Bytes read (decompressed) at a time, so the limit is checked as the body inflates.
_CHUNK_BYTES = 64 * 1024


class _Watch:
    __slots__ = ("cancelled", "fired", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.cancelled = False
        self.fired = False


class Watchdog:
    """One thread that shuts the sockets of requests past their deadline.

    Cheaper than a timer thread per request: watching is a heap push under a lock.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, _Watch]] = []
        self._order = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def watch(self, sock: socket.socket, deadline: float) -> _Watch:
        """Shut ``sock`` at ``deadline`` (``time.monotonic``) unless cancelled first."""
        entry = _Watch(sock)
        with self._cond:
            heapq.heappush(self._heap, (deadline, next(self._order), entry))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="deadline", daemon=True)
                self._thread.start()
            elif self._heap[0][2] is entry:
                self._cond.notify()
        return entry

    def _run(self) -> None:
        with self._cond:
            while True:
                while self._heap and self._heap[0][2].cancelled:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                deadline, _, entry = self._heap[0]
                remaining = deadline - time.monotonic()
                if remaining > 0:
                    self._cond.wait(remaining)
                    continue
                heapq.heappop(self._heap)
                entry.fired = True
                with contextlib.suppress(OSError):  # already closed: nothing to stop
                    entry.sock.shutdown(socket.SHUT_RDWR)


WATCHDOG = Watchdog()


class DeadlineAdapter(HTTPAdapter):
    """An adapter whose every answer must arrive in full within ``total_seconds``.

    Its body, decompressed, may be at most ``max_body_bytes`` long: it is read in chunks
    and the try fails at the limit, so a compressed bomb never inflates in memory.
    """

    def __init__(self, total_seconds: float, max_body_bytes: int = MAX_BODY_BYTES) -> None:
        super().__init__()
        self.total_seconds = total_seconds
        self.max_body_bytes = max_body_bytes

    @override
    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, stream: bool = False, **kwargs: t.Any
    ) -> requests.Response:
        """Send, then read the body under the deadline (``stream`` callers read it themselves)."""
        deadline = time.monotonic() + self.total_seconds
        response = super().send(request, stream=True, **kwargs)
        if stream:
            return response
        sock = getattr(getattr(response.raw, "connection", None), "sock", None)
        if sock is None:  # nothing left to read from a socket
            self._read_body(response)
            return response
        watch = WATCHDOG.watch(sock, deadline)
        try:
            self._read_body(response)
        except BodyTooLargeError:
            raise
        except requests.exceptions.RequestException as exc:
            if watch.fired:
                raise self._too_slow(request) from exc
            raise
        finally:
            watch.cancelled = True
        if watch.fired:  # the shutdown raced the last bytes
            raise self._too_slow(request)
        return response

    def _read_body(self, response: requests.Response) -> None:
        """``response.content``, read in chunks; past the limit, the try fails."""
        body = bytearray()
        for chunk in response.iter_content(_CHUNK_BYTES):
            body += chunk
            if len(body) > self.max_body_bytes:
                response.close()  # the rest is never read
                raise BodyTooLargeError(self._too_large(response), response)
        response._content = bytes(body)  # what ``response.content`` returns from now on

    def _too_large(self, response: requests.Response) -> str:
        encoding = response.headers.get("Content-Encoding")
        inflated = f" once decompressed ({encoding[:20]})" if encoding else ""
        return (
            f"Usersnap's answer to {describe_request(response)} is larger than "
            f"{self.max_body_bytes / 2**20:g} MB{inflated}, the most the tap reads of one answer"
        )

    def _too_slow(self, request: requests.PreparedRequest) -> requests.exceptions.ReadTimeout:
        path = loggable_path(request.url or "")
        msg = (
            f"{request.method} {path} did not finish within {self.total_seconds:g}s "
            "(request_timeout)"
        )
        return requests.exceptions.ReadTimeout(msg, request=request)


def new_session(api_url: str, request_timeout: float) -> requests.Session:
    """A session for one thread: proxies read once for the API's URL, the deadline adapter."""
    session = requests.Session()
    # Proxy settings (HTTPS_PROXY, NO_PROXY ...) are read once, for the API's URL, instead
    # of from the whole environment on every request.
    session.proxies = requests.utils.get_environ_proxies(api_url)
    session.trust_env = False
    adapter = DeadlineAdapter(request_timeout)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def describe_connection_failure(exc: BaseException) -> str:
    """``Connection to HOST failed: CAUSE`` with the cause a person can act on."""
    request = getattr(exc, "request", None)
    url = urlsplit(getattr(request, "url", None) or "")
    host = url.hostname or "the Usersnap API"
    if url.port:
        host = f"{host}:{url.port}"
    return f"Connection to {host} failed: {_root_cause(exc)}"


def describe_redirect_loop(exc: requests.exceptions.TooManyRedirects) -> str:
    """Redirects without end, and where the last one led (no query string)."""
    response = exc.response
    last = ""
    if response is not None and response.url:
        host = urlsplit(response.url).netloc.rpartition("@")[2]
        last = f", the last to {host}{loggable_path(response.url)}"
    return (
        f"Usersnap's answers redirect in a loop (more than {DEFAULT_REDIRECT_LIMIT} "
        f"redirects{last}); check api_url"
    )


def _root_cause(exc: BaseException) -> str:  # noqa: PLR0911 - one answer per cause
    causes = list(_causes(exc))

    def found(*kinds: type[BaseException]) -> bool:
        return any(isinstance(cause, kinds) for cause in causes)

    if found(urllib3.exceptions.NameResolutionError, socket.gaierror):
        return "the host name could not be resolved (DNS); check api_url and the network"
    if found(ConnectionRefusedError) or any(
        isinstance(c, OSError) and c.errno == errno.ECONNREFUSED for c in causes
    ):
        return "connection refused (nothing listens there; check api_url)"
    if found(urllib3.exceptions.ProxyError):
        return "the proxy failed or refused the connection; check HTTPS_PROXY"
    if found(urllib3.exceptions.SSLError):
        return "the TLS handshake failed (certificate, or a proxy intercepting TLS?)"
    if found(ConnectionResetError):
        return "the connection was reset by the server or a proxy"
    if found(urllib3.exceptions.ConnectTimeoutError):
        return f"no answer to the connection attempt within {CONNECT_TIMEOUT_SECONDS:g}s"
    if found(urllib3.exceptions.ProtocolError):
        return "the connection broke off before the answer was complete"
    return type(exc).__name__


def _causes(exc: BaseException) -> t.Iterator[BaseException]:
    """``exc`` and what it wraps: ``reason``, arguments, ``__cause__`` and ``__context__``."""
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        current = stack.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        nested = [getattr(current, "reason", None), current.__cause__, current.__context__]
        nested += [a for a in current.args if isinstance(a, BaseException)]
        stack.extend(n for n in nested if isinstance(n, BaseException))
