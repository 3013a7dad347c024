"""The filter endpoints' request body: ``query`` conditions and ``order_by``, as in the spec."""

from __future__ import annotations

import datetime as dt
import re
import typing as t

from fake_usersnap.protocol import invalid_request, parse_iso

#: ``filter_type`` -> the item field it compares (the spec's other types are not served).
FILTER_FIELDS = {
    "created_at": "created_at",
    "state": "status_type",
    "email": "email",
    "feedback_number": "feedback_number",
    "assignee": "assignee_id",
}
#: What the spec's ``order_by`` defaults to when a body leaves it out.
DEFAULT_ORDER = {"order_by_type": "created_at", "direction": "desc"}

_COMPARISONS: dict[str, t.Callable[[t.Any, t.Any], bool]] = {
    "eq": lambda a, b: a == b,
    "neq": lambda a, b: a != b,
    "gt": lambda a, b: a is not None and a > b,
    "gte": lambda a, b: a is not None and a >= b,
    "lt": lambda a, b: a is not None and a < b,
    "lte": lambda a, b: a is not None and a <= b,
    "like": lambda a, b: a is not None and _like(a, b, case=True),
    "ilike": lambda a, b: a is not None and _like(a, b, case=False),
}


def request_body(body: t.Any) -> dict[str, t.Any]:
    """The body as a JSON object, else the 400 the endpoint answers."""
    if not isinstance(body, dict):
        raise invalid_request("Request body must be a JSON object")
    return body


def created_at_bound(value: t.Any) -> dt.datetime:
    """A ``created_at`` condition's value as a timestamp."""
    try:
        return parse_iso(str(value))
    except ValueError as exc:
        raise invalid_request("created_at filter needs an ISO 8601 date-time") from exc


def apply_query(items: list[dict[str, t.Any]], body: dict[str, t.Any]) -> list[dict[str, t.Any]]:
    """The items every condition of the body's ``query`` holds for."""
    for condition in body.get("query") or []:
        items = [i for i in items if matches(i, condition)]
    return items


def matches(item: dict[str, t.Any], condition: dict[str, t.Any]) -> bool:
    """Whether one ``{filter_type, operator, value}`` condition holds for an item."""
    filter_type = condition.get("filter_type")
    operator = condition.get("operator")
    value = condition.get("value")
    if filter_type not in FILTER_FIELDS or not isinstance(value, str):
        raise invalid_request(f"Unsupported filter {filter_type!r}")
    if operator not in _COMPARISONS:
        raise invalid_request(f"Unsupported operator {operator!r}")
    actual = item.get(FILTER_FIELDS[filter_type])
    if filter_type == "created_at":
        actual, value = created_at_bound(actual), created_at_bound(value)
    elif filter_type == "feedback_number":
        value = int(value)
    return _COMPARISONS[operator](actual, value)


def sort_items(items: list[dict[str, t.Any]], order: dict[str, str]) -> None:
    """Sort in place by ``order_by`` (created_at or updated_at), ties broken by id."""
    field = order.get("order_by_type", "created_at")
    if field not in {"created_at", "updated_at"}:
        raise invalid_request(f"order_by_type {field!r} is not supported")
    descending = order.get("direction", "desc") == "desc"
    items.sort(key=lambda i: (parse_iso(i[field]), i["feedback_id"]), reverse=descending)


def _like(actual: str, pattern: str, *, case: bool) -> bool:
    regex = "^" + ".*".join(re.escape(part) for part in pattern.split("%")) + "$"
    return re.match(regex, actual, 0 if case else re.IGNORECASE) is not None
