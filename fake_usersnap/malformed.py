"""Ready-made rewrites for ``mangle`` faults: the malformed answers a broken API could send.

Each function returns a :data:`~fake_usersnap.faults.Transform` for
:meth:`FakeUsersnap.inject <fake_usersnap.server.FakeUsersnap.inject>`, e.g. the first
item of the second filter page with ``created_at: null``::

    fake.inject("mangle", match=r"POST .*/filter$", skip=1, transform=created_at_null())

Item rewrites change the page's item ``index`` (0: the first) and leave a page without
that item as it is; envelope rewrites work on any listing (feedback or projects) unless
they name ``feedbacks``. The spec says every item has a ``feedback_id`` and a date-time
``created_at``, and ``data`` holds ``has_more``, ``count``, the list and ``next``: these
break exactly one of those promises each.
"""

from __future__ import annotations

import typing as t

from fake_usersnap.protocol import RawJson

if t.TYPE_CHECKING:
    from fake_usersnap.faults import RecordedRequest, Transform

Envelope = dict[str, t.Any]


def _on_item(change: t.Callable[[dict[str, t.Any]], None], index: int) -> Transform:
    """A transform applying ``change`` to item ``index`` of the page, if there is one."""

    def transform(envelope: Envelope, request: RecordedRequest) -> Envelope:
        items = envelope["data"]["feedbacks"]
        if index < len(items):
            change(items[index])
        return envelope

    return transform


def _on_data(change: t.Callable[[Envelope], None]) -> Transform:
    """A transform applying ``change`` to the envelope (``data`` is there: it succeeded)."""

    def transform(envelope: Envelope, request: RecordedRequest) -> Envelope:
        change(envelope)
        return envelope

    return transform


def item_field(field: str, value: t.Any, index: int = 0) -> Transform:
    """Item ``index`` with ``field`` set to ``value``."""
    return _on_item(lambda item: item.__setitem__(field, value), index)


def item_without(field: str, index: int = 0) -> Transform:
    """Item ``index`` without ``field`` at all."""
    return _on_item(lambda item: item.pop(field, None), index)


def created_at_null(index: int = 0) -> Transform:
    """``created_at: null``: the tap's bookmark field, present but empty."""
    return item_field("created_at", None, index)


def created_at_missing(index: int = 0) -> Transform:
    """No ``created_at`` key in the item."""
    return item_without("created_at", index)


def created_at_unparseable(text: str = "yesterday", index: int = 0) -> Transform:
    """``created_at`` a string that is no date-time."""
    return item_field("created_at", text, index)


def without_feedback_id(index: int = 0) -> Transform:
    """An item without its key: nothing to deduplicate or resume on."""
    return item_without("feedback_id", index)


def null_item(at: int = 0) -> Transform:
    """A ``null`` inserted into ``feedbacks`` at position ``at``; the real items all stay."""
    return _on_data(lambda envelope: envelope["data"]["feedbacks"].insert(at, None))


def nested_json(depth: int) -> str:
    """``depth`` JSON objects nested one in another, built as text (no recursion)."""
    return '{"nested": ' * (depth - 1) + "{}" + "}" * (depth - 1)


def deep_custom_data(depth: int = 5000, index: int = 0) -> Transform:
    """Item ``index`` with ``custom_data`` nested ``depth`` levels deep (see :func:`nested_json`).

    A parser that recurses once per level (``json.loads`` does) fails on it; the fake
    sends it as :class:`~fake_usersnap.protocol.RawJson`, so it never parses or builds it.
    """
    return item_field("custom_data", RawJson(nested_json(depth)), index)


def data_null() -> Transform:
    """``{"status": true, "data": null}``."""
    return _on_data(lambda envelope: envelope.__setitem__("data", None))


def data_missing() -> Transform:
    """``{"status": true}``: no ``data`` at all."""
    return _on_data(lambda envelope: envelope.pop("data"))


def feedbacks_null() -> Transform:
    """``feedbacks: null``, the rest of ``data`` (``has_more``, ``next``) as it was."""
    return _on_data(lambda envelope: envelope["data"].__setitem__("feedbacks", None))


def feedbacks_not_a_list(value: t.Any = None) -> Transform:
    """``feedbacks`` another JSON type: by default the items as an object keyed by id.

    An object and a string are iterable in Python, so code that only loops over
    ``feedbacks`` gets keys or characters instead of items.
    """

    def change(envelope: Envelope) -> None:
        items = envelope["data"]["feedbacks"]
        keyed = {item["feedback_id"]: item for item in items}
        envelope["data"]["feedbacks"] = keyed if value is None else value

    return _on_data(change)


def has_more_without_next(*, null: bool = False) -> Transform:
    """``has_more: true`` and no ``next`` key (``next: null`` with ``null``): any listing."""

    def change(envelope: Envelope) -> None:
        envelope["data"]["has_more"] = True
        if null:
            envelope["data"]["next"] = None
        else:
            envelope["data"].pop("next", None)

    return _on_data(change)


def project_without_id(index: int = 0) -> Transform:
    """Project ``index`` of a ``GET /projects`` page without its ``project_id``."""

    def change(envelope: Envelope) -> None:
        projects = envelope["data"]["projects"]
        if index < len(projects):
            projects[index].pop("project_id", None)

    return _on_data(change)
