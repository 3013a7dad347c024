"""Timestamps in one UTC form, so bookmarks compare correctly as strings."""

from __future__ import annotations

import datetime as dt
import typing as t

#: The one timestamp format bookmarks and emitted records use: UTC, microseconds, ``Z``.
#: Fixed width, so bookmarks compare correctly as strings too.
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
TIMESTAMP_EXAMPLE = "2024-03-01T12:00:00.000000Z"
#: How far a timestamp from outside (an item, a bookmark) may be ahead of this machine's
#: clock before it counts as in the future (clocks differ a little).
FUTURE_TOLERANCE = dt.timedelta(minutes=5)
_CANONICAL_LENGTH = len(TIMESTAMP_EXAMPLE)


def changed_at(item: dict[str, t.Any]) -> str:
    """When an item last changed, in the bookmark format (never-edited items: created)."""
    return normalise_timestamp(str(item.get("updated_at") or item["created_at"]))


@t.overload
def normalise_timestamp(value: str) -> str: ...


@t.overload
def normalise_timestamp(value: None) -> None: ...


def normalise_timestamp(value: str | None) -> str | None:
    """Any ISO 8601 timestamp (``Z``, offsets, fewer fraction digits) as UTC ``...Z``."""
    if not value or is_canonical(value):
        return value
    return format_timestamp(parse_timestamp(value))


def parse_timestamp(value: str) -> dt.datetime:
    """An ISO 8601 timestamp as an aware datetime; naive means UTC."""
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def is_canonical(value: t.Any) -> bool:
    """Already ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (Usersnap's own form): the common fast path."""
    return (
        type(value) is str
        and len(value) == _CANONICAL_LENGTH
        and value[-1] == "Z"
        and value[19] == "."
    )


def format_timestamp(moment: dt.datetime) -> str:
    """A datetime in the bookmark format, the year in 4 digits (``strftime`` drops zeros)."""
    utc = moment.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return utc.isoformat(timespec="microseconds") + "Z"


def filter_value(value: str, *, up: bool = False) -> str:
    """A timestamp as the API's filters take it: UTC, whole seconds, ``YYYY-MM-DDTHH:MM:SSZ``.

    Rounded down to its second, or with ``up`` to the next one (unless it is whole already):
    ``gte`` on the floor and ``lt`` on the ceiling ask for at least what the exact instant
    would, and the tap drops the rest itself.
    """
    moment = parse_timestamp(value).astimezone(dt.timezone.utc)
    whole = moment.replace(microsecond=0)
    if up and whole != moment:
        whole += dt.timedelta(seconds=1)
    return whole.replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


def second_of(value: str) -> str:
    """The whole second a bookmark-format timestamp falls in, in the bookmark format."""
    return format_timestamp(parse_timestamp(filter_value(value)))


def is_timestamp(value: t.Any) -> t.TypeGuard[str]:
    """An ISO 8601 timestamp (any form :func:`parse_timestamp` reads) that UTC can hold.

    ``0001-01-01T00:00:00+01:00`` is before year 1 in UTC: no bookmark can name it.
    """
    if not isinstance(value, str):
        return False
    try:
        parse_timestamp(value).astimezone(dt.timezone.utc)
    except (ValueError, OverflowError):
        return False
    return True
