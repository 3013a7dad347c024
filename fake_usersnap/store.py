"""What the fake's parts need of the :class:`~fake_usersnap.server.FakeUsersnap` they serve.

:class:`FakeUsersnap <fake_usersnap.server.FakeUsersnap>` satisfies these Protocols; the
modules it is built from (:mod:`~fake_usersnap.data`, :mod:`~fake_usersnap.prerendered`,
:mod:`~fake_usersnap.endpoints`, :mod:`~fake_usersnap.handler`) name them instead of the
server, so imports run one way: server -> handler -> endpoints -> query -> protocol.
"""

from __future__ import annotations

import typing as t

if t.TYPE_CHECKING:
    import contextlib

    from fake_usersnap.protocol import ProjectsPaging


class Catalog(t.Protocol):
    """Where sample data goes (:meth:`SampleData.fill <fake_usersnap.data.SampleData.fill>`)."""

    def add_project(self, name: str, **fields: t.Any) -> dict[str, t.Any]:
        """Add a project with no feedback and no assignees."""
        ...

    def add_feedback(self, project_id: str, **fields: t.Any) -> dict[str, t.Any]:
        """Add one feedback item to a project."""
        ...

    def add_assignee(self, project_id: str, **fields: t.Any) -> dict[str, t.Any]:
        """Make a user assignable in a project."""
        ...


class Store(Catalog, t.Protocol):
    """The data the endpoints answer from, and the lock that guards it."""

    @property
    def lock(self) -> contextlib.AbstractContextManager[t.Any]:
        """Held while reading or changing the data below."""
        ...

    @property
    def projects(self) -> dict[str, dict[str, t.Any]]:
        """Projects by project_id, in the order they were added."""
        ...

    @property
    def feedback(self) -> dict[str, list[dict[str, t.Any]]]:
        """Each project's feedback items, by project_id."""
        ...

    @property
    def assignees(self) -> dict[str, list[dict[str, t.Any]]]:
        """Each project's assignable users, by the project's API key."""
        ...

    @property
    def projects_paging(self) -> ProjectsPaging | None:
        """How ``GET /projects`` pages where the spec is silent (None: one answer, as in it)."""
        ...

    @property
    def refused_projects(self) -> dict[str, int]:
        """Projects whose feedback routes answer this status (403 or 404), by project_id."""
        ...

    @property
    def filter_ignores_after(self) -> bool:
        """The filter endpoint answers the first page whatever ``after`` names."""
        ...

    @property
    def count_leaves_out_demo(self) -> bool:
        """The count endpoints leave out demo feedback (``is_demo``) that the lists show."""
        ...
