"""What can go wrong, as exception types the retry loop and the CLI can tell apart."""

from __future__ import annotations

import typing as t

from singer_sdk.exceptions import FatalAPIError, RetriableAPIError

if t.TYPE_CHECKING:
    import requests


class UsersnapError(FatalAPIError):
    """A failure the tap explains in one line; the CLI prints it without a traceback."""


class CredentialsRejectedError(UsersnapError):
    """Usersnap refused the JWT even after re-signing it."""


class OutputClosedError(UsersnapError):
    """The target closed the tap's stdout (a broken pipe): nothing more can be delivered."""


class ProjectNotFoundError(UsersnapError):
    """Usersnap does not know the project (deleted, or not visible to this key)."""


class PaginationError(UsersnapError):
    """The API's paging answers make no sense; stopping beats looping or losing data."""


class RateLimitedError(RetriableAPIError):
    """A 429: wait what ``Retry-After`` says, then try again."""

    def __init__(
        self, message: str, response: requests.Response, retry_after: float | None
    ) -> None:
        super().__init__(message, response)
        #: Seconds the server asked to wait, if it said.
        self.retry_after = retry_after


class TokenRejectedError(RetriableAPIError):
    """A 401: re-sign the token once and try again."""

    def __init__(self, message: str, response: requests.Response, hint: str | None = None) -> None:
        super().__init__(message, response)
        #: A likelier cause than the credentials (a clock far off), told if the 401 stays.
        self.hint = hint


class MalformedResponseError(RetriableAPIError):
    """A 200 whose body is not the envelope the spec documents: a failed try, not "no items"."""


class BodyTooLargeError(RetriableAPIError):
    """An answer longer than the tap reads (decompressed): a failed try, never read in full."""


class EndpointNotFoundError(UsersnapError):
    """A 404: the endpoint does not exist for this resource (e.g. a project's assignees)."""


class RequestRefusedError(UsersnapError):
    """A 403: this key (or plan) may not read that endpoint."""


class CursorRejectedError(UsersnapError):
    """A 400 to a request carrying ``after``: the item it names was likely deleted meanwhile."""


R = t.TypeVar("R")


def result_or_failure(call: t.Callable[[], R]) -> R | UsersnapError:
    """``call()``, or the failure it raised, for a request the run can do without.

    Rejected credentials are raised all the same: every other request would fail too.
    """
    try:
        return call()
    except CredentialsRejectedError:
        raise
    except UsersnapError as exc:
        return exc
