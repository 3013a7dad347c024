"""Bodies of the filter endpoint (``POST …/feedbacks/filter`` and ``…/filter/count``).

New feedback is read oldest first from a ``created_at`` lower bound, so a bookmark can
advance page by page; the edit scan reads newest change first; counts take the same
``query`` filters.
"""

from __future__ import annotations

import typing as t

Condition = dict[str, str]

#: The edit scan's order: most recently changed first (the API cannot filter on it).
EDIT_SCAN_BODY: dict[str, t.Any] = {
    "order_by": {"order_by_type": "updated_at", "direction": "desc"}
}


def created_from(moment: str) -> Condition:
    """``created_at`` at or after ``moment``."""
    return {"filter_type": "created_at", "operator": "gte", "value": moment}


def created_before(moment: str) -> Condition:
    """``created_at`` before ``moment``."""
    return {"filter_type": "created_at", "operator": "lt", "value": moment}


def new_feedback_body(start: str | None) -> dict[str, t.Any]:
    """Feedback created at or after ``start`` (all if None), oldest first."""
    body: dict[str, t.Any] = {"order_by": {"order_by_type": "created_at", "direction": "asc"}}
    if start is not None:
        body["query"] = [created_from(start)]
    return body
