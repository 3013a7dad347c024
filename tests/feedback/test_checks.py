"""Per-item checks: what makes an item unusable, how it is named, too-deep custom data."""

from __future__ import annotations

import typing as t

import pytest

from tap_usersnap.feedback.checks import (
    MAX_CUSTOM_DATA_DEPTH,
    cut_deep_custom_data,
    unusable_reason,
)
from tap_usersnap.http.loggable import describe_item

GOOD = {"feedback_id": "f-1", "feedback_number": 7, "created_at": "2024-03-01T12:00:00.000000Z"}


def nested(depth: int) -> dict[str, t.Any]:
    value: dict[str, t.Any] = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"k": value}
    return value


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        (None, "the entry is null"),
        ([], "the entry is a list"),
        ({**GOOD, "feedback_id": None}, "it has no feedback_id"),
        ({**GOOD, "feedback_id": ""}, "it has no feedback_id"),
        ({k: v for k, v in GOOD.items() if k != "created_at"}, "its created_at is missing or null"),
        ({**GOOD, "created_at": 1700000000}, "its created_at is a int, not a timestamp"),
        (
            {**GOOD, "created_at": "yesterday"},
            "its created_at 'yesterday' is not an ISO 8601 timestamp",
        ),
    ],
)
def test_unusable_items_say_why(item: t.Any, reason: str) -> None:
    assert unusable_reason(item) == reason


@pytest.mark.parametrize(
    "created_at", ["2024-03-01T12:00:00.000000Z", "2024-03-01T14:00:00+02:00", "2024-03-01"]
)
def test_any_iso_timestamp_is_usable(created_at: str) -> None:
    assert unusable_reason({**GOOD, "created_at": created_at}) is None


def test_an_item_is_named_by_number_id_and_project_never_by_content() -> None:
    item = {**GOOD, "comment": "secret text"}
    assert describe_item(item, "p-1") == "feedback #7 (id f-1) of project p-1"
    assert describe_item(None, "p-1") == "an entry of project p-1"


@pytest.mark.parametrize(
    ("depth", "cut"),
    [(1, False), (MAX_CUSTOM_DATA_DEPTH, False), (MAX_CUSTOM_DATA_DEPTH + 1, True)],
)
def test_custom_data_deeper_than_the_limit_becomes_null(depth: int, cut: bool) -> None:
    item = {**GOOD, "custom_data": nested(depth)}
    assert cut_deep_custom_data(item) is cut
    assert (item["custom_data"] is None) is cut


def test_depth_counts_lists_too_and_thousands_of_levels_need_no_recursion() -> None:
    deep: t.Any = []
    for _ in range(10_000):
        deep = [deep]
    item = {**GOOD, "custom_data": {"a": deep}}
    assert cut_deep_custom_data(item)
    assert item["custom_data"] is None
