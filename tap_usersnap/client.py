"""Talking to the Usersnap REST API: its errors, auth, transport, answers and pages.

A JWT the tap signs (:class:`JWTAuthenticator`), each whole answer within a deadline and a
size (:class:`DeadlineAdapter`), the envelope ``{status, data | msg, errortype, errordata}``
read once (:func:`read_envelope`), failures described so a person can act
(:func:`describe_failure`), and the cursor ``data.next.after`` while ``data.has_more``
(:class:`CursorPaginator`). The streams use them through :mod:`tap_usersnap.base`.

Messages name the request and Usersnap's error type, never a token, a query or a body.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email.utils
import errno
import io
import json
import logging
import math
import re
import socket
import threading
import time
import typing as t
import uuid
import warnings
from urllib.parse import quote, unquote, urlsplit

import jwt
import msgspec
import requests
import urllib3.exceptions
from jwt.warnings import InsecureKeyLengthWarning
from requests.adapters import HTTPAdapter
from singer_sdk.authenticators import APIAuthenticatorBase
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError
from singer_sdk.pagination import BaseAPIPaginator
from typing_extensions import override

from tap_usersnap.records import MAX_QUOTED, one_line

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
#: The shortest wait after a 429 (a ``Retry-After`` of 0 must not make a busy loop), and the
#: longest one the run waits out: a longer one ends the run (the next resumes), rather than
#: retrying before the server asked or waiting for days.
MIN_RETRY_AFTER_SECONDS, MAX_RETRY_AFTER_SECONDS = 1.0, 3600.0
#: Pages in a row with no item but ``has_more`` before a read stops (a server that pages
#: for ever with fresh cursors).
MAX_EMPTY_PAGES = 10
#: Nesting deeper than this is cut when a body is too deep for any decoder to read.
MAX_BODY_DEPTH = 96
#: The longest integer Python reads from text (its default limit).
MAX_INTEGER_DIGITS = 4300
TOO_DEEP = "[removed by tap-usersnap: nested too deep to store]"
_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]')
_API_KEY_IN_PATH = re.compile(r"(/projects/)[^/]+(/assignees)$")
_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


class UsersnapError(FatalAPIError):
    """A failure the tap explains in one line; the CLI prints it without a traceback."""


class CredentialsRejectedError(UsersnapError):
    """Usersnap refused the JWT even after re-signing it."""


class ProjectRefusedError(UsersnapError):
    """Usersnap refuses one project (403, 404, SITE_NOT_FOUND): skipped by name."""

    def __init__(self, message: str, answer: str = "", *, gone: bool = False) -> None:
        super().__init__(message)
        #: The answer, as ``status errortype: msg``.
        self.answer = answer or message
        #: Usersnap said the project does not exist (the spec's SITE_NOT_FOUND); a 403 or a
        #: 404 may be a key that lost access.
        self.gone = gone


class CursorRejectedError(UsersnapError):
    """A 400 to a request carrying ``after``: the item it names was likely deleted meanwhile."""


class PaginationError(UsersnapError):
    """The API's paging answers make no sense; stopping beats looping or losing data."""


class InterruptedRunError(UsersnapError):
    """SIGTERM or SIGINT: the run stops between records; the last STATE is a resume point."""

    def __init__(self, signum: int) -> None:
        super().__init__(
            f"Interrupted by signal {signum}: stopped; the next run resumes from the last STATE"
        )
        self.signum = signum


class RateLimitedError(RetriableAPIError):
    """A 429: wait what ``Retry-After`` says (``retry_after`` None: it names no wait), retry."""

    def __init__(self, message: str, response: requests.Response) -> None:
        super().__init__(message, response)
        #: The header as sent, and the seconds it asks to wait (in seconds or as an HTTP date).
        self.said = response.headers.get("Retry-After")
        self.retry_after: float | None = None
        if self.said:
            try:
                seconds = float(self.said)
            except ValueError:
                when = _http_date(self.said)
                seconds = math.nan if when is None else max(when - time.time(), 0.0)
            if 0 <= seconds < math.inf:  # "0" and a date passed: now; nan and inf: no wait
                self.retry_after = seconds


class TokenRejectedError(RetriableAPIError):
    """A 401: re-sign the token once and try again; ``hint`` names a likelier cause."""

    def __init__(self, message: str, response: requests.Response) -> None:
        super().__init__(message, response)
        #: Why a token looks invalid when the server's ``Date`` is far from this machine's clock.
        self.hint: str | None = None
        server = _http_date(response.headers.get("Date") or "")
        skew = 0.0 if server is None else server - time.time()
        if abs(skew) > CLOCK_SKEW_SECONDS:
            side, looks = (
                ("behind", "issued in the future") if skew < 0 else ("ahead of", "expired")
            )
            self.hint = (
                f"but the server's clock (its Date header) is {abs(skew):.0f} s {side} this "
                f"machine's, so the token looks {looks} there: set this machine's clock right (NTP)"
            )


def _http_date(value: str) -> float | None:
    """An HTTP date in seconds since 1970 (UTC if it names no zone); None if it is none."""
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return (when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)).timestamp()


def backoff_seconds(tries: int) -> float:
    """The backoff after failed try ``tries`` (the constants read when used: tests shorten it)."""
    return min(BASE_BACKOFF_SECONDS * 2 ** (tries - 1), MAX_BACKOFF_SECONDS)


class Clock(t.Protocol):
    """What retries need of time: the ``time`` module (tests pass one whose waits pass at once)."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back."""

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds``."""


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
    out: the body is read one socket read at a time, each allowed only what is left until
    the deadline. It is read in chunks as it inflates, so a compressed bomb never fills memory.
    """

    def __init__(self, total_seconds: float) -> None:
        super().__init__(pool_maxsize=16)
        self.total_seconds = total_seconds

    @override
    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, stream: bool = False, **kwargs: t.Any
    ) -> requests.Response:
        deadline = time.monotonic() + self.total_seconds
        response = super().send(request, stream=True, **kwargs)
        sock = getattr(getattr(response.raw, "connection", None), "sock", None)
        body = bytearray()
        while (left := deadline - time.monotonic()) > 0:
            try:
                if sock is not None:
                    sock.settimeout(left)
                chunk = response.raw.read1(64 * 1024, decode_content=True)
            except (urllib3.exceptions.TimeoutError, TimeoutError) as exc:
                raise self._too_slow(request) from exc
            except urllib3.exceptions.DecodeError as exc:
                raise requests.exceptions.ContentDecodingError(exc, request=request) from exc
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                raise requests.exceptions.ChunkedEncodingError(exc, request=request) from exc
            if not chunk:
                response.raw = io.BytesIO(bytes(body))  # read already, decompressed
                return response
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                response.close()
                encoding = response.headers.get("Content-Encoding")
                inflated = f" once decompressed ({encoding[:20]})" if encoding else ""
                msg = (
                    f"Usersnap's answer to {describe(response)} is larger than "
                    f"{MAX_BODY_BYTES / 2**20:g} MB{inflated}, the most the tap reads of one answer"
                )
                raise RetriableAPIError(msg, response)
        raise self._too_slow(request)

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


def loggable_path(url: str) -> str:
    """A URL's path as logs may show it: no query, a project's api_key hidden."""
    return _API_KEY_IN_PATH.sub(r"\1{api_key}\2", urlsplit(url).path)


def project_url(api_url: str, key: str, endpoint: str) -> str:
    """``{api_url}/projects/{key}/{endpoint}``, the project id or api_key one path segment.

    The key is data, percent-encoded whole: a ``/``, ``?``, ``#`` or ``..`` in it would
    send the request to another path. ``.`` and ``..`` stay dot segments however they are
    encoded (``requests`` decodes ``%2E``, then drops them), so they are refused unsent.
    """
    if key in {"", ".", ".."}:
        answer = "not asked: an empty key, '.' and '..' name no URL path segment"
        raise ProjectRefusedError(f"Usersnap cannot be asked about this project ({answer})", answer)
    return f"{api_url}/projects/{quote(key, safe='')}/{endpoint}"


def project_in_url(url: str, endpoint: str = "") -> str | None:
    """The project id or api_key a request URL names before ``endpoint``, decoded."""
    found = re.search(rf"/projects/([^/]+)/{re.escape(endpoint)}", urlsplit(url).path)
    return unquote(found[1]) if found else None


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
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError):
        envelope, strict = _decode(response.content, response), False
    if not isinstance(envelope, dict):
        kind = response.headers.get("Content-Type", "unknown content type")
        msg = (
            f"Usersnap answered {describe(response)} with {response.status_code} but the body "
            f"is not a JSON object ({kind[:40]}, {len(response.content)} bytes)"
        )
        raise RetriableAPIError(msg, response)
    response.__dict__.update(usersnap_envelope=envelope, usersnap_strict=strict)
    return envelope


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
    errortype = one_line(str(envelope.get("errortype") or "UNKNOWN")[:MAX_QUOTED])
    message = one_line(str(envelope.get("msg") or "")[:200])
    return f"{errortype}: {message}" if message else errortype


def says_project_gone(response: requests.Response) -> bool:
    """Usersnap's errortype SITE_NOT_FOUND: its word that a project does not exist.

    Only the errortype says it; a message that mentions it does not.
    """
    try:
        return read_envelope(response).get("errortype") == "SITE_NOT_FOUND"
    except RetriableAPIError:  # a body that is no envelope says nothing
        return False


def said_more(data: dict[str, t.Any]) -> bool:
    """Whether an answer's ``has_more`` says more follows (``"false"`` is text that says no)."""
    more = data.get("has_more")
    return more.strip().lower() in {"true", "1", "yes"} if isinstance(more, str) else bool(more)


def needs_text_check(response: requests.Response) -> bool:
    r"""The page may hold a NUL or a lone surrogate: read leniently, or a ``\u0000`` in it.

    Msgspec's strict reading refuses a lone surrogate, and JSON sends a NUL only escaped (an
    escaped backslash before ``u0000`` is text).
    """
    read_envelope(response)
    content = response.content
    strict = response.__dict__["usersnap_strict"]
    return not strict or (b"\\u0000" in content and _NUL_ESCAPE.search(content) is not None)


def _decode(content: bytes, response: requests.Response) -> t.Any:
    """The standard library's reading of a body msgspec refused; None if it is no JSON.

    It takes UTF-16, NaN and lone surrogates; a body too deep for it is cut to a depth it
    can take first (:func:`cut_deep_values`).
    """
    try:
        return _loads(content, response)
    except UnicodeDecodeError:  # one bad byte must not cost the page, nor stop every run
        LOGGER.warning(
            "Usersnap answered %s with bytes that are not UTF-8; each was read as U+FFFD",
            describe(response),
        )
        return _decode(content.decode("utf-8", "replace").encode(), response)
    except RecursionError:
        LOGGER.warning(
            "Usersnap answered %s with values nested deeper than %d levels: each was replaced "
            "by %r",
            describe(response),
            MAX_BODY_DEPTH,
            TOO_DEEP,
        )
        with contextlib.suppress(ValueError):
            return _loads(cut_deep_values(content), response)
    except ValueError:
        pass
    return None


def _loads(content: bytes, response: requests.Response) -> t.Any:
    """``json.loads``, keeping as text, with a warning, what no target stores as a number.

    An integer longer than Python reads (4300 digits), a number beyond a double, and NaN or
    Infinity (which JSON does not have) would fail the page or become null unseen.
    """

    def as_text(text: str, what: str) -> str:
        LOGGER.warning("Usersnap answered %s with %s: kept as its text", describe(response), what)
        return text

    def whole(digits: str) -> int | str:
        if len(digits) <= MAX_INTEGER_DIGITS:
            return int(digits)
        return as_text(digits, f"an integer of {len(digits)} digits")

    def real(text: str) -> float | str:
        number = float(text)
        return number if math.isfinite(number) else as_text(text, f"the number {text[:MAX_QUOTED]}")

    return json.loads(
        content, parse_int=whole, parse_float=real, parse_constant=lambda c: as_text(c, c)
    )


def cut_deep_values(content: bytes) -> bytes:
    """The body with every value nested deeper than :data:`MAX_BODY_DEPTH` made :data:`TOO_DEEP`.

    Only for bodies no decoder can take (a visitor's custom_data thousands deep); it reads
    token by token, without recursion.
    """
    out = bytearray()
    depth, kept_to, cut_from = 0, 0, -1
    for token in _TOKENS.finditer(content):
        char = token.group()[:1]
        if char in b"[{":
            depth += 1
            if depth == MAX_BODY_DEPTH + 1 and cut_from < 0:
                cut_from = token.start()
        elif char in b"]}":
            depth -= 1
            if depth == MAX_BODY_DEPTH and cut_from >= 0:
                out += content[kept_to:cut_from] + msgspec.json.encode(TOO_DEEP)
                kept_to, cut_from = token.end(), -1
    return bytes(out + content[kept_to:])


#: What a failed connection's cause means to a person, first match wins.
_CAUSES: tuple[tuple[tuple[type[BaseException], ...], str], ...] = (
    (
        (urllib3.exceptions.NameResolutionError, socket.gaierror),
        "the host name could not be resolved (DNS); check api_url and the network",
    ),
    ((ConnectionRefusedError,), "connection refused (nothing listens there; check api_url)"),
    (
        (urllib3.exceptions.ProxyError,),
        "the proxy failed or refused the connection; check HTTPS_PROXY",
    ),
    (
        (urllib3.exceptions.SSLError,),
        "the TLS handshake failed (certificate, or a proxy intercepting TLS?)",
    ),
    ((ConnectionResetError,), "the connection was reset by the server or a proxy"),
    (
        (urllib3.exceptions.ConnectTimeoutError,),
        f"no answer to the connection attempt within {CONNECT_TIMEOUT_SECONDS:g}s",
    ),
    (
        (urllib3.exceptions.ProtocolError,),
        "the connection broke off before the answer was complete",
    ),
)


def describe_failure(exc: BaseException) -> str:
    """One line about a failed try, with the cause a person can act on."""
    if isinstance(exc, RetriableAPIError):
        return str(exc)
    if isinstance(exc, requests.exceptions.Timeout) and not isinstance(
        exc, requests.exceptions.ConnectTimeout
    ):
        said = exc.args[0] if exc.args and isinstance(exc.args[0], str) else "(request_timeout)"
        return f"Usersnap did not answer in time{'' if said.startswith('(') else ':'} {said}"
    causes = [exc]
    for current in causes:  # what wraps what, breadth first: the list grows as it is read
        nested = [getattr(current, "reason", None), current.__cause__, current.__context__]
        causes += [n for n in [*nested, *current.args] if isinstance(n, BaseException)]
        del causes[50:]  # bounded
    if any(isinstance(c, OSError) and c.errno == errno.ECONNREFUSED for c in causes):
        causes.append(ConnectionRefusedError())
    cause = next(
        (text for kinds, text in _CAUSES if any(isinstance(c, kinds) for c in causes)),
        type(exc).__name__,
    )
    url = urlsplit(getattr(getattr(exc, "request", None), "url", None) or "")
    host = f"{url.hostname}:{url.port}" if url.port else url.hostname or "the Usersnap API"
    return f"Connection to {host} failed: {cause}"


class CursorPaginator(BaseAPIPaginator[str | None]):
    """``data.next.after`` while ``data.has_more``; a repeated cursor ends the read.

    Where ``next`` is missing, the ``fallback_key`` of the page's last item is the cursor
    (the API's own convention).
    """

    def __init__(self, records_key: str, fallback_key: str) -> None:
        super().__init__(None)
        self._records_key, self._fallback_key = records_key, fallback_key
        self._seen: set[str] = set()
        #: Pages in a row that held no entry but said ``has_more``.
        self._empty = 0

    @override
    def has_more(self, response: requests.Response) -> bool:
        return said_more(envelope_data(response))

    @override
    def continue_if_empty(self, response: requests.Response) -> bool:
        return self.has_more(response)

    @override
    def get_next(self, response: requests.Response) -> str | None:
        data = envelope_data(response)
        following = data.get("next")
        cursor = following.get("after") if isinstance(following, dict) else None
        if not isinstance(cursor, str) or not cursor:
            items = data.get(self._records_key) or []
            last = items[-1] if items else None
            cursor = last.get(self._fallback_key) if isinstance(last, dict) else None
        if not isinstance(cursor, str) or not cursor:
            msg = (
                f"Usersnap said has_more for {describe(response)} but gave no next.after cursor "
                f"({self.count + 1} page(s) read); stopping rather than dropping the rest"
            )
            raise PaginationError(msg)
        self._empty = 0 if data.get(self._records_key) else self._empty + 1
        if self._empty > MAX_EMPTY_PAGES:
            msg = (
                f"Usersnap answered {self._empty} pages of {describe(response)} in a row with no "
                "item, each saying has_more; stopping rather than asking for ever"
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
