"""Malformed items: an item without a key or bookmark, null entries in the list, and
custom data nested thousands deep; each is named, counted and skipped or mended.

Scenarios count in the reliability figures (group "bad input").
"""

from __future__ import annotations

import json
import logging
import typing as t

import pytest

from harness.expect import assert_every_record_validates, messages_at, oldest_first, summary_line
from harness.reliability import (
    BAD_INPUT,
    PAGE_SIZE,
    SEQUENTIAL,
    FaultScenario,
)
from harness.singer_run import SyncResult, bookmarks, run_sync

if t.TYPE_CHECKING:
    from fake_usersnap import FakeUsersnap, RecordedRequest


FOREVER = 10**6

Corruption = t.Callable[[dict[str, t.Any], int], "dict[str, t.Any] | bytes"]
DEEP_PLACEHOLDER = "deep custom_data goes here"
DEEP_LEVELS = 5000


def set_field(name: str, value: t.Any) -> Corruption:
    def corrupt(envelope: dict[str, t.Any], index: int) -> dict[str, t.Any]:
        envelope["data"]["feedbacks"][index][name] = value
        return envelope

    return corrupt


def drop_field(name: str) -> Corruption:
    def corrupt(envelope: dict[str, t.Any], index: int) -> dict[str, t.Any]:
        del envelope["data"]["feedbacks"][index][name]
        return envelope

    return corrupt


def null_entry_before(envelope: dict[str, t.Any], index: int) -> dict[str, t.Any]:
    envelope["data"]["feedbacks"].insert(index, None)
    return envelope


def deep_custom_data(envelope: dict[str, t.Any], index: int) -> bytes:
    """The page as bytes, the item's custom_data nested thousands of objects deep."""
    envelope["data"]["feedbacks"][index]["custom_data"] = DEEP_PLACEHOLDER
    deep = '{"k": ' * DEEP_LEVELS + "1" + "}" * DEEP_LEVELS
    return json.dumps(envelope).replace(json.dumps(DEEP_PLACEHOLDER), deep).encode()


def corrupting(target_id: str, corrupt: Corruption) -> t.Callable[..., t.Any]:
    """A ``mangle`` transform that corrupts the target item on any page that holds it."""

    def transform(envelope: dict[str, t.Any], request: RecordedRequest) -> dict | bytes:
        for index, item in enumerate(envelope["data"]["feedbacks"]):
            if item["feedback_id"] == target_id:
                return corrupt(envelope, index)
        return envelope

    return transform


SKIPPED_ITEMS = [
    pytest.param(
        "created_at null",
        set_field("created_at", None),
        "its created_at is missing or null",
        id="created_at null",
    ),
    pytest.param(
        "created_at missing",
        drop_field("created_at"),
        "its created_at is missing or null",
        id="created_at missing",
    ),
    pytest.param(
        'created_at "yesterday"',
        set_field("created_at", "yesterday"),
        "its created_at 'yesterday' is not an ISO 8601 timestamp",
        id="created_at unparseable",
    ),
    pytest.param(
        "created_at on 30 February, in the API's own form",
        set_field("created_at", "2024-02-30T10:00:00.000000Z"),
        "its created_at '2024-02-30T10:00:00.000000Z' is not an ISO 8601 timestamp",
        id="created_at no day",
    ),
    pytest.param(
        "created_at with an offset, the length of the API's own form",
        set_field("created_at", "2024-01-01T10:00:00.0+0100Z"),
        "its created_at '2024-01-01T10:00:00.0+0100Z' is not an ISO 8601 timestamp",
        id="created_at offset in the API's form",
    ),
    pytest.param(
        "created_at a number",
        set_field("created_at", 1704067200),
        "its created_at is a int, not a timestamp",
        id="created_at a number",
    ),
    pytest.param(
        "no feedback_id", drop_field("feedback_id"), "it has no feedback_id", id="no feedback_id"
    ),
]
#: Where the bad item sits in the first project: mid-page (items after it on its page and
#: later pages), or newest (at every later run's bookmark, so every later run meets it).
POSITIONS = {"mid-page": PAGE_SIZE + 1, "newest": -1}


def corrupted_at(
    fake: FakeUsersnap, position: str, corrupt: Corruption
) -> tuple[str, list[dict[str, t.Any]], dict[str, t.Any]]:
    """The first project, its items oldest first, and its item at ``position``.

    That item is corrupted on every page that holds it, for the whole scenario.
    """
    project_id = next(iter(fake.projects))
    items = oldest_first(fake, project_id)
    target = items[POSITIONS[position]]
    fake.inject(
        "mangle",
        match=f"POST /projects/{project_id}/feedbacks/filter$",
        times=FOREVER,
        transform=corrupting(target["feedback_id"], corrupt),
    )
    return project_id, items, target


def second_run(scenario: FaultScenario, state: dict[str, t.Any]) -> SyncResult:
    """A run from ``state`` with the same settings and faults; its logs only."""
    scenario.caplog.clear()
    return run_sync(scenario.fake.config(**SEQUENTIAL), state, check=False)


@pytest.mark.parametrize("position", list(POSITIONS))
@pytest.mark.parametrize(("name", "corrupt", "reason"), SKIPPED_ITEMS)
def test_an_item_without_a_key_or_bookmark_is_skipped_by_name(
    scenario: FaultScenario, name: str, corrupt: Corruption, reason: str, position: str
) -> None:
    fake = scenario.fake
    project_id, items, bad = corrupted_at(fake, position, corrupt)
    others = fake.all_feedback_ids() - {bad["feedback_id"]}

    played = scenario.play(f"an item with {name}, {position}", group=BAD_INPUT, expected=others)

    assert sorted(played.first.ids()) == sorted(others)
    named = f"#{bad['feedback_number']}"
    if reason != "it has no feedback_id":
        named += f" (id {bad['feedback_id']})"
    warnings = messages_at(scenario.caplog, logging.WARNING)
    expected = [f"Skipped feedback {named} of project {project_id}: {reason}"]
    if reason != "it has no feedback_id":  # Usersnap has it: the first read retires no row
        expected.append(
            "Deletions not applied to feedback, every row stays and the next run tries again: "
            f"feedback {bad['feedback_id']} of project {project_id} could not be read (skipped "
            "above); the first read ends without retiring a row, and the next sweep is due in "
            "sweep_days"
        )
    expected.append(summary_line(skipped=1, altered=0, refused=0))
    if reason != "it has no feedback_id":
        expected.append(
            "Run summary: deletions held back for feedback (a warning above says why); "
            "nothing was removed from them"
        )
    assert warnings == expected
    delivered = [i["created_at"] for i in items if i["feedback_id"] != bad["feedback_id"]]
    # A skipped item with a usable created_at counts like a delivered one (the API counts it
    # too, see the deletes check); the next run, from that instant, meets it again.
    usable = [bad["created_at"]] if reason == "it has no feedback_id" else []
    first_bookmarks = bookmarks(played.first.final_state)
    assert first_bookmarks[project_id] == max(delivered + usable)

    again = second_run(scenario, played.first.final_state)

    assert again.error is None
    assert bad["feedback_id"] not in again.ids()
    assert bookmarks(again.final_state) == first_bookmarks
    skipped_again = [m for m in messages_at(scenario.caplog, logging.WARNING) if "Skipped" in m]
    assert len(skipped_again) == (1 if position == "newest" else 0)


@pytest.mark.parametrize("position", list(POSITIONS))
def test_a_null_entry_in_the_list_is_skipped(scenario: FaultScenario, position: str) -> None:
    fake = scenario.fake
    project_id, _, _ = corrupted_at(fake, position, null_entry_before)

    played = scenario.play(f"a null entry in the list, {position}", group=BAD_INPUT)

    assert sorted(played.first.ids()) == sorted(fake.all_feedback_ids())
    assert messages_at(scenario.caplog, logging.WARNING) == [
        f"Skipped an entry of project {project_id}: the entry is null",
        summary_line(skipped=1, altered=0, refused=0),
    ]
    again = second_run(scenario, played.first.final_state)
    assert again.error is None
    assert bookmarks(again.final_state) == bookmarks(played.first.final_state)


@pytest.mark.parametrize("position", list(POSITIONS))
def test_custom_data_nested_thousands_deep_is_emitted_as_null(
    scenario: FaultScenario, position: str
) -> None:
    fake = scenario.fake
    project_id, items, deep = corrupted_at(fake, position, deep_custom_data)

    played = scenario.play(
        f"custom_data nested {DEEP_LEVELS} levels deep, {position}", group=BAD_INPUT
    )

    records = {r["feedback_id"]: r for r in played.first.records("feedback")}
    assert sorted(records) == sorted(fake.all_feedback_ids())
    assert records[deep["feedback_id"]]["custom_data"] is None
    assert records[deep["feedback_id"]]["ordered_inputs"] == deep["ordered_inputs"]
    untouched = [i for i in items if i["feedback_id"] != deep["feedback_id"]]
    assert all(records[i["feedback_id"]]["custom_data"] == i["custom_data"] for i in untouched)
    assert messages_at(scenario.caplog, logging.WARNING) == [
        f"Usersnap answered POST /v0.1/projects/{project_id}/feedbacks/filter with values "
        "nested deeper than 96 levels: each was replaced by "
        "'[removed by tap-usersnap: nested too deep to store]'",
        f"Changed feedback #{deep['feedback_number']} (id {deep['feedback_id']}) of project "
        f"{project_id}: its custom_data is nested too deep for any target to store; "
        "emitted as null",
        summary_line(skipped=0, altered=1, refused=0),
    ]
    assert bookmarks(played.first.final_state)[project_id] == items[-1]["created_at"]

    again = second_run(scenario, played.first.final_state)

    assert again.error is None
    assert again.ids() == [items[-1]["feedback_id"]] + [
        oldest_first(fake, pid)[-1]["feedback_id"] for pid in list(fake.projects)[1:]
    ]
    if position == "newest":
        assert again.records("feedback")[0]["custom_data"] is None


NUMBER_PAST_BIGINT = "its feedback_number is beyond a 64-bit integer: emitted as null"
OTHER_PROJECT = "its project_id is another project's: emitted as the project it was read from"


@pytest.mark.parametrize(
    "case",
    [
        (
            "updated_at",
            "2024-02-30T10:00:00.000000Z",
            None,
            "its updated_at is not a timestamp; emitted as null",
        ),
        ("feedback_number", 10**30, None, NUMBER_PAST_BIGINT),
        ("project_id", None, "PROJECT", None),
        ("project_id", "another-project", "PROJECT", OTHER_PROJECT),
    ],
    ids=["updated_at no day", "feedback_number past bigint", "project_id null", "project_id other"],
)
def test_a_value_no_warehouse_could_store_is_mended_by_name(
    empty_fake: FakeUsersnap,
    caplog: pytest.LogCaptureFixture,
    case: tuple[str, t.Any, t.Any, str | None],
) -> None:
    field, value, emitted, change = case
    fake = empty_fake
    project_id = fake.add_project("Web shop")["project_id"]
    items = [fake.add_feedback(project_id) for _ in range(3)]
    fake.inject(
        "mangle",
        match=f"POST /projects/{project_id}/feedbacks/filter$",
        times=FOREVER,
        transform=corrupting(items[1]["feedback_id"], set_field(field, value)),
    )

    with caplog.at_level(logging.WARNING):
        first = run_sync(fake.config())
    second = run_sync(fake.config(), first.final_state)

    assert first.ids() == [i["feedback_id"] for i in items]
    record = first.records("feedback")[1]
    assert record[field] == (project_id if emitted == "PROJECT" else emitted)
    assert_every_record_validates(first)
    changes = [m for m in messages_at(caplog, logging.WARNING) if m.startswith("Changed")]
    number = f"#{record['feedback_number']} " if record["feedback_number"] is not None else ""
    named = f"Changed feedback {number}(id {items[1]['feedback_id']})"
    assert changes == ([f"{named} of project {project_id}: {change}"] if change else [])
    assert second.error is None  # no bookmark or edit mark was made of the bad value


@pytest.mark.parametrize(
    ("bad_id", "reason"),
    [
        ("x" * 1001, "its feedback_id is 1001 characters long, more than a key column holds"),
        ("{other}\x00", "its feedback_id holds a NUL character or a lone surrogate"),
    ],
    ids=["too long for a key column", "another's id once cleaned"],
)
def test_an_id_no_key_column_can_hold_is_skipped_and_takes_no_other_items_place(
    fake: FakeUsersnap, caplog: pytest.LogCaptureFixture, bad_id: str, reason: str
) -> None:
    """PostgreSQL indexes about 2,700 bytes of a key; a NUL removed could make a twin."""
    project_id = next(iter(fake.projects))
    items = oldest_first(fake, project_id)
    target, other = items[1], items[2]
    bad = bad_id.format(other=other["feedback_id"])
    fake.inject(
        "mangle",
        match=f"POST /projects/{project_id}/feedbacks/filter$",
        times=FOREVER,
        transform=corrupting(target["feedback_id"], set_field("feedback_id", bad)),
    )

    with caplog.at_level(logging.WARNING):
        result = run_sync(fake.config(**SEQUENTIAL), check=False)

    assert result.error is None
    records = {r["feedback_id"]: r for r in result.records("feedback")}
    assert sorted(records) == sorted(fake.all_feedback_ids() - {target["feedback_id"]})
    assert records[other["feedback_id"]]["feedback_number"] == other["feedback_number"]
    skipped = [w for w in messages_at(caplog, logging.WARNING) if w.startswith("Skipped")]
    assert len(skipped) == 1
    assert skipped[0].endswith(reason)
    assert len(skipped[0]) < 300


@pytest.mark.parametrize("said", ["false", "no", " False "])
def test_has_more_as_text_that_says_no_ends_the_read(fake: FakeUsersnap, said: str) -> None:
    """``bool("false")`` is true: read so, the last page would ask for a page after it."""

    def text(envelope: dict[str, t.Any], request: RecordedRequest) -> dict[str, t.Any]:
        if not envelope["data"]["has_more"]:
            envelope["data"]["has_more"] = said
        return envelope

    fake.inject("mangle", match=r"POST .*/feedbacks/filter$", times=FOREVER, transform=text)

    result = run_sync(fake.config(**SEQUENTIAL), check=False)

    assert result.error is None
    assert sorted(result.ids()) == sorted(fake.all_feedback_ids())


@pytest.mark.parametrize(
    ("raw", "said"),
    [("7" * 5000, "an integer of 5000 digits"), ("1e400", "the number 1e400"), ("NaN", "NaN")],
    ids=["more digits than Python reads", "beyond a double", "NaN"],
)
def test_a_number_no_target_stores_is_kept_as_text_or_nulled_in_a_column_by_name(
    fake: FakeUsersnap, caplog: pytest.LogCaptureFixture, raw: str, said: str
) -> None:
    """The page must not be lost for one visitor's number, nor the number nulled unseen."""
    project_id = next(iter(fake.projects))
    target = oldest_first(fake, project_id)[1]

    def odd(envelope: dict[str, t.Any], index: int) -> bytes:
        item = envelope["data"]["feedbacks"][index]
        item["custom_data"], item["client"] = {"n": "RAW"}, {"screen_width": "RAW"}
        return json.dumps(envelope).replace('"RAW"', raw).encode()

    fake.inject(
        "mangle",
        match=f"POST /projects/{project_id}/feedbacks/filter$",
        times=FOREVER,
        transform=corrupting(target["feedback_id"], odd),
    )

    with caplog.at_level(logging.WARNING):
        result = run_sync(fake.config(**SEQUENTIAL), check=False)

    assert result.error is None
    records = {r["feedback_id"]: r for r in result.records("feedback")}
    assert sorted(records) == sorted(fake.all_feedback_ids())
    assert records[target["feedback_id"]]["custom_data"] == {"n": raw}
    assert records[target["feedback_id"]]["client"]["screen_width"] is None
    warnings = messages_at(caplog, logging.WARNING)
    assert sum(f"with {said}: kept as its text" in w for w in warnings) == 2
    assert any(
        "its client.screen_width was a str, not integer or null: emitted as null" in w
        for w in warnings
    )
    assert_every_record_validates(result)


FORGED = "\n2026-01-01 00:00:00,000 | INFO     | tap-usersnap | Run completed fine"


def test_a_line_break_in_an_id_or_an_error_never_forges_a_log_line(
    fake: FakeUsersnap, caplog: pytest.LogCaptureFixture
) -> None:
    """No Usersnap id holds a control character: such an item is skipped by name, and an
    error's text is quoted on one line."""
    project_id = next(iter(fake.projects))
    bad = oldest_first(fake, project_id)[3]
    fake.inject(
        "mangle",
        match=f"POST /projects/{project_id}/feedbacks/filter$",
        times=FOREVER,
        transform=corrupting(bad["feedback_id"], set_field("feedback_id", "abc" + FORGED)),
    )
    with caplog.at_level(logging.WARNING):
        first = run_sync(fake.config(), check=False)

    assert bad["feedback_id"] not in first.ids()
    skipped = [m for m in messages_at(caplog, logging.WARNING) if m.startswith("Skipped")]
    assert skipped == [
        f"Skipped feedback #{bad['feedback_number']} (id abc {FORGED[1:37]}) of project "
        f"{project_id}: its feedback_id holds a control character (a line break, say)"
    ]

    caplog.clear()
    body = {"status": False, "msg": "first" + FORGED, "errortype": "BAD\nREQUEST"}
    fake.inject("status", status=400, body=json.dumps(body).encode(), match="GET /projects$")
    with caplog.at_level(logging.WARNING):
        failed = run_sync(fake.config(), check=False)

    assert failed.error is not None
    assert "\n" not in str(failed.error)
    assert f"(400 BAD REQUEST: first {FORGED[1:]})" in str(failed.error)
    assert not [r for r in caplog.records if "\n" in r.getMessage()]
