"""The base of every Usersnap stream: the SDK's hooks, answered from the run's shared objects.

A thin adapter: requests are described through the SDK's public ``get_http_request`` hook
and sent by the run's :class:`~tap_usersnap.http.client.ApiClient` (retries, checks, paging);
records go out through the SDK's record path (:class:`~tap_usersnap.sdk_private.FastRecordPath`).
"""

from __future__ import annotations

import typing as t

from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.streams import RESTStream
from singer_sdk.streams.rest import PageContext
from typing_extensions import override

from tap_usersnap.feedback.state import ACTIVE, new_version, state_version
from tap_usersnap.http.loggable import describe_request
from tap_usersnap.http.pagination import UsersnapCursorPaginator, cursor_params
from tap_usersnap.sdk_private import FastRecordPath, log_request_metric
from tap_usersnap.streams.catalog import keep_keys
from tap_usersnap.streams.metrics import RequestCounts

if t.TYPE_CHECKING:
    import requests
    from singer_sdk import Tap
    from singer_sdk.helpers.types import Context
    from singer_sdk.singerlib import Catalog

    from tap_usersnap.http.auth import UsersnapJWTAuthenticator
    from tap_usersnap.http.client import Page
    from tap_usersnap.run import Run
    from tap_usersnap.settings import Settings


class UsersnapStream(FastRecordPath, RESTStream[str | None]):
    """Shared plumbing of every Usersnap stream.

    Subclasses set ``records_key``, the list inside the envelope's ``data`` object, and
    ``id_key``, the field the API's ``after`` cursor names.
    """

    records_key: t.ClassVar[str]
    id_key: t.ClassVar[str]
    payload_as_json = True
    #: Records come straight from JSON, so their types are JSON's already; the SDK's
    #: per-property conformance walk would only cost time (a third of it, profiled).
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    def __init__(self, tap: Tap, run: Run, **kwargs: t.Any) -> None:
        #: What the streams of this run share: settings, client, report, listing.
        self.run = run
        super().__init__(tap, **kwargs)
        #: The SDK's ``http_request_count``, per context.
        self.request_counts = RequestCounts(self.get_http_request_counter)

    @property
    def settings(self) -> Settings:
        """The run's settings, typed."""
        return self.run.settings

    @property
    @override
    def url_base(self) -> str:
        """The API root from the ``api_url`` setting."""
        return self.settings.api_url

    @property
    @override
    def requests_session(self) -> requests.Session:
        """This thread's session of the run's client."""
        return self.run.client.session()

    @property
    @override
    def http_headers(self) -> dict[str, t.Any]:
        """The SDK's headers (``User-Agent``), and ``Accept: application/json``."""
        return {**super().http_headers, "Accept": "application/json"}

    @property
    @override
    def authenticator(self) -> UsersnapJWTAuthenticator:
        """The run's authenticator, so every stream shares the cached token."""
        return self.run.authenticator

    @property
    @override
    def emit_activate_version_messages(self) -> bool:
        """False, whatever the setting: the SDK's would go out before the records.

        The tap sends ACTIVATE_VERSION itself, after a complete read (``reconciliation``).
        """
        return False

    def version_full_table(self) -> None:
        """With ``capture_deletes``, RECORDs carry a new table version, later than the last."""
        if self.settings.capture_deletes and self.record_version is None:
            active = state_version(self.stream_state.get(ACTIVE))
            self.use_table_version(new_version(self.run.table_version, active))

    def activate_version(self) -> None:
        """ACTIVATE_VERSION for the records of this run, after them all.

        The version becomes the stream's active one in state.
        """
        version = self.record_version
        if version is None or not self.selected:
            return
        self.write_activate_version(version)
        self.stream_state[ACTIVE] = version

    def write_state(self) -> None:
        """Write a STATE message with the tap's whole state."""
        self.run.write_state()

    @classmethod
    def keep_keys(cls, catalog: Catalog) -> None:
        """Make the stream's catalog entry name its keys and always select them."""
        keys = list(t.cast("t.Sequence[str]", cls.primary_keys))
        name = cls.name  # type: ignore[misc]  # a class attribute in every Usersnap stream
        keep_keys(catalog, name, keys, t.cast("str | None", cls.replication_key))

    @override
    def generate_child_contexts(
        self,
        record: dict[str, t.Any],
        context: Context | None,
    ) -> t.Iterable[Context | None]:
        """None: no Usersnap stream has child streams (the SDK would copy every record)."""
        return ()

    @override
    def get_new_paginator(self) -> UsersnapCursorPaginator:
        """Follow ``data.next.after`` (or the last item's id) while ``data.has_more``."""
        return UsersnapCursorPaginator(self.records_key, self.id_key)

    @override
    def get_url_params(
        self,
        context: Context | None,
        next_page_token: str | None,
    ) -> dict[str, t.Any]:
        """The cursor parameters: ``limit`` always, ``after`` from the second page on."""
        return cursor_params(self.settings.page_size, next_page_token)

    def prepared(self, page: PageContext[str | None]) -> requests.PreparedRequest:
        """The request ``get_http_request`` describes for ``page``, ready to send."""
        request = self.get_http_request(page=page)
        return self.build_prepared_request(
            method=request.method,
            url=request.url,
            params=request.encode_params(),
            headers=request.headers,
            json=request.data,
        )

    def read_pages(
        self,
        context: Context | None,
        page: t.Callable[[str | None], PageContext[str | None]] | None = None,
    ) -> t.Iterator[Page]:
        """Every page of the stream's endpoint for ``context`` (``page``: each page's context)."""
        page_of = page or (lambda token: PageContext(context, token))
        return self.run.client.pages(
            lambda token: self.prepared(page_of(token)),
            self.get_new_paginator(),
            self.records_key,
            observe=self.observer(context),
        )

    def observer(self, context: Context | None) -> t.Callable[[requests.Response], None]:
        """What every answer for ``context`` is logged as: the SDK's request metrics."""

        def observe(response: requests.Response) -> None:
            log_request_metric(self, response, context)
            self.request_counts.increment(context)

        return observe

    def read_records(self, context: Context | None) -> t.Iterator[dict[str, t.Any]]:
        """The items of every page; an entry that is not an object is skipped and reported."""
        for page in self.read_pages(context):
            for item in page.items:
                if isinstance(item, dict):
                    yield item
                else:
                    where = f"an entry of {describe_request(page.response)}"
                    self.run.report.skipped_item(where, f"it is not an object ({item!r:.20})")
