"""Reading Usersnap's response envelope ``{status, data | msg, errortype, errordata}``."""

from __future__ import annotations

import json
import typing as t
from urllib.parse import urlsplit

import msgspec
from singer_sdk.exceptions import RetriableAPIError

if t.TYPE_CHECKING:
    import requests

#: Longest part of an API error message quoted in ours (it never holds feedback bodies).
MAX_QUOTED_MESSAGE = 200


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
        envelope = msgspec.json.decode(response.content)
    except msgspec.DecodeError:
        envelope = _decode_leniently(response.content)
    if not isinstance(envelope, dict):
        kind = response.headers.get("Content-Type", "unknown content type")
        msg = (
            f"Usersnap answered {describe_request(response)} with {response.status_code} "
            f"but the body is not a JSON object ({kind}, {len(response.content)} bytes)"
        )
        raise RetriableAPIError(msg, response)
    response.__dict__["_usersnap_envelope"] = envelope
    return envelope


def _decode_leniently(content: bytes) -> t.Any:
    r"""The standard library's reading, which also takes what msgspec refuses.

    Text cut at a length limit can end in half an emoji: a lone surrogate escape
    (``\ud83d``) is valid JSON to the standard library (kept as is), not to msgspec.
    ``None`` if the body is not JSON at all.
    """
    try:
        return json.loads(content)
    except ValueError:
        return None


def envelope_data(response: requests.Response) -> dict[str, t.Any]:
    """The envelope's ``data`` object (empty when absent)."""
    data = read_envelope(response).get("data")
    return data if isinstance(data, dict) else {}


def describe_request(response: requests.Response) -> str:
    """``METHOD /path`` of the request behind a response: no query, no body, no token."""
    request = response.request
    path = urlsplit(request.url or response.url or "").path
    return f"{request.method} {path}"


def api_error_text(response: requests.Response) -> str:
    """The ``errortype: msg`` of Usersnap's error envelope, if the body is one."""
    try:
        envelope = read_envelope(response)
    except RetriableAPIError:
        return "no error details"
    errortype = envelope.get("errortype") or "UNKNOWN"
    message = str(envelope.get("msg") or "")[:MAX_QUOTED_MESSAGE]
    return f"{errortype}: {message}" if message else str(errortype)
