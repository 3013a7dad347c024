"""Hostile input: hand-written catalogs, malformed items and pages, odd state and settings,
slow bodies, signals, refused endpoints and unreachable hosts.

Each test asserts what was delivered (ids, bookmarks) and what was said (exact log lines);
scenarios played through the ``scenario`` fixture also count in the reliability figures
(group "bad input" for malformed items, pages and state).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import typing as t
from pathlib import Path

import pytest
from singer_sdk.exceptions import ConfigValidationError

from harness.reliability import (
    BAD_INPUT,
    PAGE_SIZE,
    SEQUENTIAL,
    FaultScenario,
    item_index,
    unsafe_states,
)
from harness.singer_run import SyncResult, bookmarks, parse_messages, run_cli, run_sync
from tap_usersnap.feedback.state import StateError
from tap_usersnap.http.retry import RetryPolicy
from tap_usersnap.records.timestamps import format_timestamp
from tap_usersnap.tap import TapUsersnap

if t.TYPE_CHECKING:
    from fake_usersnap import FakeUsersnap, RecordedRequest

FILTER = r"POST .*/filter$"
FOREVER = 10**6
POLICY = RetryPolicy()
NETWORK = "server errors and network"
TAP = str(Path(sys.executable).with_name("tap-usersnap"))


def oldest_first(fake: FakeUsersnap, project_id: str) -> list[dict[str, t.Any]]:
    """A project's feedback in the order the tap reads it."""
    return sorted(fake.feedback[project_id], key=lambda i: (i["created_at"], i["feedback_id"]))


def messages_at(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == level]


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "| ERROR" in line]


def summary_line(skipped: int, altered: int, refused: int) -> str:
    return (
        f"Run summary: {skipped} feedback item(s) skipped (no feedback_id or no usable "
        f"created_at), {altered} emitted with a value replaced, {refused} endpoint(s) "
        "refused; each is named in a warning above"
    )


@pytest.fixture
def quick_retries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """CLI runs retry without waiting: a ``sitecustomize`` sets a zero backoff in the tap."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "from tap_usersnap.http.retry import RetryPolicy\n"
        "from tap_usersnap.tap import TapUsersnap\n"
        "TapUsersnap.retry_policy = RetryPolicy(base_seconds=0.0)\n"
    )
    monkeypatch.setenv("PYTHONPATH", str(site))


# ------------------------------------------------------------- 1. hand-written catalogs


def hand_written_catalog(
    fake: FakeUsersnap, stream: str, fields: dict[str, dict[str, t.Any]], *, keys: bool
) -> dict[str, t.Any]:
    """The discovered catalog with ``fields``' metadata replaced (no ``inclusion``).

    Without ``keys``, the entry names no key properties or replication key either.
    """
    catalog = TapUsersnap(config=fake.config()).catalog_dict
    entry = next(e for e in catalog["streams"] if e["tap_stream_id"] == stream)
    replaced = {("properties", name) for name in fields}
    entry["metadata"] = [m for m in entry["metadata"] if tuple(m["breadcrumb"]) not in replaced]
    entry["metadata"] += [
        {"breadcrumb": ["properties", name], "metadata": metadata}
        for name, metadata in fields.items()
    ]
    if not keys:
        for name in ("key_properties", "replication_key", "replication_method"):
            entry.pop(name, None)
        stream_metadata = next(m for m in entry["metadata"] if m["breadcrumb"] == [])
        for name in ("table-key-properties", "valid-replication-keys", "replication-key"):
            stream_metadata["metadata"].pop(name, None)
    return catalog


@pytest.mark.parametrize("keys", [True, False], ids=["entry keeps its keys", "no keys at all"])
def test_catalog_deselecting_feedback_keys_still_emits_them(fake: FakeUsersnap, keys: bool) -> None:
    deselected = {"selected": False}
    catalog = hand_written_catalog(
        fake,
        "feedback",
        {"created_at": deselected, "feedback_id": deselected, "email": deselected},
        keys=keys,
    )
    result = run_sync(fake.config(page_size=5), catalog=catalog)

    records = result.records("feedback")
    assert sorted(r["feedback_id"] for r in records) == sorted(fake.all_feedback_ids())
    created = {i["feedback_id"]: i["created_at"] for items in fake.feedback.values() for i in items}
    assert all(r["created_at"] == created[r["feedback_id"]] for r in records)
    assert not [r for r in records if "email" in r]
    assert all("status_type" in r for r in records)  # the rest stays selected
    schema = result.schema("feedback")
    assert schema["key_properties"] == ["feedback_id"]
    assert schema["bookmark_properties"] == ["created_at"]
    properties = set(schema["schema"]["properties"])
    assert {"feedback_id", "created_at"} <= properties
    assert "email" not in properties
    assert all(set(r) <= properties for r in records)  # a target can load every field
    assert bookmarks(result.final_state) == {
        pid: max(i["created_at"] for i in items) for pid, items in fake.feedback.items()
    }


@pytest.mark.parametrize("keys", [True, False], ids=["entry keeps its keys", "no keys at all"])
def test_catalog_deselecting_the_project_id_still_emits_it(fake: FakeUsersnap, keys: bool) -> None:
    deselected = {"selected": False}
    catalog = hand_written_catalog(
        fake, "projects", {"project_id": deselected, "name": deselected}, keys=keys
    )
    result = run_sync(fake.config(), catalog=catalog)

    records = result.records("projects")
    assert sorted(r["project_id"] for r in records) == sorted(fake.projects)
    assert not [r for r in records if "name" in r]
    assert {r["api_key"] for r in records} == {p["api_key"] for p in fake.projects.values()}
    schema = result.schema("projects")
    assert schema["key_properties"] == ["project_id"]
    assert "project_id" in schema["schema"]["properties"]
    assert "name" not in schema["schema"]["properties"]
    assert all(set(r) <= set(schema["schema"]["properties"]) for r in records)


# ------------------------------------------------------------------ 2. malformed items

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
    project_id = next(iter(fake.projects))
    items = oldest_first(fake, project_id)
    bad = items[POSITIONS[position]]
    fake.inject(
        "mangle",
        match=f"POST /projects/{project_id}/feedbacks/filter$",
        times=FOREVER,
        transform=corrupting(bad["feedback_id"], corrupt),
    )
    others = fake.all_feedback_ids() - {bad["feedback_id"]}

    played = scenario.play(f"an item with {name}, {position}", group=BAD_INPUT, expected=others)

    assert sorted(played.first.ids()) == sorted(others)
    named = f"#{bad['feedback_number']}"
    if reason != "it has no feedback_id":
        named += f" (id {bad['feedback_id']})"
    warnings = messages_at(scenario.caplog, logging.WARNING)
    assert warnings == [
        f"Skipped feedback {named} of project {project_id}: {reason}",
        summary_line(skipped=1, altered=0, refused=0),
    ]
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
    project_id = next(iter(fake.projects))
    before = oldest_first(fake, project_id)[POSITIONS[position]]
    fake.inject(
        "mangle",
        match=f"POST /projects/{project_id}/feedbacks/filter$",
        times=FOREVER,
        transform=corrupting(before["feedback_id"], null_entry_before),
    )

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
    project_id = next(iter(fake.projects))
    items = oldest_first(fake, project_id)
    deep = items[POSITIONS[position]]
    fake.inject(
        "mangle",
        match=f"POST /projects/{project_id}/feedbacks/filter$",
        times=FOREVER,
        transform=corrupting(deep["feedback_id"], deep_custom_data),
    )

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


# ---------------------------------------------------------------------- 3. stalled body


def test_a_body_trickling_in_fails_the_try_at_the_request_timeout(
    scenario: FaultScenario, sleeps: list[float]
) -> None:
    fake = scenario.fake
    # A short answer (15 bytes, 3 s at this pace): were the whole-answer deadline gone, the
    # try would end after 3 s and fail the checks below instead of hanging the suite.
    fake.inject(
        "trickle",
        match=FILTER,
        skip=1,
        times=1,
        seconds=0.2,
        transform=lambda envelope, request: b'{"status":true}',
    )

    played = scenario.play(
        "200 whose body trickles in at a byte per 0.2 s, request_timeout 1 s",
        group=NETWORK,
        settings={"request_timeout": 1},
    )

    assert sorted(played.first.ids()) == sorted(fake.all_feedback_ids())
    assert len(sleeps) == 1
    filters = fake.requests_to(FILTER)
    trickled, retried = filters[1], filters[2]
    assert (trickled.path, trickled.params) == (retried.path, retried.params)
    assert 1.0 <= retried.at - trickled.at < 3.0  # one try, bounded by request_timeout
    project_id = trickled.path.split("/")[2]
    warning = (
        rf"Usersnap did not answer in time: POST /v0\.1/projects/{project_id}/feedbacks/filter "
        rf"did not finish within 1s \(request_timeout\); retrying in \d+\.\ds \(try 2 of 6\)"
    )
    warnings = messages_at(scenario.caplog, logging.WARNING)
    assert [w for w in warnings if re.fullmatch(warning, w)] == warnings
    assert len(warnings) == 1


# ------------------------------------------------------------- 4. malformed envelopes

MALFORMED = [
    pytest.param(b'{"status": true, "data": null}', "no data object", id="data null"),
    pytest.param(b'{"status": true}', "no data object", id="no data"),
    pytest.param(
        b'{"status": true, "data": {"has_more": false, "feedbacks": null}}',
        "nothing",
        id="feedbacks null",
    ),
    pytest.param(
        b'{"status": true, "data": {"has_more": false, "feedbacks": "x"}}',
        "a str",
        id="feedbacks a string",
    ),
]


@pytest.mark.parametrize(("body", "found"), MALFORMED)
def test_a_malformed_page_is_a_failed_try(
    scenario: FaultScenario, sleeps: list[float], body: bytes, found: str
) -> None:
    fake = scenario.fake
    fake.inject("raw", body=body, match=FILTER, skip=1, times=1)

    played = scenario.play(f"200 with {body.decode()}", group=BAD_INPUT)

    assert sorted(played.first.ids()) == sorted(fake.all_feedback_ids())
    assert len(sleeps) == 1
    project_id = fake.requests_to(FILTER)[1].path.split("/")[2]
    assert [
        re.sub(r"retrying in \d+\.\ds", "retrying in Ns", w)
        for w in messages_at(scenario.caplog, logging.WARNING)
    ] == [
        f"Usersnap answered POST /v0.1/projects/{project_id}/feedbacks/filter with a "
        f"malformed page: expected data.feedbacks to be a list, found {found}; retrying in "
        "Ns (try 2 of 6)"
    ]


@pytest.mark.usefixtures("quick_retries")
@pytest.mark.parametrize(("body", "found"), MALFORMED)
def test_a_page_malformed_forever_fails_the_cli_with_one_line(
    canary_fake: FakeUsersnap, body: bytes, found: str
) -> None:
    fake = canary_fake
    fake.inject("raw", body=body, match=FILTER, skip=1, times=FOREVER)
    project_id = next(iter(fake.projects))

    result = run_cli(config=fake.config(**SEQUENTIAL))

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = error_lines(result.stderr)
    assert len(errors) == 1, result.stderr
    assert errors[0].endswith(
        f"| Usersnap answered POST /v0.1/projects/{project_id}/feedbacks/filter with a "
        f"malformed page: expected data.feedbacks to be a list, found {found}; gave up "
        f"after {POLICY.max_tries} tries"
    )
    first_page = oldest_first(fake, project_id)[:PAGE_SIZE]
    assert result.ids() == [i["feedback_id"] for i in first_page]
    assert bookmarks(result.final_state) == {project_id: first_page[-1]["created_at"]}
    assert len(fake.requests_to(FILTER)) == 1 + POLICY.max_tries
    assert fake.jwt_secret not in result.output


# ------------------------------------------------------------------------------- 5. state


def feedback_state(**partitions: dict[str, t.Any]) -> dict[str, t.Any]:
    """A state with one feedback partition per project id given (rows at table version 1)."""
    return {
        "bookmarks": {
            "feedback": {
                "table_version": 1,
                "partitions": [
                    {"context": {"project_id": pid}, **values} for pid, values in partitions.items()
                ],
            }
        }
    }


def test_an_edit_mark_with_an_offset_is_read_as_the_instant_it_names(
    empty_fake: FakeUsersnap,
) -> None:
    fake = empty_fake
    project_id = fake.add_project("Offsets")["project_id"]

    def add(created: str, updated: str | None = None) -> str:
        item = fake.add_feedback(project_id, created_at=created, updated_at=updated or created)
        return str(item["feedback_id"])

    add("2023-12-31T20:00:00.000000Z")
    edited_before_mark = add("2023-12-31T21:00:00.000000Z", "2023-12-31T23:59:00.000000Z")
    edited_after_mark = add("2023-12-31T22:00:00.000000Z", "2024-01-01T00:30:00.000000Z")
    newest = add("2023-12-31T23:00:00.000000Z")
    state = feedback_state(
        **{
            project_id: {
                "replication_key": "created_at",
                "replication_key_value": "2023-12-31T23:00:00.000000Z",
                "updated_at_mark": "2024-01-01T02:00:00+02:00",  # 2024-01-01T00:00:00Z
            }
        }
    )

    result = run_sync(fake.config(page_size=5), state)

    assert sorted(result.ids()) == sorted([edited_after_mark, newest])
    assert edited_before_mark not in result.ids()
    assert bookmarks(result.final_state, key="updated_at_mark") == {
        project_id: "2024-01-01T00:30:00.000000Z"
    }
    assert bookmarks(result.final_state) == {project_id: "2023-12-31T23:00:00.000000Z"}


@pytest.mark.parametrize("key", ["replication_key_value", "updated_at_mark"])
def test_an_unusable_state_value_fails_the_cli_naming_the_project(
    fake: FakeUsersnap, key: str
) -> None:
    project_id = list(fake.projects)[1]
    state = feedback_state(**{project_id: {"replication_key": "created_at", key: "garbage"}})

    result = run_cli(config=fake.config(), state=state)

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert [line.split(" | ")[-1] for line in error_lines(result.stderr)] == [
        f"The state of feedback project {project_id} holds an unusable {key}: 'garbage' is "
        "not an ISO 8601 timestamp. Correct it or clear the state (meltano state clear "
        "<state id>)"
    ]
    assert result.ids() == []
    assert fake.requests_to(FILTER) == []


def test_an_unusable_bookmark_is_a_state_error(fake: FakeUsersnap) -> None:
    project_id = next(iter(fake.projects))
    state = feedback_state(**{project_id: {"replication_key_value": "garbage"}})
    result = run_sync(fake.config(), state, check=False)
    assert isinstance(result.error, StateError)
    assert project_id in str(result.error)


def test_a_bookmark_in_the_future_is_warned_about(scenario: FaultScenario) -> None:
    fake = scenario.fake
    ahead, *others = fake.projects
    future = format_timestamp(dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=365))
    state = feedback_state(
        **{ahead: {"replication_key": "created_at", "replication_key_value": future}}
    )
    expected = {i["feedback_id"] for pid in others for i in fake.feedback[pid]}

    played = scenario.play(
        "a bookmark a year in the future", group=BAD_INPUT, state=state, expected=expected
    )

    assert sorted(played.first.ids()) == sorted(expected)
    assert messages_at(scenario.caplog, logging.WARNING) == [
        f"The state's bookmark of project {ahead}, {future}, is in the future: no feedback "
        "created before it will be read for this project. Correct or clear the state if wrong"
    ]
    assert bookmarks(played.first.final_state)[ahead] == future


def test_a_stream_level_bookmark_of_an_older_layout_serves_every_project(
    scenario: FaultScenario,
) -> None:
    fake = scenario.fake
    second_project = list(fake.projects)[1]
    since = oldest_first(fake, second_project)[5]["created_at"]
    state = {
        "bookmarks": {"feedback": {"replication_key": "created_at", "replication_key_value": since}}
    }
    expected = {
        i["feedback_id"]
        for items in fake.feedback.values()
        for i in items
        if i["created_at"] >= since
    }
    assert 0 < len(expected) < len(fake.all_feedback_ids())

    played = scenario.play(
        "a stream-level bookmark (older state layout)",
        group=BAD_INPUT,
        state=state,
        expected=expected,
    )

    assert sorted(played.first.ids()) == sorted(expected)
    first_filters: dict[str, list[dict[str, str]]] = {}
    for request in fake.filter_requests("created_at"):
        first_filters.setdefault(request.path.split("/")[2], request.body["query"])
    assert first_filters == {
        pid: [{"filter_type": "created_at", "operator": "gte", "value": since}]
        for pid in fake.projects
    }
    assert (
        f"The state holds a stream-level bookmark, {since} (an older layout): every project "
        "is read from it unless it has a bookmark of its own"
    ) in messages_at(scenario.caplog, logging.INFO)


@pytest.mark.parametrize("option", ["--state", "--catalog"])
@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ('{"bookmarks": {', r"is not valid JSON \(.+\)"),
        ("[1, 2]", "holds a list, not a JSON object"),
    ],
    ids=["not JSON", "a list"],
)
def test_a_state_or_catalog_file_that_is_not_a_json_object_fails_in_one_line(
    fake: FakeUsersnap, tmp_path: Path, option: str, content: str, problem: str
) -> None:
    path = tmp_path / f"{option[2:]}.json"
    path.write_text(content)

    result = run_cli(option, str(path), config=fake.config())

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = error_lines(result.stderr)
    assert len(errors) == 1, result.stderr
    assert re.search(rf"\| The {option[2:]} file {re.escape(str(path))} {problem}$", errors[0])
    assert fake.requests == []


# ------------------------------------------------------------------------------- 6. BATCH


def test_batch_config_is_refused_before_any_request(fake: FakeUsersnap) -> None:
    batch_config = {"encoding": {"format": "jsonl"}, "storage": {"root": "file:///tmp"}}
    with pytest.raises(ConfigValidationError) as failure:
        TapUsersnap(config=fake.config(batch_config=batch_config))
    assert failure.value.errors == [
        "batch_config is set, but tap-usersnap does not write BATCH messages (its STATE could "
        "run ahead of records a target has not loaded); remove the batch_config setting"
    ]
    assert fake.requests == []


def test_about_does_not_offer_batch() -> None:
    result = run_cli("--about", "--format=json")
    assert result.returncode == 0, result.stderr
    about = json.loads(result.stdout)
    assert "batch" not in about["capabilities"]
    assert {"catalog", "state", "discover"} <= set(about["capabilities"])
    assert "batch_config" not in about["settings"]["properties"]


# ----------------------------------------------------------------- 7. jwt_secret's type


@pytest.mark.parametrize("kind", ["a number", "a list", "an object"])
def test_a_jwt_secret_of_the_wrong_type_is_named_but_never_shown(
    fake: FakeUsersnap, kind: str
) -> None:
    token = secrets.token_urlsafe(24)
    number = secrets.randbelow(900_000_000) + 100_000_000
    value, shown = {
        "a number": (number, str(number)),
        "a list": ([token], token),
        "an object": ({"secret": token}, token),
    }[kind]

    result = run_cli(config=fake.config(jwt_secret=value))

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert shown not in result.stderr + result.stdout
    errors = [line.split(" | ")[-1] for line in error_lines(result.stderr)]
    assert errors == [
        "config['jwt_secret'] is invalid: it must satisfy 'type' (['string']); the value is "
        "not shown, as it is secret",
        "Config validation failed",
    ]
    assert fake.requests == []


# --------------------------------------------------------------- 8. settings from the env


def test_every_setting_from_the_environment_takes_effect(fake: FakeUsersnap) -> None:
    chosen = list(fake.projects)[:2]
    start = oldest_first(fake, chosen[0])[3]["created_at"]
    env = {
        "TAP_USERSNAP_JWT_ID": fake.jwt_id,
        "TAP_USERSNAP_JWT_SECRET": fake.jwt_secret,
        "TAP_USERSNAP_API_URL": fake.url,
        "TAP_USERSNAP_PROJECT_IDS": json.dumps(chosen),
        "TAP_USERSNAP_START_DATE": start,
        "TAP_USERSNAP_PAGE_SIZE": "5",
        "TAP_USERSNAP_CAPTURE_EDITS": "false",
        "TAP_USERSNAP_CONCURRENCY": "2",
        "TAP_USERSNAP_REQUEST_TIMEOUT": "30",
    }

    result = run_cli("--config", "ENV", env=env)

    assert result.returncode == 0, result.stderr
    assert sorted(result.ids("projects", "project_id")) == sorted(chosen)
    expected = {
        i["feedback_id"] for pid in chosen for i in fake.feedback[pid] if i["created_at"] >= start
    }
    assert sorted(result.ids()) == sorted(expected)
    filters = fake.requests_to(FILTER)
    assert {r.path.split("/")[2] for r in filters} == set(chosen)
    assert {r.params["limit"] for r in filters} == {"5"}
    assert fake.filter_requests("updated_at") == []  # capture_edits false
    assert {json.dumps(r.body["query"]) for r in filters} == {
        json.dumps([{"filter_type": "created_at", "operator": "gte", "value": start}])
    }
    for name in env:
        setting = name.removeprefix("TAP_USERSNAP_").lower()
        assert f"Parsing '{setting}' config from env variable '{name}'." in result.stderr
    assert fake.jwt_secret not in result.output


# ---------------------------------------------------------------- 9. repeated project ids


def test_a_project_listed_twice_is_read_once(fake: FakeUsersnap) -> None:
    first, second, _ = fake.projects
    result = run_sync(fake.config(project_ids=[first, second, first]))

    expected = [i["feedback_id"] for pid in (first, second) for i in fake.feedback[pid]]
    assert sorted(result.ids()) == sorted(expected)
    assert sorted(result.ids("projects", "project_id")) == sorted([first, second])
    reads = [r.path.split("/")[2] for r in fake.filter_requests("created_at")]
    assert sorted(reads) == sorted([first, second])
    scans = [r.path.split("/")[2] for r in fake.filter_requests("updated_at")]
    assert sorted(scans) == sorted([first, second])
    assert [
        p["context"]["project_id"]
        for p in result.final_state["bookmarks"]["feedback"]["partitions"]
    ] == [first, second]


# ---------------------------------------------------------------------- 10. FULL_TABLE


def full_table_catalog(fake: FakeUsersnap, where: str) -> dict[str, t.Any]:
    """The discovered catalog asking for FULL_TABLE on feedback, in the entry or in its
    stream metadata (then, as in a hand-written catalog, the entry names no method: the
    SDK lets an entry's ``replication_method`` win over the metadata)."""
    catalog = TapUsersnap(config=fake.config()).catalog_dict
    entry = next(e for e in catalog["streams"] if e["tap_stream_id"] == "feedback")
    if where == "entry":
        entry["replication_method"] = "FULL_TABLE"
    else:
        del entry["replication_method"]
        stream_metadata = next(m for m in entry["metadata"] if m["breadcrumb"] == [])
        stream_metadata["metadata"]["forced-replication-method"] = "FULL_TABLE"
    return catalog


@pytest.mark.parametrize("where", ["entry", "stream metadata"])
def test_full_table_in_the_catalog_reads_everything_again(
    fake: FakeUsersnap, caplog: pytest.LogCaptureFixture, where: str
) -> None:
    first = run_sync(fake.config(page_size=5))
    newest = {pid: max(i["created_at"] for i in items) for pid, items in fake.feedback.items()}
    assert bookmarks(first.final_state) == newest
    fake.requests.clear()

    with caplog.at_level(logging.INFO):
        again = run_sync(
            fake.config(page_size=5), first.final_state, full_table_catalog(fake, where)
        )

    assert sorted(again.ids()) == sorted(fake.all_feedback_ids())
    assert all("query" not in r.body for r in fake.requests_to(FILTER))
    assert fake.filter_requests("updated_at") == []
    assert "Beginning sync of 'feedback' in full_table mode" in messages_at(caplog, logging.INFO)


# --------------------------------------------------------------------- 11. SIGTERM, SIGINT


def run_interrupted(
    fake: FakeUsersnap, config: dict[str, t.Any], signum: signal.Signals, *, after_filters: int
) -> SyncResult:
    """Start the CLI, send ``signum`` once the fake has received ``after_filters`` filter
    requests (the last one stalls), and collect what the tap printed."""
    with tempfile.TemporaryDirectory() as tmp:
        config_path = Path(tmp, "config.json")
        config_path.write_text(json.dumps(config))
        out_path, err_path = Path(tmp, "stdout"), Path(tmp, "stderr")
        with out_path.open("w") as stdout, err_path.open("w") as stderr:
            process = subprocess.Popen(
                [TAP, "--config", str(config_path)], stdout=stdout, stderr=stderr
            )
            try:
                deadline = time.monotonic() + 60
                while len(fake.requests_to(FILTER)) < after_filters:
                    assert process.poll() is None, "the tap ended before the stall"
                    assert time.monotonic() < deadline, "the tap never reached the stall"
                    time.sleep(0.05)
                process.send_signal(signum)
                returncode = process.wait(timeout=30)
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait()
        text = out_path.read_text()
        return SyncResult(parse_messages(text), err_path.read_text(), returncode, text)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_mid_run_exits_128_plus_it_with_a_safe_state_last(
    fake: FakeUsersnap, signum: signal.Signals
) -> None:
    config = fake.config(**SEQUENTIAL)
    items = item_index(fake)
    fake.inject("stall", match=FILTER, skip=3, seconds=10)  # the second project's first page

    stopped = run_interrupted(fake, config, signum, after_filters=4)

    assert stopped.returncode == 128 + signum
    assert stopped.stdout.endswith("\n")
    last = json.loads(stopped.stdout.rstrip("\n").split("\n")[-1])
    assert last["type"] == "STATE"
    first_project = next(iter(fake.projects))
    assert sorted(stopped.ids()) == sorted(i["feedback_id"] for i in fake.feedback[first_project])
    assert bookmarks(last["value"]) == {
        first_project: max(i["created_at"] for i in fake.feedback[first_project])
    }
    assert f"Interrupted by signal {int(signum)}: stopped" in stopped.stderr
    assert "Traceback" not in stopped.stderr

    fake.clear_faults()
    resumed = run_sync(config, last["value"])

    assert set(stopped.ids()) | set(resumed.ids()) == fake.all_feedback_ids()
    expected = fake.all_feedback_ids()
    assert unsafe_states([stopped, resumed], items, expected) == []


# ----------------------------------------------------------------- 12. refused endpoints


def test_a_refused_assignees_endpoint_is_skipped_with_a_warning(
    fake: FakeUsersnap, caplog: pytest.LogCaptureFixture
) -> None:
    refused, *others = fake.projects.values()
    fake.inject("status", status=403, times=FOREVER, match=f"/{refused['api_key']}/assignees$")

    with caplog.at_level(logging.INFO):
        result = run_sync(fake.config())

    assert result.returncode == 0
    assert sorted(result.ids()) == sorted(fake.all_feedback_ids())
    assert sorted(result.ids("projects", "project_id")) == sorted(fake.projects)
    assignees = {(r["project_id"], r["user_id"]) for r in result.records("project_assignees")}
    assert assignees == {
        (p["project_id"], u["user_id"]) for p in others for u in fake.assignees[p["api_key"]]
    }
    warnings = messages_at(caplog, logging.WARNING)
    assert len(warnings) == 4, warnings
    assert warnings[0].startswith("Usersnap refused GET /v0.1/projects/")
    assert warnings[0].endswith(
        f"/assignees (403 FAULT: Forbidden); skipped the assignees of project "
        f"{refused['project_id']}, the rest of the run continues"
    )
    # The refused project's assignees were not re-sent: ACTIVATE_VERSION would retire them.
    assert warnings[1] == (
        "Deletions not applied to project_assignees, every row stays and the next run tries "
        "again: an assignees endpoint was refused"
    )
    assert "ACTIVATE_VERSION" not in {
        m["type"] for m in result.messages if m.get("stream") == "project_assignees"
    }
    assert warnings[2] == summary_line(skipped=0, altered=0, refused=1)


def test_a_refused_projects_listing_fails_with_the_plan_message(fake: FakeUsersnap) -> None:
    fake.rest_api_enabled = False
    result = run_sync(fake.config(), check=False)
    assert str(result.error) == (
        "Usersnap refused GET /v0.1/projects (403 FORBIDDEN: REST API is not enabled for this "
        "plan): the REST API is not enabled for this workspace's plan (it needs an Enterprise "
        "plan), or this API key may not list projects"
    )
    assert result.ids() == []
    assert [f"{r.method} {r.path}" for r in fake.requests] == ["GET /projects"]


# ------------------------------------------------------------ 13. unreachable API hosts


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_connection_refused_names_the_host_and_port(
    sleeps: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    port = closed_port()
    config = {
        "jwt_id": secrets.token_hex(8),
        "jwt_secret": secrets.token_urlsafe(32),
        "api_url": f"http://127.0.0.1:{port}/v0.1",
    }
    with caplog.at_level(logging.INFO):
        result = run_sync(config, check=False)

    assert str(result.error) == (
        f"Connection to 127.0.0.1:{port} failed: connection refused (nothing listens there; "
        f"check api_url); gave up after {POLICY.max_tries} tries"
    )
    assert len(sleeps) == POLICY.max_tries - 1
    retries = [m for m in messages_at(caplog, logging.WARNING) if "connection refused" in m]
    assert len(retries) == POLICY.max_tries - 1
    assert config["jwt_secret"] not in caplog.text


def test_a_host_that_does_not_resolve_is_named(
    sleeps: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    config = {
        "jwt_id": secrets.token_hex(8),
        "jwt_secret": secrets.token_urlsafe(32),
        "api_url": "http://nonexistent.invalid/v0.1",
    }
    with caplog.at_level(logging.INFO):
        result = run_sync(config, check=False)

    assert str(result.error) == (
        "Connection to nonexistent.invalid failed: the host name could not be resolved (DNS); "
        f"check api_url and the network; gave up after {POLICY.max_tries} tries"
    )
    assert len(sleeps) == POLICY.max_tries - 1


# ------------------------------------------------------- 14. projects listing without next


def has_more_without_next(envelope: dict, request: RecordedRequest) -> dict:
    envelope["data"]["has_more"] = True
    envelope["data"]["next"] = None
    return envelope


def test_projects_listing_with_has_more_but_no_next_continues_after_the_last_id(
    fake: FakeUsersnap,
) -> None:
    fake.inject("mangle", match="GET /projects$", transform=has_more_without_next)

    result = run_sync(fake.config())

    last = list(fake.projects)[-1]
    assert [r.params for r in fake.requests_to("GET /projects$")] == [
        {"limit": "100"},
        {"limit": "100", "after": last},
    ]
    assert sorted(result.ids("projects", "project_id")) == sorted(fake.projects)
    assert sorted(result.ids()) == sorted(fake.all_feedback_ids())


def test_a_refused_continuation_of_the_projects_listing_keeps_the_projects_listed(
    fake: FakeUsersnap, caplog: pytest.LogCaptureFixture
) -> None:
    fake.inject("mangle", match="GET /projects$", transform=has_more_without_next)
    fake.inject("status", status=400, match="GET /projects$")

    with caplog.at_level(logging.INFO):
        result = run_sync(fake.config())

    assert sorted(result.ids("projects", "project_id")) == sorted(fake.projects)
    assert sorted(result.ids()) == sorted(fake.all_feedback_ids())
    assert messages_at(caplog, logging.WARNING) == [
        f"Listing projects stopped after {len(fake.projects)}: Usersnap refused the next "
        "page's cursor (Usersnap rejected the page cursor of GET /v0.1/projects (400 FAULT: "
        "Bad Request); the item it names was probably deleted meanwhile); going on with the "
        "projects listed (no deletion is applied this run)",
        # Even a first run: after a full refresh, the warehouse may hold a missing project.
        "Deletions not applied to feedback, every row stays and the next run tries again: "
        "the first read is not complete: the project listing stopped early, so a missing "
        "project may exist",
        "Deletions not applied to projects and project_assignees, every row stays and the "
        "next run tries again: the project listing stopped early, so a missing project may "
        "exist",
        "Run summary: deletions held back for feedback, projects and project_assignees (a "
        "warning above says why); nothing was removed from them",
    ]
    assert [m for m in result.messages if m["type"] == "ACTIVATE_VERSION"] == []
    assert len(fake.requests_to("GET /projects$")) == 2
