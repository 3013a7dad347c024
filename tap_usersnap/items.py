"""Checks on each feedback item from the API, so one bad item never costs the others.

An item that cannot be keyed (no ``feedback_id``) or bookmarked (no usable ``created_at``)
is skipped, loudly: one WARNING naming its project and number, and a count in the run's
summary. A ``custom_data`` value nested deeper than any target could store (website
visitors write it) is replaced by ``null`` the same way; the item itself is kept.
"""

from __future__ import annotations

import typing as t

from tap_usersnap.timestamps import is_canonical, is_timestamp

#: ``custom_data`` nested deeper than this is replaced by ``null`` (jsonb and the targets'
#: JSON decoders stop far below the thousands a hostile visitor can send).
MAX_CUSTOM_DATA_DEPTH = 64
#: Longest part of a bad value quoted in a warning.
MAX_QUOTED = 40


def unusable_reason(item: t.Any) -> str | None:
    """Why an item can be neither keyed nor bookmarked; ``None`` when it is fine."""
    if not isinstance(item, dict):
        return f"the entry is {'null' if item is None else 'a ' + type(item).__name__}"
    feedback_id = item.get("feedback_id")
    if not isinstance(feedback_id, str) or not feedback_id:
        return "it has no feedback_id"
    created_at = item.get("created_at")
    if not isinstance(created_at, str):
        if created_at is None:
            return "its created_at is missing or null"
        return f"its created_at is a {type(created_at).__name__}, not a timestamp"
    if is_canonical(created_at) or is_timestamp(created_at):  # Usersnap's own form: the usual case
        return None
    return f"its created_at {created_at[:MAX_QUOTED]!r} is not an ISO 8601 timestamp"


def describe_item(item: t.Any, project_id: str) -> str:
    """``feedback #12 (id …) of project …``: what names an item without its content."""
    if not isinstance(item, dict):
        return f"an entry of project {project_id}"
    parts = []
    if isinstance(item.get("feedback_number"), int | str):
        parts.append(f"#{item['feedback_number']}")
    if isinstance(item.get("feedback_id"), str) and item["feedback_id"]:
        parts.append(f"(id {item['feedback_id'][:MAX_QUOTED]})")
    return " ".join(["feedback", *parts, "of project", project_id])


def cut_deep_custom_data(item: dict[str, t.Any]) -> bool:
    """Replace a too-deep ``custom_data`` by ``None``; True if it did."""
    value = item.get("custom_data")
    if not isinstance(value, dict | list) or not _too_deep(value):
        return False
    item["custom_data"] = None
    return True


def _too_deep(value: dict[str, t.Any] | list[t.Any]) -> bool:
    """Nested deeper than :data:`MAX_CUSTOM_DATA_DEPTH`, without recursion.

    A value cut while decoding (:data:`~tap_usersnap.envelope.TOO_DEEP`) sits deeper still.
    Runs for every item: a flat value (the usual custom data) costs one pass.
    """
    level: list[t.Any] = [value]
    for _ in range(MAX_CUSTOM_DATA_DEPTH):
        level = [
            child
            for current in level
            for child in (current.values() if type(current) is dict else current)
            if type(child) in _CONTAINERS
        ]
        if not level:
            return False
    return True


_CONTAINERS = (dict, list)
