"""Usersnap's cursor pagination: ``data.next.after`` while ``data.has_more`` is true."""

from __future__ import annotations

import typing as t

from singer_sdk.pagination import BaseAPIPaginator

from tap_usersnap.envelope import envelope_data
from tap_usersnap.errors import PaginationError

if t.TYPE_CHECKING:
    import requests


class UsersnapCursorPaginator(BaseAPIPaginator[str | None]):
    """Reads the envelope's ``has_more`` and ``next.after`` (the last item's id).

    A cursor already seen in this partition, or ``has_more`` without a cursor, is an
    error: the first would loop forever, the second would silently drop the rest.
    """

    def __init__(self) -> None:
        super().__init__(None)
        self._seen: set[str] = set()

    def has_more(self, response: requests.Response) -> bool:
        """Trust ``data.has_more``: a full page alone does not mean there is more."""
        return bool(envelope_data(response).get("has_more"))

    def continue_if_empty(self, response: requests.Response) -> bool:
        """An empty page that says ``has_more`` must be followed, not taken as the end."""
        return self.has_more(response)

    def get_next(self, response: requests.Response) -> str | None:
        """The next ``after`` cursor; fails on a missing or repeated one."""
        cursor = (envelope_data(response).get("next") or {}).get("after")
        if not cursor:
            msg = (
                "Usersnap said has_more but gave no next.after cursor after "
                f"{self.count} page(s); stopping rather than dropping the remaining items"
            )
            raise PaginationError(msg)
        if cursor in self._seen:
            msg = (
                f"Usersnap returned cursor {cursor!r} a second time after {self.count} "
                "page(s); stopping rather than looping forever"
            )
            raise PaginationError(msg)
        self._seen.add(cursor)
        return str(cursor)
