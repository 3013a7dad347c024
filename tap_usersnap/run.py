"""What one run shares, made once: the tap makes one :class:`Run`; every stream is given it.

The settings, the JWT, the API client (and its retries), the report, the table version and
the project listing.
"""

from __future__ import annotations

import functools
import logging
import time
import typing as t

from tap_usersnap.feedback.report import RunReport
from tap_usersnap.http.auth import UsersnapJWTAuthenticator
from tap_usersnap.http.client import ApiClient
from tap_usersnap.http.errors import CredentialsRejectedError
from tap_usersnap.http.retry import Clock, Retrier, RetryPolicy

if t.TYPE_CHECKING:
    from tap_usersnap.settings import Settings


class ProjectListing:
    """The projects in scope, listed once per run (``GET /projects``), for every stream.

    ``fetch`` returns the projects listed and whether the listing was read to its end.
    """

    def __init__(
        self, fetch: t.Callable[[], tuple[list[dict[str, t.Any]], bool]], wanted: t.Sequence[str]
    ) -> None:
        self._fetch = fetch
        self._wanted = set(wanted)
        self._projects: list[dict[str, t.Any]] | None = None
        self._complete = True

    def projects(self) -> list[dict[str, t.Any]]:
        """The listed projects in scope (``project_ids``, if set)."""
        if self._projects is None:
            projects, self._complete = self._fetch()
            if self._wanted:
                projects = [p for p in projects if p.get("project_id") in self._wanted]
            self._projects = projects
        return self._projects

    @property
    def complete(self) -> bool:
        """False when the listing stopped early: a project missing from it may exist."""
        self.projects()
        return self._complete

    def ids(self) -> set[str]:
        """The ids of the listed projects in scope."""
        return {p["project_id"] for p in self.projects()}

    def names(self) -> dict[str | None, str | None]:
        """Each listed project's name."""
        return {p.get("project_id"): p.get("name") for p in self.projects()}


class Run:
    """One run's shared objects, each made once, safe to use from the read-ahead threads."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock,
        retry_policy: RetryPolicy,
        logger: logging.Logger,
        write_state: t.Callable[[], None],
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._retry_policy = retry_policy
        self._logger = logger
        #: Write a STATE message with the tap's whole state.
        self.write_state = write_state
        #: Set by the tap once the projects stream exists.
        self.listing = ProjectListing(lambda: ([], True), ())

    @functools.cached_property
    def authenticator(self) -> UsersnapJWTAuthenticator:
        """The run's one authenticator, so every request shares the cached token."""
        return UsersnapJWTAuthenticator(self.settings.jwt_id, self.settings.jwt_secret)

    @functools.cached_property
    def client(self) -> ApiClient:
        """What every request goes through: one 429 pauses every request, in every thread."""
        retrier = Retrier(
            policy=self._retry_policy,
            clock=self._clock,
            logger=self._logger,
            on_token_rejected=self.authenticator.invalidate,
            credentials_error=self._credentials_rejected,
        )
        return ApiClient(
            api_url=self.settings.api_url,
            request_timeout=self.settings.request_timeout,
            authenticator=self.authenticator,
            retrier=retrier,
            concurrency=self.settings.concurrency,
        )

    @functools.cached_property
    def report(self) -> RunReport:
        """What the run skipped or changed, and the summary at its end."""
        return RunReport(self._logger)

    @functools.cached_property
    def table_version(self) -> int:
        """The table version of this run's full-table records (milliseconds since 1970)."""
        return int(time.time() * 1000)  # wall clock: versions must grow from run to run

    def _credentials_rejected(self) -> CredentialsRejectedError:
        return CredentialsRejectedError(
            f"Usersnap rejected the credentials (401) of JWT ID {self.settings.jwt_id!r}: "
            "check the jwt_id and jwt_secret settings; the API key may have been deleted "
            "or rotated in Usersnap (Settings > API)"
        )
