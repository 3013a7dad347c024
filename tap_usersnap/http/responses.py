"""Usersnap's answers: the envelope, read once, and what an answer means.

The envelope is ``{status, data | msg, errortype, errordata}``; an answer is a retry, a
one-line failure, or a page to read.

Messages name the request and Usersnap's error type, never a token or a body.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import itertools
import json
import logging
import re
import time
import typing as t
from http import HTTPStatus
from urllib.parse import urlsplit

import msgspec
import requests
from singer_sdk.exceptions import RetriableAPIError

from tap_usersnap.http.auth import CLOCK_SKEW_SECONDS
from tap_usersnap.http.errors import (
    CursorRejectedError,
    EndpointNotFoundError,
    MalformedResponseError,
    ProjectNotFoundError,
    RateLimitedError,
    RequestRefusedError,
    TokenRejectedError,
    UsersnapError,
)
from tap_usersnap.http.loggable import MAX_QUOTED_MESSAGE, describe_page, describe_request
from tap_usersnap.http.retry import parse_retry_after

#: Nesting deeper than this (counted from the body's root) is cut when a body is too deep
#: to decode at all; the cut value becomes :data:`TOO_DEEP`.
MAX_BODY_DEPTH = 96
#: What stands in for a value cut for its depth.
TOO_DEEP = "[removed by tap-usersnap: nested too deep to store]"
_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]')
LOGGER = logging.getLogger("tap-usersnap")


def read_envelope(response: requests.Response) -> dict[str, t.Any]:
    """Parse a response body once and keep it on the response for every later reader.

    The records, ``has_more`` and the next cursor all come from the same parsed body;
    msgspec parses it several times faster than the standard library.

    Raises:
        RetriableAPIError: The body is not a JSON object (an HTML error page, a cut-off
            body): worth another try.
    """
    cached = response.__dict__.get("_usersnap_envelope")
    if cached is not None:
        return t.cast("dict[str, t.Any]", cached)
    strict = False
    try:
        envelope, strict = _decode(response.content)
    except UnicodeDecodeError:  # one bad byte must not cost the page, nor stop every run
        LOGGER.warning(
            "Usersnap answered %s with bytes that are not UTF-8; each was read as U+FFFD "
            "(the replacement character) and the page kept",
            describe_page(response),
        )
        envelope, _ = _decode(response.content.decode("utf-8", "replace").encode())
    if not isinstance(envelope, dict):
        kind = response.headers.get("Content-Type", "unknown content type")
        msg = (
            f"Usersnap answered {describe_request(response)} with {response.status_code} "
            f"but the body is not a JSON object ({kind}, {len(response.content)} bytes)"
        )
        raise RetriableAPIError(msg, response)
    response.__dict__["_usersnap_envelope"] = envelope
    response.__dict__["_usersnap_strict"] = strict
    return envelope


def read_strictly(response: requests.Response) -> bool:
    """Whether the body was read as strict UTF-8 JSON (msgspec's reading).

    Then it holds no lone surrogate, and a NUL only as an escape in the raw bytes. Else
    anything may be in it: the standard library reads UTF-16, ``NaN`` and lone surrogate
    escapes too.
    """
    read_envelope(response)
    return bool(response.__dict__.get("_usersnap_strict"))


def _decode(content: bytes) -> tuple[t.Any, bool]:
    """Msgspec's reading (and True), else the standard library's; ``None`` if not JSON.

    Raises:
        UnicodeDecodeError: The body is not UTF-8.
    """
    try:
        return msgspec.json.decode(content), True
    except msgspec.DecodeError:
        return _decode_leniently(content), False
    except RecursionError:  # a visitor's custom_data nested thousands deep
        return _decode_leniently(cut_deep_values(content)), False


def _decode_leniently(content: bytes) -> t.Any:
    r"""The standard library's reading, which also takes what msgspec refuses.

    Text cut at a length limit can end in half an emoji: a lone surrogate escape
    (``\ud83d``) is valid JSON to the standard library (kept as is), not to msgspec.
    ``None`` if the body is not JSON at all.
    """
    try:
        return json.loads(content)
    except UnicodeDecodeError:
        raise
    except ValueError:
        return None


def cut_deep_values(content: bytes, max_depth: int = MAX_BODY_DEPTH) -> bytes:
    """The body with every value nested deeper than ``max_depth`` replaced by :data:`TOO_DEEP`.

    Only for bodies no decoder can take (it reads token by token, without recursion), so
    one hostile item cannot cost its page, or stop every later run.
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


def page_items(response: requests.Response, records_key: str) -> list[t.Any]:
    """The list ``data[records_key]`` of a successful answer.

    Raises:
        MalformedResponseError: ``data`` is missing or not an object, or the list is missing
            or not a list: a failed try, never "no items".
    """
    data = read_envelope(response).get("data")
    items = data.get(records_key) if isinstance(data, dict) else None
    if not isinstance(items, list):
        found = "no data object" if not isinstance(data, dict) else _kind(items)
        msg = (
            f"Usersnap answered {describe_request(response)} with a malformed page: "
            f"expected data.{records_key} to be a list, found {found}"
        )
        raise MalformedResponseError(msg, response)
    return items


def _kind(value: t.Any) -> str:
    return "nothing" if value is None else f"a {type(value).__name__}"


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
    errortype = envelope.get("errortype") or "UNKNOWN"
    message = str(envelope.get("msg") or "")[:MAX_QUOTED_MESSAGE]
    return f"{errortype}: {message}" if message else str(errortype)


#: Where ``requests`` decides whether a redirect drops the Authorization header.
_STRIPS_AUTH = requests.sessions.SessionRedirectMixin()


def check_answer(response: requests.Response) -> None:
    """Raise what an error answer stands for: a retry, or a one-line failure.

    Messages name the request and Usersnap's error type, never a token or a body.
    """
    status = response.status_code
    where = describe_request(response)
    if status == HTTPStatus.UNAUTHORIZED:
        if redirected_elsewhere(response):
            raise UsersnapError(_redirected_elsewhere_text(response))
        hint = clock_skew_hint(response)
        raise TokenRejectedError(f"Usersnap answered 401 to {where}", response, hint)
    if status == HTTPStatus.TOO_MANY_REQUESTS:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        raise RateLimitedError(f"Usersnap rate-limited {where} (429)", response, retry_after)
    if status >= HTTPStatus.INTERNAL_SERVER_ERROR or status == HTTPStatus.REQUEST_TIMEOUT:
        msg = f"Usersnap answered {status} to {where}: {api_error_text(response)}"
        raise RetriableAPIError(msg, response)
    if status == HTTPStatus.FORBIDDEN:
        raise RequestRefusedError(f"Usersnap refused {where} (403 {api_error_text(response)})")
    if status >= HTTPStatus.BAD_REQUEST:
        raise client_error(response)
    if read_envelope(response).get("status") is False:
        msg = f"Usersnap answered {where} with status false: {api_error_text(response)}"
        raise UsersnapError(msg)


def client_error(response: requests.Response) -> UsersnapError:
    """The failure a 4xx answer stands for (an unknown project is skipped by name)."""
    text = api_error_text(response)
    where = describe_request(response)
    if "SITE_NOT_FOUND" in text:
        errordata = read_envelope(response).get("errordata") or {}
        project = errordata.get("site_id") or urlsplit(response.url).path.split("/")[-3]
        return ProjectNotFoundError(
            f"Usersnap project {project!r} does not exist or this JWT key cannot see it "
            f"(400 SITE_NOT_FOUND on {where}); check the project_ids setting"
        )
    if "after=" in (urlsplit(response.request.url or "").query or ""):
        return CursorRejectedError(
            f"Usersnap rejected the page cursor of {where} ({response.status_code} {text}); "
            "the item it names was probably deleted meanwhile"
        )
    if response.status_code == HTTPStatus.NOT_FOUND:  # e.g. a project without assignees
        return EndpointNotFoundError(f"Usersnap rejected {where} (404 {text})")
    return UsersnapError(f"Usersnap rejected {where} ({response.status_code} {text})")


def redirected_elsewhere(response: requests.Response) -> bool:
    """The answer came through a redirect to another host (or port, or down to http).

    ``requests`` did not send the Authorization header there, so a 401 from it says
    nothing about the credentials.
    """
    urls = [hop.url for hop in response.history] + [response.url]
    return any(_STRIPS_AUTH.should_strip_auth(a, b) for a, b in itertools.pairwise(urls))


def _redirected_elsewhere_text(response: requests.Response) -> str:
    first = response.history[0]
    return (
        f"Usersnap's answer to {describe_request(first)} came from another host: "
        f"{_origin(first.url)} redirected it to {_origin(response.url)}, which answered 401; "
        "the credentials are never sent to another host, so set api_url to the URL the "
        "redirect names if that is the API"
    )


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def clock_skew_hint(response: requests.Response, now: float | None = None) -> str | None:
    """What to say when the server's ``Date`` is so far from ours that a token looks invalid.

    A token is backdated by :data:`~tap_usersnap.http.auth.CLOCK_SKEW_SECONDS`; a server clock
    further behind sees it issued in the future, and one far ahead sees it expired.
    """
    try:
        server = email.utils.parsedate_to_datetime(response.headers.get("Date") or "")
    except (TypeError, ValueError):
        return None
    if server.tzinfo is None:
        server = server.replace(tzinfo=dt.timezone.utc)
    skew = server.timestamp() - (time.time() if now is None else now)
    if abs(skew) <= CLOCK_SKEW_SECONDS:
        return None
    side, looks = ("behind", "issued in the future") if skew < 0 else ("ahead of", "expired")
    return (
        f"but the server's clock (its Date header) is {abs(skew):.0f} s {side} this machine's, "
        f"so the token looks {looks} there: set this machine's clock right (NTP)"
    )
