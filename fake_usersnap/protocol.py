"""What every answer of the fake shares: timestamps, error envelopes, keyset pagination."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import typing as t

API_PREFIX = "/v0.1"
DEFAULT_LIMIT = 50
MAX_LIMIT = 100
#: The one form of a filter value the spec shows (its only example, ``2023-03-22T00:00:00Z``):
#: UTC, whole seconds, ``Z``. Items carry microseconds; a filter value may not.
FILTER_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


@dataclasses.dataclass
class ProjectsPaging:
    """How ``GET /projects`` pages, where the spec leaves it open (``fake.projects_paging``).

    The spec's listing has ``has_more`` and ``count`` but no ``next`` and no parameters: by
    default the fake lists every project in one answer, ``has_more`` false. With this set,
    only the first ``shown`` projects are ever listed and ``has_more`` is true while others
    exist: there is no way on (``cursor="none"``: no ``next``), or a ``next`` that leads
    back to the same page (``cursor="ignored"``: the fake then takes any query parameter on
    ``/projects`` and ignores it). ``count`` is what the answer claims (None: every project).
    """

    shown: int
    cursor: t.Literal["none", "ignored"] = "none"
    count: int | None = None


def utc_iso(moment: dt.datetime) -> str:
    """Render a timestamp the way Usersnap does: UTC, microseconds, ``Z``."""
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(value: str) -> dt.datetime:
    """Parse an ISO 8601 timestamp; naive values are taken as UTC."""
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def filter_time(value: str, *, up: bool = False) -> str:
    """An item's timestamp as a filter value the API takes: UTC whole seconds.

    ``YYYY-MM-DDTHH:MM:SSZ``, its own second (``up``: the next whole second, unless it is one
    already).

    ``gte``/``lt`` the floor and ``gt``/``lte`` the ceiling keep exactly the items the
    timestamp itself would, when no two items share a second.
    """
    moment = parse_iso(value).astimezone(dt.timezone.utc)
    whole = moment.replace(microsecond=0)
    if up and whole != moment:
        whole += dt.timedelta(seconds=1)
    return whole.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_filter_time(value: str) -> dt.datetime:
    """A filter's timestamp value: whole-second UTC ``YYYY-MM-DDTHH:MM:SSZ`` only, else 400."""
    if not FILTER_TIME.match(value):
        raise invalid_parameter(
            "created_at filter needs a UTC date-time in whole seconds, YYYY-MM-DDTHH:MM:SSZ",
            value=value,
        )
    try:
        return parse_iso(value)
    except ValueError as exc:
        raise invalid_parameter("created_at filter names no such date-time", value=value) from exc


class ApiError(Exception):
    """An error the fake answers with the spec's error envelope."""

    def __init__(
        self, status: int, msg: str, errortype: str, errordata: dict | None = None
    ) -> None:
        super().__init__(msg)
        self.status = status
        self.msg = msg
        self.errortype = errortype
        self.errordata = errordata or {}

    def envelope(self) -> dict[str, t.Any]:
        """``{status: false, msg, errortype, errordata}``, as the spec's ``Error`` response."""
        return {
            "status": False,
            "msg": self.msg,
            "errortype": self.errortype,
            "errordata": self.errordata,
        }


@dataclasses.dataclass(frozen=True)
class RawJson:
    """JSON text spliced into an answer as it is, for values ``json.dumps`` cannot build.

    ``json.dumps`` recurses once per nesting level, so a value nested thousands of levels
    deep (a hostile ``custom_data``) can only be sent as text built without recursion.
    """

    text: str


def encode_json(payload: t.Any) -> bytes:
    """An answer's body, with any :class:`RawJson` value spliced in unparsed."""
    spliced: list[str] = []

    def placeholder(value: t.Any) -> str:
        if not isinstance(value, RawJson):
            msg = f"{type(value).__name__} is not JSON serializable"
            raise TypeError(msg)
        spliced.append(value.text)
        return f"\0raw-json-{len(spliced) - 1}\0"

    text = json.dumps(payload, default=placeholder)
    for number, raw in enumerate(spliced):
        text = text.replace(json.dumps(f"\0raw-json-{number}\0"), raw, 1)
    return text.encode()


def site_not_found(site_id: str) -> ApiError:
    """The spec's own example error: a project (or API key) Usersnap does not know."""
    return ApiError(400, "Site does not exist", "SITE_NOT_FOUND", {"site_id": site_id})


def invalid_request(msg: str) -> ApiError:
    """A request the fake cannot or will not answer (bad body, filter, order or limit)."""
    return ApiError(400, msg, "INVALID_REQUEST")


def invalid_cursor(after: str) -> ApiError:
    """An ``after`` cursor naming no item of the listing, e.g. one deleted since.

    The spec documents only WRONG_AUTH and SITE_NOT_FOUND; INVALID_PARAMETER is the fake's
    name for a bad parameter, its ``errordata`` keyed by the parameter as SITE_NOT_FOUND's
    is by ``site_id``.
    """
    return ApiError(400, "Invalid cursor: no such item", "INVALID_PARAMETER", {"after": after})


def invalid_parameter(msg: str, **errordata: str) -> ApiError:
    """A parameter (query or filter value) the spec does not allow, named in ``errordata``."""
    return ApiError(400, msg, "INVALID_PARAMETER", errordata)


def refuse_unknown_params(params: dict[str, str], allowed: t.Collection[str]) -> None:
    """400 for a query parameter the endpoint does not take.

    The spec declares no query parameter at all; a paged list takes the ones its ``next``
    object names (``limit``, ``after``). A strict server refuses what it does not know.
    """
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        takes = ", ".join(sorted(allowed)) or "no query parameters"
        raise invalid_parameter(
            f"Unknown query parameter {unknown[0]!r}: this endpoint takes {takes}",
            parameter=unknown[0],
        )


def parse_limit(params: dict[str, str], default: int = DEFAULT_LIMIT) -> int:
    """The ``limit`` query parameter, 1 to :data:`MAX_LIMIT`."""
    raw = params.get("limit", str(default))
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise invalid_request(f"limit must be between 1 and {MAX_LIMIT}")
    return int(raw)


def next_cursor(last_id: str | None, limit: int) -> dict[str, t.Any] | None:
    """The ``next`` object of a list envelope: resume after ``last_id`` (None: empty page)."""
    if last_id is None:
        return None
    return {"query_string": f"limit={limit}&after={last_id}", "limit": limit, "after": last_id}


def page(
    items: list[dict[str, t.Any]], key: str, id_field: str, limit: int, after: str | None
) -> dict[str, t.Any]:
    """Keyset pagination: the page starts right after the item whose id is ``after``."""
    start = 0
    if after:
        positions = [n for n, item in enumerate(items) if item[id_field] == after]
        if not positions:
            raise invalid_cursor(after)
        start = positions[0] + 1
    chosen = items[start : start + limit]
    return {
        "has_more": start + limit < len(items),
        "count": len(items),
        key: chosen,
        "next": next_cursor(chosen[-1][id_field] if chosen else None, limit),
    }


def page_bytes(
    items: t.Sequence[bytes], *, last_id: str | None, has_more: bool, count: int, limit: int
) -> bytes:
    """A feedback list envelope around items already rendered to JSON.

    For answers built without :func:`page`; ``last_id`` is the last item's ``feedback_id``,
    for the cursor.
    """
    data: dict[str, t.Any] = {
        "has_more": has_more,
        "count": count,
        "next": next_cursor(last_id, limit),
        "feedbacks": [],
    }
    envelope = json.dumps({"status": True, "data": data}).encode()
    # ``feedbacks`` is the last key: its empty list closes the envelope, ``[]}}``.
    return b"".join((envelope[:-4], b"[", b", ".join(items), b"]}}"))
