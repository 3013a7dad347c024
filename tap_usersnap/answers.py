"""What Usersnap's answers mean: a retry, a one-line failure, or an answer to read.

Messages name the request and Usersnap's error type, never a token or a body.
"""

from __future__ import annotations

import typing as t
from http import HTTPStatus
from urllib.parse import urlsplit

from singer_sdk.exceptions import RetriableAPIError

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

if t.TYPE_CHECKING:
    import requests


def check_answer(response: requests.Response) -> None:
    """Raise what an error answer stands for: a retry, or a one-line failure.

    Messages name the request and Usersnap's error type, never a token or a body.
    """
    status = response.status_code
    where = describe_request(response)
    if status == HTTPStatus.UNAUTHORIZED:
        raise TokenRejectedError(f"Usersnap answered 401 to {where}", response)
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
