"""The filter endpoints' request body: ``query`` conditions and ``order_by``, as in the spec.

What a body means is decided here alone: :func:`conditions` and :func:`order` check and parse
it, :meth:`Condition.holds` compares a value with a condition, :meth:`Order.sort` sorts. The
fake's lists (:mod:`~fake_usersnap.endpoints`) and the benchmark's pre-rendered pages
(:mod:`~fake_usersnap.prerendered`, which finds the same items by binary search) both use them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import typing as t

from fake_usersnap.protocol import invalid_request, parse_filter_time, parse_iso

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
    """An item's ``created_at`` as a timestamp (a condition's value: :func:`parse_filter_time`)."""
    try:
        return parse_iso(str(value))
    except ValueError as exc:
        raise invalid_request("an item's created_at is not an ISO 8601 date-time") from exc


@dataclasses.dataclass(frozen=True)
class Condition:
    """One ``{filter_type, operator, value}`` of a body's ``query``, checked and parsed."""

    filter_type: str
    operator: str
    #: The value compared with: a timestamp for ``created_at``, an int for
    #: ``feedback_number``, else the string as sent.
    value: t.Any
    #: The condition as it was sent, for error messages.
    raw: dict[str, t.Any]

    @classmethod
    def parse(cls, condition: t.Any) -> Condition:
        """A condition of a body, else the 400 the endpoint answers."""
        raw = condition if isinstance(condition, dict) else {}
        filter_type = raw.get("filter_type")
        operator = raw.get("operator")
        value = raw.get("value")
        if filter_type not in FILTER_FIELDS or not isinstance(value, str):
            raise invalid_request(f"Unsupported filter {filter_type!r}")
        if operator not in _COMPARISONS:
            raise invalid_request(f"Unsupported operator {operator!r}")
        parsed: t.Any = value
        if filter_type == "created_at":
            parsed = parse_filter_time(value)
        elif filter_type == "feedback_number":
            parsed = int(value)
        return cls(filter_type, operator, parsed, raw)

    def holds(self, actual: t.Any) -> bool:
        """Whether the condition holds for a field's value (for created_at: a timestamp)."""
        return _COMPARISONS[self.operator](actual, self.value)

    def matches(self, item: dict[str, t.Any]) -> bool:
        """Whether the condition holds for an item."""
        actual = item.get(FILTER_FIELDS[self.filter_type])
        if self.filter_type == "created_at":
            actual = created_at_bound(actual)
        return self.holds(actual)


@dataclasses.dataclass(frozen=True)
class Order:
    """A body's ``order_by``: created_at or updated_at, ties broken by feedback_id."""

    field: str
    descending: bool

    @classmethod
    def parse(cls, order: dict[str, str]) -> Order:
        """An ``order_by`` object, else the 400 the endpoint answers."""
        field = order.get("order_by_type", "created_at")
        if field not in {"created_at", "updated_at"}:
            raise invalid_request(f"order_by_type {field!r} is not supported")
        return cls(field, descending=order.get("direction", "desc") == "desc")

    def sort(self, items: list[dict[str, t.Any]]) -> None:
        """Sort items in place."""
        field = self.field
        items.sort(key=lambda i: (parse_iso(i[field]), i["feedback_id"]), reverse=self.descending)


#: What ``GET .../feedbacks`` lists by, and the tap's edit scan asks the filter for.
NEWEST_UPDATES = Order("updated_at", descending=True)
#: The listing the tap's incremental read asks for.
OLDEST_FIRST = Order("created_at", descending=False)
#: Where a long read's slices end: the newest item first.
NEWEST_FIRST = Order("created_at", descending=True)


def conditions(body: t.Any) -> list[Condition]:
    """The body's ``query`` (the filter and its count both need a JSON object body)."""
    return [Condition.parse(c) for c in request_body(body).get("query") or []]


def order(body: t.Any) -> Order:
    """The body's ``order_by``, or the spec's default (created_at descending)."""
    return Order.parse(request_body(body).get("order_by") or DEFAULT_ORDER)


def apply_query(items: list[dict[str, t.Any]], query: list[Condition]) -> list[dict[str, t.Any]]:
    """The items every condition holds for."""
    for condition in query:
        items = [i for i in items if condition.matches(i)]
    return items


def _like(actual: str, pattern: str, *, case: bool) -> bool:
    regex = "^" + ".*".join(re.escape(part) for part in pattern.split("%")) + "$"
    return re.match(regex, actual, 0 if case else re.IGNORECASE) is not None
