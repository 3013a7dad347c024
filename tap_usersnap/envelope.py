"""Reading Usersnap's response envelope ``{status, data | msg, errortype, errordata}``."""

from __future__ import annotations

import json
import logging
import re
import typing as t
from urllib.parse import parse_qs, urlsplit

import msgspec
from singer_sdk.exceptions import RetriableAPIError

from tap_usersnap.errors import MalformedResponseError

if t.TYPE_CHECKING:
    import requests

#: Longest part of an API error message quoted in ours (it never holds feedback bodies).
MAX_QUOTED_MESSAGE = 200
#: Nesting deeper than this (counted from the body's root) is cut when a body is too deep
#: to decode at all; the cut value becomes :data:`TOO_DEEP`.
MAX_BODY_DEPTH = 96
#: What stands in for a value cut for its depth.
TOO_DEEP = "[removed by tap-usersnap: nested too deep to store]"
_API_KEY_IN_PATH = re.compile(r"(/projects/)[^/]+(/assignees)$")
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
    try:
        envelope = _decode(response.content)
    except UnicodeDecodeError:  # one bad byte must not cost the page, nor stop every run
        LOGGER.warning(
            "Usersnap answered %s with bytes that are not UTF-8; each was read as U+FFFD "
            "(the replacement character) and the page kept",
            describe_page(response),
        )
        envelope = _decode(response.content.decode("utf-8", "replace").encode())
    if not isinstance(envelope, dict):
        kind = response.headers.get("Content-Type", "unknown content type")
        msg = (
            f"Usersnap answered {describe_request(response)} with {response.status_code} "
            f"but the body is not a JSON object ({kind}, {len(response.content)} bytes)"
        )
        raise RetriableAPIError(msg, response)
    response.__dict__["_usersnap_envelope"] = envelope
    return envelope


def _decode(content: bytes) -> t.Any:
    """Msgspec's reading, else the standard library's; ``None`` if the body is not JSON.

    Raises:
        UnicodeDecodeError: The body is not UTF-8.
    """
    try:
        return msgspec.json.decode(content)
    except msgspec.DecodeError:
        return _decode_leniently(content)
    except RecursionError:  # a visitor's custom_data nested thousands deep
        return _decode_leniently(cut_deep_values(content))


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


def describe_request(response: requests.Response) -> str:
    """``METHOD /path`` of the request behind a response: no query, no body, no token."""
    request = response.request
    return f"{request.method} {loggable_path(request.url or response.url or '')}"


def describe_page(response: requests.Response) -> str:
    """``METHOD /path`` and which page: the first, or the one after the cursor it names."""
    after = parse_qs(urlsplit(response.request.url or "").query).get("after")
    return f"{describe_request(response)} ({f'page after {after[-1]}' if after else 'first page'})"


def loggable_path(url: str) -> str:
    """A URL's path as logs may show it: a project's api_key (in the assignees path) hidden.

    The api_key is the widget's key of a project; it stays out of logs as out of state.
    """
    return _API_KEY_IN_PATH.sub(r"\1{api_key}\2", urlsplit(url).path)


def api_error_text(response: requests.Response) -> str:
    """The ``errortype: msg`` of Usersnap's error envelope, if the body is one."""
    try:
        envelope = read_envelope(response)
    except RetriableAPIError:
        return "no error details"
    errortype = envelope.get("errortype") or "UNKNOWN"
    message = str(envelope.get("msg") or "")[:MAX_QUOTED_MESSAGE]
    return f"{errortype}: {message}" if message else str(errortype)
