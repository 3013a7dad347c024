"""The Usersnap REST API on the SDK's request loop: auth, answers, retries, pages.

Every request goes through :class:`UsersnapStream`, a ``RESTStream`` whose public hooks say
what Usersnap needs: a JWT the tap signs (:class:`JWTAuthenticator`), the envelope
``{status, data | msg, errortype, errordata}`` read once (:func:`read_envelope`), error answers
told apart (:meth:`UsersnapStream.validate_response`), waits that honour ``Retry-After``
whenever a 429 comes (:meth:`UsersnapStream.backoff_wait_generator`), and the cursor
``data.next.after`` while ``data.has_more`` (:class:`CursorPaginator`).

Messages name the request and Usersnap's error type, never a token, a query or a body.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import email.utils
import errno
import io
import json
import logging
import re
import socket
import sys
import threading
import time
import typing as t
import uuid
import warnings
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

import jwt
import msgspec
import requests
import urllib3.exceptions
from jwt.warnings import InsecureKeyLengthWarning
from requests.adapters import HTTPAdapter
from singer_sdk.authenticators import APIAuthenticatorBase
from singer_sdk.exceptions import AbortedSyncExceptionBase, FatalAPIError, RetriableAPIError
from singer_sdk.mapper import RemoveRecordTransform
from singer_sdk.pagination import BaseAPIPaginator
from singer_sdk.singerlib import ActivateVersionMessage
from singer_sdk.streams import RESTStream
from typing_extensions import override

from tap_usersnap.records import (
    MAX_QUOTED,
    Shape,
    body_needs_text_check,
    conform,
    fit_flattened,
    schema_of,
)
from tap_usersnap.report import RunReport
from tap_usersnap.sdk_private import set_record_version

if t.TYPE_CHECKING:
    from singer_sdk import Tap
    from singer_sdk.helpers.types import Context

    from tap_usersnap.settings import Settings

LOGGER = logging.getLogger("tap-usersnap")
#: Seconds to wait for a connection.
CONNECT_TIMEOUT_SECONDS = 10.0
#: Longest body of one answer, decompressed (a page of 100 items is well under 1 MB; a gzip
#: body of 1 MB can inflate to 1 GB).
MAX_BODY_BYTES = 64 * 1024 * 1024
#: A token is valid this long, re-signed this long before it expires, and backdated this much
#: (a server clock slightly behind must not see a token from the future).
TOKEN_LIFETIME_SECONDS, REFRESH_MARGIN_SECONDS, CLOCK_SKEW_SECONDS = 300, 120, 30
#: Tries for a transient failure (5xx, timeout, reset, unreadable body), the first backoff
#: wait (doubling), and the most a 429 without a usable Retry-After is tolerated.
MAX_TRIES, BASE_BACKOFF_SECONDS, MAX_BACKOFF_SECONDS, MAX_RATE_LIMITED = 6, 1.0, 60.0, 20
#: The longest wait a ``Retry-After`` may impose at once.
MAX_RETRY_AFTER_SECONDS = 300.0
#: Nesting deeper than this is cut when a body is too deep for any decoder to read.
MAX_BODY_DEPTH = 96
TOO_DEEP = "[removed by tap-usersnap: nested too deep to store]"
_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]')
_API_KEY_IN_PATH = re.compile(r"(/projects/)[^/]+(/assignees)$")


class UsersnapError(FatalAPIError):
    """A failure the tap explains in one line; the CLI prints it without a traceback."""


class CredentialsRejectedError(UsersnapError):
    """Usersnap refused the JWT even after re-signing it."""


class ProjectRefusedError(UsersnapError):
    """Usersnap refuses one project (403, 404, SITE_NOT_FOUND): skipped by name."""

    def __init__(self, message: str, answer: str = "") -> None:
        super().__init__(message)
        #: The answer, as ``status errortype: msg``.
        self.answer = answer or message


class CursorRejectedError(UsersnapError):
    """A 400 to a request carrying ``after``: the item it names was likely deleted meanwhile."""


class PaginationError(UsersnapError):
    """The API's paging answers make no sense; stopping beats looping or losing data."""


class RateLimitedError(RetriableAPIError):
    """A 429: wait what ``Retry-After`` says (None: it names no wait), then try again."""

    def __init__(self, message: str, response: requests.Response, wait: float | None) -> None:
        super().__init__(message, response)
        self.retry_after = wait


class TokenRejectedError(RetriableAPIError):
    """A 401: re-sign the token once and try again; ``hint`` names a likelier cause."""

    def __init__(self, message: str, response: requests.Response, hint: str | None) -> None:
        super().__init__(message, response)
        self.hint = hint


def base_backoff_seconds() -> float:
    """The first backoff wait (read when used, so a test can shorten it)."""
    return BASE_BACKOFF_SECONDS


class Clock(t.Protocol):
    """What retries need of time (tests pass one whose waits pass at once)."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back."""

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds``."""


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        """``time.monotonic``."""
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        """``time.sleep``."""
        time.sleep(seconds)


class RateLimitGate:
    """Shared by every request of a run: after a 429, all wait out its Retry-After."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._opens_at = 0.0
        self._lock = threading.Lock()

    def close_for(self, seconds: float) -> None:
        """Let no request through for ``seconds`` from now (never shortening a pause)."""
        with self._lock:
            self._opens_at = max(self._opens_at, self._clock.monotonic() + seconds)

    @property
    def opens_at(self) -> float:
        """When requests may be sent again (on the run's clock)."""
        return self._opens_at


class JWTAuthenticator(APIAuthenticatorBase):
    """``Authorization: Bearer <jwt>``, HS256 with the JWT ID as ``kid`` (never HS512).

    The token is cached and re-signed well before it expires; :meth:`invalidate` forces a
    fresh one after a 401.
    """

    def __init__(self, jwt_id: str, jwt_secret: str) -> None:
        super().__init__()
        self._jwt_id, self._jwt_secret = jwt_id, jwt_secret
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = threading.Lock()

    @override
    def __repr__(self) -> str:
        return f"{type(self).__name__}(jwt_id={self._jwt_id!r})"

    def invalidate(self) -> None:
        """Sign a new token for the next request."""
        with self._lock:
            self._token = None

    @override
    def authenticate_request(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        """Set the bearer header on every try, from the cache."""
        with self._lock:
            now = time.time()
            if self._token is None or now >= self._expires_at - REFRESH_MARGIN_SECONDS:
                self._expires_at = int(now) + TOKEN_LIFETIME_SECONDS
                claims = {
                    "iat": int(now) - CLOCK_SKEW_SECONDS,
                    "exp": int(self._expires_at),
                    "jti": uuid.uuid4().hex,
                }
                with warnings.catch_warnings():  # Usersnap makes the secret, not the user
                    warnings.simplefilter("ignore", InsecureKeyLengthWarning)
                    self._token = jwt.encode(
                        claims, self._jwt_secret, algorithm="HS256", headers={"kid": self._jwt_id}
                    )
            request.headers["Authorization"] = f"Bearer {self._token}"
        return request


class DeadlineAdapter(HTTPAdapter):
    """Each whole answer within ``request_timeout``, and at most :data:`MAX_BODY_BYTES` long.

    ``requests`` times out each socket read, so a body sent a byte a second would never time
    out: a timer shuts the socket at the deadline. The body is read in chunks as it
    inflates, so a compressed bomb never fills memory.
    """

    def __init__(self, total_seconds: float, max_body_bytes: int = MAX_BODY_BYTES) -> None:
        super().__init__(pool_maxsize=16)
        self.total_seconds, self.max_body_bytes = total_seconds, max_body_bytes

    @override
    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, stream: bool = False, **kwargs: t.Any
    ) -> requests.Response:
        deadline = time.monotonic() + self.total_seconds
        response = super().send(request, stream=True, **kwargs)
        sock = getattr(getattr(response.raw, "connection", None), "sock", None)
        fired = threading.Event()

        def shut() -> None:
            fired.set()
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # type: ignore[union-attr]

        timer = threading.Timer(max(0.0, deadline - time.monotonic()), shut)
        timer.daemon = True
        if sock is not None:
            timer.start()
        body = bytearray()
        try:
            for chunk in response.raw.stream(64 * 1024, decode_content=True):
                body += chunk
                if len(body) > self.max_body_bytes:
                    response.close()
                    encoding = response.headers.get("Content-Encoding")
                    inflated = f" once decompressed ({encoding[:20]})" if encoding else ""
                    msg = (
                        f"Usersnap's answer to {describe(response)} is larger than "
                        f"{self.max_body_bytes / 2**20:g} MB{inflated}, the most the tap reads "
                        "of one answer"
                    )
                    raise RetriableAPIError(msg, response)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            if fired.is_set():
                raise self._too_slow(request) from exc
            if isinstance(exc, urllib3.exceptions.DecodeError):
                raise requests.exceptions.ContentDecodingError(exc, request=request) from exc
            raise requests.exceptions.ChunkedEncodingError(exc, request=request) from exc
        finally:
            timer.cancel()
        if fired.is_set():
            raise self._too_slow(request)
        response.raw = io.BytesIO(bytes(body))  # read already, decompressed
        return response

    def _too_slow(self, request: requests.PreparedRequest) -> requests.exceptions.ReadTimeout:
        msg = (
            f"{request.method} {loggable_path(request.url or '')} did not finish within "
            f"{self.total_seconds:g}s (request_timeout)"
        )
        return requests.exceptions.ReadTimeout(msg, request=request)


def new_session(api_url: str, request_timeout: float) -> requests.Session:
    """The run's session: proxies read once for the API's URL, the deadline adapter."""
    session = requests.Session()
    session.proxies = requests.utils.get_environ_proxies(api_url)
    session.trust_env = False
    adapter = DeadlineAdapter(request_timeout)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


@dataclasses.dataclass
class Listing:
    """The projects in scope, listed once per run (``GET /projects``) for every stream."""

    #: Every listed project that has an id, in scope (``project_ids``, if set).
    projects: list[dict[str, t.Any]]
    #: False when the listing said ``has_more`` but offered no way on.
    complete: bool
    #: How many projects the listing said it holds, if it said.
    count: int | None = None

    def ids(self) -> set[str]:
        """The ids of the listed projects in scope."""
        return {p["project_id"] for p in self.projects}

    def names(self) -> dict[str, str]:
        """Each listed project's name (empty when it has none)."""
        return {p["project_id"]: p.get("name") or "" for p in self.projects}


@dataclasses.dataclass
class Run:
    """What every stream of one run shares: settings, auth, session, pauses and the report."""

    settings: Settings
    clock: Clock
    report: RunReport
    authenticator: JWTAuthenticator
    session: requests.Session
    gate: RateLimitGate
    #: The table version of this run's new reads (milliseconds since 1970; grows per run).
    table_version: int = dataclasses.field(default_factory=lambda: int(time.time() * 1000))
    #: Set when SIGTERM or SIGINT arrives: the run stops at the next record.
    stop_signal: int | None = None
    #: Lists the projects, once (the tap sets it; see :attr:`listing`).
    list_projects: t.Callable[[], Listing] | None = None
    #: What the tap does once every stream has synced (the tap sets it).
    after_sync: t.Callable[[], None] | None = None
    _listing: Listing | None = None

    @property
    def listing(self) -> Listing:
        """The run's one project listing, made when a stream first needs it."""
        if self._listing is None:
            assert self.list_projects is not None  # noqa: S101 - the tap sets it first
            self._listing = self.list_projects()
        return self._listing

    @classmethod
    def of(cls, settings: Settings, clock: Clock, logger: logging.Logger) -> Run:
        """The shared objects of a run with ``settings``."""
        return cls(
            settings,
            clock,
            RunReport(logger),
            JWTAuthenticator(settings.jwt_id, settings.jwt_secret),
            new_session(settings.api_url, settings.request_timeout),
            RateLimitGate(clock),
        )


def loggable_path(url: str) -> str:
    """A URL's path as logs may show it: no query, a project's api_key hidden."""
    return _API_KEY_IN_PATH.sub(r"\1{api_key}\2", urlsplit(url).path)


def describe(response: requests.Response) -> str:
    """``METHOD /path`` of the request behind a response: no query, no body, no token."""
    return f"{response.request.method} {loggable_path(response.request.url or response.url)}"


def read_envelope(response: requests.Response) -> dict[str, t.Any]:
    """The answer's JSON object, parsed once (msgspec; the standard library where it refuses).

    Raises:
        RetriableAPIError: The body is not a JSON object (an HTML page, a cut-off body).
    """
    cached = response.__dict__.get("usersnap_envelope")
    if cached is not None:
        return t.cast("dict[str, t.Any]", cached)
    try:
        envelope, strict = msgspec.json.decode(response.content), True
    except (msgspec.DecodeError, RecursionError):
        envelope, strict = _decode(response.content, response), False
    if not isinstance(envelope, dict):
        kind = response.headers.get("Content-Type", "unknown content type")
        msg = (
            f"Usersnap answered {describe(response)} with {response.status_code} but the body "
            f"is not a JSON object ({kind[:40]}, {len(response.content)} bytes)"
        )
        raise RetriableAPIError(msg, response)
    response.__dict__["usersnap_envelope"] = envelope
    response.__dict__["usersnap_strict"] = strict
    return envelope


def needs_text_check(response: requests.Response) -> bool:
    """The page may hold a NUL or a lone surrogate: read leniently, or such an escape in it.

    Msgspec's strict reading holds no lone surrogate, and a NUL only as an escape.
    """
    read_envelope(response)
    return not response.__dict__["usersnap_strict"] or body_needs_text_check(response.content)


def _decode(content: bytes, response: requests.Response) -> t.Any:
    """The standard library's reading of a body msgspec refused; None if it is no JSON.

    It takes UTF-16, NaN and lone surrogates; a body too deep for it is cut to a depth it
    can take first (:func:`cut_deep_values`).
    """
    try:
        return json.loads(content)
    except UnicodeDecodeError:  # one bad byte must not cost the page, nor stop every run
        LOGGER.warning(
            "Usersnap answered %s with bytes that are not UTF-8; each was read as U+FFFD",
            describe(response),
        )
        return _decode(content.decode("utf-8", "replace").encode(), response)
    except RecursionError:
        with contextlib.suppress(ValueError):
            return json.loads(cut_deep_values(content))
    except ValueError:
        pass
    return None


def cut_deep_values(content: bytes, max_depth: int = MAX_BODY_DEPTH) -> bytes:
    """The body with every value nested deeper than ``max_depth`` replaced by :data:`TOO_DEEP`.

    Only for bodies no decoder can take (a visitor's custom_data thousands deep); it reads
    token by token, without recursion.
    """
    out = bytearray()
    depth, kept_to, cut_from = 0, 0, -1
    for token in _TOKENS.finditer(content):
        char = token.group()[:1]
        if char in b"[{":
            depth += 1
            if depth == max_depth + 1 and cut_from < 0:
                cut_from = token.start()
        elif char in b"]}":
            depth -= 1
            if depth == max_depth and cut_from >= 0:
                out += content[kept_to:cut_from] + msgspec.json.encode(TOO_DEEP)
                kept_to, cut_from = token.end(), -1
    return bytes(out + content[kept_to:])


def envelope_data(response: requests.Response) -> dict[str, t.Any]:
    """The envelope's ``data`` object (empty when absent)."""
    data = read_envelope(response).get("data")
    return data if isinstance(data, dict) else {}


def api_error_text(response: requests.Response) -> str:
    """The ``errortype: msg`` of Usersnap's error envelope, if the body is one."""
    try:
        envelope = read_envelope(response)
    except RetriableAPIError:
        return "no error details"
    errortype = str(envelope.get("errortype") or "UNKNOWN")[:MAX_QUOTED]
    message = str(envelope.get("msg") or "")[:200]
    return f"{errortype}: {message}" if message else errortype


def retry_after(value: str | None) -> float | None:
    """Seconds a ``Retry-After`` asks to wait (seconds or an HTTP date); None: no wait named."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value.strip())
        except (TypeError, ValueError):
            return None
        when = when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)
        seconds = (when - dt.datetime.now(dt.timezone.utc)).total_seconds()
    return seconds if seconds > 0 else None  # nan > 0 is False


def clock_skew_hint(response: requests.Response, now: float | None = None) -> str | None:
    """Why a token looks invalid when the server's ``Date`` is far from this machine's clock."""
    try:
        server = email.utils.parsedate_to_datetime(response.headers.get("Date") or "")
    except (TypeError, ValueError):
        return None
    server = server if server.tzinfo else server.replace(tzinfo=dt.timezone.utc)
    skew = server.timestamp() - (time.time() if now is None else now)
    if abs(skew) <= CLOCK_SKEW_SECONDS:
        return None
    side, looks = ("behind", "issued in the future") if skew < 0 else ("ahead of", "expired")
    return (
        f"but the server's clock (its Date header) is {abs(skew):.0f} s {side} this machine's, "
        f"so the token looks {looks} there: set this machine's clock right (NTP)"
    )


def describe_failure(exc: BaseException) -> str:
    """One line about a failed try, with the cause a person can act on."""
    if isinstance(exc, RetriableAPIError):
        return str(exc)
    if isinstance(exc, requests.exceptions.Timeout) and not isinstance(
        exc, requests.exceptions.ConnectTimeout
    ):
        said = exc.args[0] if exc.args and isinstance(exc.args[0], str) else None
        return (
            f"Usersnap did not answer in time: {said}"
            if said
            else ("Usersnap did not answer in time (request_timeout)")
        )
    url = urlsplit(getattr(getattr(exc, "request", None), "url", None) or "")
    host = f"{url.hostname}:{url.port}" if url.port else url.hostname or "the Usersnap API"
    return f"Connection to {host} failed: {_root_cause(exc)}"


def _root_cause(exc: BaseException) -> str:  # noqa: PLR0911 - one answer per cause
    causes, stack, seen = [], [exc], set()
    while stack:
        current = stack.pop(0)
        if id(current) not in seen:
            seen.add(id(current))
            causes.append(current)
            nested = [getattr(current, "reason", None), current.__cause__, current.__context__]
            nested += [a for a in current.args if isinstance(a, BaseException)]
            stack += [n for n in nested if isinstance(n, BaseException)]

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


class CursorPaginator(BaseAPIPaginator[str | None]):
    """``data.next.after`` while ``data.has_more``; a repeated cursor ends the read.

    Where ``next`` is missing, the id of the page's last item is the cursor (the API's own
    convention); ``fallback_key`` None means the endpoint has no cursor at all (the spec's
    ``GET /projects``): the read ends at the first page and :attr:`cut_short` says so.
    """

    def __init__(self, records_key: str, fallback_key: str | None) -> None:
        super().__init__(None)
        self._records_key, self._fallback_key = records_key, fallback_key
        self._seen: set[str] = set()
        self.cut_short = False

    @override
    def has_more(self, response: requests.Response) -> bool:
        more = bool(envelope_data(response).get("has_more"))
        if more and self._fallback_key is None:
            self.cut_short = True
            return False
        return more

    @override
    def continue_if_empty(self, response: requests.Response) -> bool:
        return self.has_more(response)

    def _next(self, response: requests.Response) -> str | None:
        following = envelope_data(response).get("next")
        cursor = following.get("after") if isinstance(following, dict) else None
        return cursor if isinstance(cursor, str) and cursor else None

    @override
    def get_next(self, response: requests.Response) -> str | None:
        cursor = self._next(response)
        if cursor is None and self._fallback_key is not None:
            items = envelope_data(response).get(self._records_key) or []
            last = items[-1] if items else None
            cursor = last.get(self._fallback_key) if isinstance(last, dict) else None
        if not isinstance(cursor, str) or not cursor:
            msg = (
                f"Usersnap said has_more for {describe(response)} but gave no next.after cursor "
                f"({self.count + 1} page(s) read); stopping rather than dropping the rest"
            )
            raise PaginationError(msg)
        if cursor in self._seen:
            msg = (
                f"Usersnap returned cursor {cursor[:MAX_QUOTED]!r} a second time after "
                f"{self.count} page(s) of {describe(response)}; stopping rather than looping "
                "forever"
            )
            raise PaginationError(msg)
        self._seen.add(cursor)
        return cursor


class ExplainedFailures(logging.Filter):
    """Drops a stream's ERROR line while a failure is handled that the tap tells in one line.

    The SDK logs "an unhandled error occurred" for any failed stream; the CLI then prints the
    failure's own line, so the user reads one line, not two.
    """

    @override
    def filter(self, record: logging.LogRecord) -> bool:
        explained = isinstance(sys.exc_info()[1], UsersnapError | AbortedSyncExceptionBase)
        return not (explained and record.levelno >= logging.ERROR)


class UsersnapStream(RESTStream[str | None]):
    """What every Usersnap stream shares: the run's auth, session, answers, retries, pages.

    A stream names ``records_key`` (the list inside ``data``) and conforms each record to
    its schema file before it goes out (:meth:`post_process`).
    """

    records_key: t.ClassVar[str]
    #: The field of an item the ``after`` cursor names (None: the endpoint has no cursor).
    cursor_key: t.ClassVar[str | None] = None
    payload_as_json = True

    def __init__(self, tap: Tap, run: Run) -> None:
        self.run = run
        #: The tap, whose public writers send STATE and ACTIVATE_VERSION.
        self.singer_tap = tap
        super().__init__(tap, schema=schema_of(self.name))
        self.shape = Shape.of(self.schema)
        if not any(isinstance(f, ExplainedFailures) for f in self.logger.filters):
            self.logger.addFilter(ExplainedFailures())

    @override
    def log_sync_costs(self) -> None:
        """The SDK's, then, for the tap's last stream, the run's end (:attr:`Run.after_sync`).

        The SDK calls it for every stream, selected or not, once every stream has synced.
        """
        super().log_sync_costs()
        if list(self.singer_tap.streams.values())[-1] is self and self.run.after_sync:
            self.run.after_sync()

    def use_table_version(self, version: int | None) -> None:
        """Make every RECORD from now on carry ``version`` (see :mod:`~tap_usersnap.deletes`)."""
        set_record_version(self, version)

    def activate_version(self, version: int | None) -> None:
        """ACTIVATE_VERSION after this run's records, for every stream map that keeps them."""
        if version is None or not self.selected:
            return
        for stream_map in self.stream_maps:
            if not isinstance(stream_map, RemoveRecordTransform):
                message = ActivateVersionMessage(stream=stream_map.stream_alias, version=version)
                self.singer_tap.write_message(message)

    def write_state(self) -> None:
        """A STATE message with the tap's whole state (every record before it is out)."""
        self.singer_tap.state_writer.write_state(self.singer_tap.state)

    def stop_if_signalled(self) -> None:
        """After SIGTERM or SIGINT: the state reached as the last message, then stop.

        Called between records, so the STATE never cuts a line and covers every record out.
        """
        if self.run.stop_signal is not None:
            self.write_state()
            raise InterruptedRunError(self.run.stop_signal)

    @property
    @override
    def emit_activate_version_messages(self) -> bool:
        """False, whatever the setting: the SDK's would go out before the records.

        The tap sends ACTIVATE_VERSION after a complete read (:mod:`~tap_usersnap.deletes`).
        """
        return False

    @property
    @override
    def url_base(self) -> str:
        return self.run.settings.api_url

    @property
    @override
    def authenticator(self) -> JWTAuthenticator:
        return self.run.authenticator

    @property
    @override
    def requests_session(self) -> requests.Session:
        return self.run.session

    @property
    @override
    def http_headers(self) -> dict[str, str]:
        return {**super().http_headers, "Accept": "application/json"}

    @property
    @override
    def timeout(self) -> tuple[float, float]:  # type: ignore[override]
        return (CONNECT_TIMEOUT_SECONDS, self.run.settings.request_timeout)

    @override
    def get_new_paginator(self) -> CursorPaginator:
        return CursorPaginator(self.records_key, self.cursor_key)

    @override
    def request_decorator(self, func: t.Callable[..., t.Any]) -> t.Callable[..., t.Any]:
        """The SDK's retries around each try, every try after the run's 429 pause."""

        def gated(*args: t.Any) -> t.Any:
            self.pause(0.0)
            try:
                return func(*args)
            except requests.exceptions.TooManyRedirects:
                msg = "Usersnap's answers redirect in a loop (more than 30); check api_url"
                raise UsersnapError(msg) from None

        return super().request_decorator(gated)

    @override
    def backoff_wait_generator(self) -> t.Generator[float, t.Any, None]:
        """The waits of one request, told by the failure each follows.

        A 429 waits its ``Retry-After`` (every request pauses with it, however often it
        comes); a 401 re-signs the token once; anything else backs off exponentially, for
        :data:`MAX_TRIES` tries in all. Waits pass on the run's clock (tests use a fake one).
        """
        tries = {"transient": 0, "rate_limited": 0, "token": 0}
        failure = yield 0.0
        while True:
            self.pause(self._wait_after(failure, tries))
            failure = yield 0.0

    def pause(self, seconds: float) -> None:
        """Wait ``seconds`` on the run's clock, then out the run's 429 pause; a signal ends it.

        Nothing is written here (it may run in a reader's thread): the signal is raised to
        the stream, which writes the state reached.
        """
        clock, until = self.run.clock, self.run.clock.monotonic() + seconds
        while True:
            if self.run.stop_signal is not None:
                raise InterruptedRunError(self.run.stop_signal)
            remaining = max(until, self.run.gate.opens_at) - clock.monotonic()
            if remaining <= 0:
                return
            clock.sleep(min(remaining, 1.0) if isinstance(clock, SystemClock) else remaining)

    def _wait_after(self, failure: BaseException, tries: dict[str, int]) -> float:
        if isinstance(failure, TokenRejectedError):
            tries["token"] += 1
            if tries["token"] > 1:
                settings = self.run.settings
                msg = (
                    f"Usersnap rejected the credentials (401) of JWT ID {settings.jwt_id!r}: "
                    "check the jwt_id and jwt_secret settings; the API key may have been "
                    "deleted or rotated in Usersnap (Settings > API)"
                )
                raise CredentialsRejectedError(f"{msg}; {failure.hint}" if failure.hint else msg)
            self.run.authenticator.invalidate()
            return 0.0
        if isinstance(failure, RateLimitedError) and failure.retry_after is not None:
            wait = min(failure.retry_after, MAX_RETRY_AFTER_SECONDS)
            if failure.retry_after > wait:
                self.logger.warning(
                    "%s with Retry-After of %.0fs; capped at %.0fs",
                    failure,
                    failure.retry_after,
                    wait,
                )
            else:
                self.logger.info("%s; waiting %.1fs as asked", failure, wait)
            self.run.gate.close_for(wait)
            return 0.0
        kind = "rate_limited" if isinstance(failure, RateLimitedError) else "transient"
        tries[kind] += 1
        limit = MAX_RATE_LIMITED if kind == "rate_limited" else MAX_TRIES - 1
        if tries[kind] > limit:
            msg = (
                f"{failure}: gave up after {tries[kind]} rate-limited tries"
                if kind == "rate_limited"
                else f"{describe_failure(failure)}; gave up after {tries[kind]} tries"
            )
            raise UsersnapError(msg) from failure
        wait = min(base_backoff_seconds() * 2 ** (tries[kind] - 1), MAX_BACKOFF_SECONDS)
        if isinstance(failure, RateLimitedError):
            response = failure.response
            said = response.headers.get("Retry-After") if response is not None else None
            self.logger.info(
                "%s; waiting %.1fs, the backoff (%s)",
                failure,
                wait,
                f"Retry-After {said[:40]!r} names no wait" if said else "no Retry-After",
            )
            return wait
        self.logger.warning(
            "%s; retrying in %.1fs (try %d of %d)",
            describe_failure(failure),
            wait,
            tries[kind] + 1,
            limit + 1,
        )
        return wait

    @override
    def backoff_max_tries(self) -> int:
        """No count of the SDK's: :meth:`backoff_wait_generator` decides when to give up."""
        return sys.maxsize

    @override
    def backoff_jitter(self, value: float) -> float:
        return value  # the waits are taken on the run's clock, already

    @override
    def backoff_handler(self, details: t.Any) -> None:
        """Nothing: each wait is logged once, naming its cause (never the request's body)."""

    @override
    def validate_response(self, response: requests.Response) -> None:
        """Raise what an answer stands for: a retry, a one-line failure, or nothing (a page)."""
        status, where = response.status_code, describe(response)
        if status == HTTPStatus.UNAUTHORIZED:
            raise TokenRejectedError(
                f"Usersnap answered 401 to {where}", response, clock_skew_hint(response)
            )
        if status == HTTPStatus.TOO_MANY_REQUESTS:
            wait = retry_after(response.headers.get("Retry-After"))
            raise RateLimitedError(f"Usersnap rate-limited {where} (429)", response, wait)
        if status >= HTTPStatus.INTERNAL_SERVER_ERROR or status == HTTPStatus.REQUEST_TIMEOUT:
            msg = f"Usersnap answered {status} to {where}: {api_error_text(response)}"
            raise RetriableAPIError(msg, response)
        text = api_error_text(response) if status >= HTTPStatus.BAD_REQUEST else ""
        if "SITE_NOT_FOUND" in text or status in (HTTPStatus.FORBIDDEN, HTTPStatus.NOT_FOUND):
            project = re.search(r"/projects/([^/]+)/feedbacks", urlsplit(response.url).path)
            if project:
                msg = (
                    f"Usersnap project {project[1]!r} does not exist or this JWT key cannot see "
                    f"it ({status} {text} on {where})"
                )
                raise ProjectRefusedError(msg, f"{status} {text}")
            raise ProjectRefusedError(
                f"Usersnap refused {where} ({status} {text})", f"{status} {text}"
            )
        if status >= HTTPStatus.BAD_REQUEST and "after" in parse_qs(
            urlsplit(response.request.url or "").query
        ):
            msg = (
                f"Usersnap rejected the page cursor of {where} ({status} {text}); the item it "
                "names was probably deleted meanwhile"
            )
            raise CursorRejectedError(msg)
        if status >= HTTPStatus.BAD_REQUEST:
            raise UsersnapError(f"Usersnap rejected {where} ({status} {text})")
        if read_envelope(response).get("status") is False:
            msg = f"Usersnap answered {where} with status false: {api_error_text(response)}"
            raise UsersnapError(msg)
        self.check_page(response)

    def check_page(self, response: requests.Response) -> None:
        """A 200 without ``data.<records_key>`` as a list is a failed try, never "no items"."""
        data = read_envelope(response).get("data")
        items = data.get(self.records_key) if isinstance(data, dict) else None
        if not isinstance(items, list):
            found = (
                "no data object"
                if not isinstance(data, dict)
                else ("nothing" if items is None else f"a {type(items).__name__}")
            )
            msg = (
                f"Usersnap answered {describe(response)} with a malformed page: expected "
                f"data.{self.records_key} to be a list, found {found}"
            )
            raise RetriableAPIError(msg, response)

    @override
    def parse_response(self, response: requests.Response) -> t.Iterator[dict[str, t.Any]]:
        """The page's items; an entry that is not an object is skipped by name."""
        for position, item in enumerate(envelope_data(response)[self.records_key], start=1):
            if isinstance(item, dict):
                yield item
            else:
                self.run.report.skipped_item(
                    f"entry {position} of {describe(response)}",
                    f"it is not an object ({'null' if item is None else type(item).__name__})",
                )

    @override
    def post_process(
        self, row: dict[str, t.Any], context: Context | None = None
    ) -> dict[str, t.Any] | None:
        """The record, conformed to the stream's schema; the run stops here on a signal."""
        self.stop_if_signalled()
        for change in conform(row, self.shape):
            self.run.report.altered_item(self.describe_record(row), change)
        return self.fit_flattened(row)

    def fit_flattened(self, row: dict[str, t.Any]) -> dict[str, t.Any]:
        """With ``flattening_enabled``, the record fitted to the flattened columns."""
        stream_map = self.stream_maps[0]
        if stream_map.flattening_enabled and stream_map.flattening_options is not None:
            fit_flattened(row, self.shape, stream_map.flattening_options.max_level)
        return row

    def describe_record(self, record: dict[str, t.Any]) -> str:
        """How a record is named in a warning (never by its content)."""
        key = self.primary_keys[0] if self.primary_keys else None
        value = record.get(key) if key else None
        return (
            f"{self.name} record {str(value)[:MAX_QUOTED]!r}" if value else f"a {self.name} record"
        )


class InterruptedRunError(UsersnapError):
    """SIGTERM or SIGINT: the run stops between records; the last STATE is a resume point."""

    def __init__(self, signum: int) -> None:
        super().__init__(
            f"Interrupted by signal {signum}: stopped; the next run resumes from the last STATE"
        )
        self.signum = signum
