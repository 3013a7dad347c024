"""What Usersnap's answers mean: a retry, a one-line failure, or an answer to read.

Messages name the request and Usersnap's error type, never a token or a body.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import itertools
import time
from http import HTTPStatus
from urllib.parse import urlsplit

import requests
from singer_sdk.exceptions import RetriableAPIError

from tap_usersnap.auth import CLOCK_SKEW_SECONDS
from tap_usersnap.envelope import api_error_text, describe_request, read_envelope
from tap_usersnap.errors import (
    CursorRejectedError,
    ProjectNotFoundError,
    RateLimitedError,
    RequestRefusedError,
    TokenRejectedError,
    UsersnapError,
)
from tap_usersnap.retry import parse_retry_after

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

    A token is backdated by :data:`~tap_usersnap.auth.CLOCK_SKEW_SECONDS`; a server clock
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
