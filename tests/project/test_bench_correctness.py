"""Speed must not change the output: a benchmark-shaped run, checked record by record.

The tap runs as its console script against the benchmark's pre-rendered data (3 projects
x 2,000 items of ~1.9 KB, 100 per page): every record must match its SCHEMA message and
equal its source item, arrive once and in created_at order per project, and the final
state must hold one bookmark per project at its newest item. Not timed: the timing is
``make bench``'s job.
"""

from __future__ import annotations

import datetime as dt
import typing as t
from collections import defaultdict

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from fake_usersnap import FakeUsersnap, PrerenderedFeedback
from harness.singer_run import SyncResult, bookmarks, run_cli

PROJECTS = 3
PER_PROJECT = 2_000
ITEM_BYTES = 1900

#: jsonschema only checks ``date-time`` with an optional package; check it ourselves.
FORMATS = FormatChecker(formats=())


@FORMATS.checks("date-time", raises=ValueError)
def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if "T" not in value:
        raise ValueError(f"{value!r} has no time part")
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed.tzinfo is not None


@pytest.fixture(scope="module")
def bench_fake() -> t.Iterator[FakeUsersnap]:
    with FakeUsersnap() as api:
        api.seed_benchmark(projects=PROJECTS, per_project=PER_PROJECT, item_bytes=ITEM_BYTES)
        yield api


@pytest.fixture(scope="module")
def data(bench_fake: FakeUsersnap) -> PrerenderedFeedback:
    assert bench_fake.prerendered is not None
    return bench_fake.prerendered


@pytest.fixture(scope="module")
def full_run(bench_fake: FakeUsersnap) -> SyncResult:
    result = run_cli(config=bench_fake.config(page_size=100))
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def by_project(records: list[dict[str, t.Any]]) -> dict[str, list[dict[str, t.Any]]]:
    grouped: dict[str, list[dict[str, t.Any]]] = defaultdict(list)
    for record in records:
        grouped[record["project_id"]].append(record)
    return grouped


@pytest.mark.parametrize("stream", ["projects", "feedback"])
def test_every_record_matches_its_schema_message(full_run: SyncResult, stream: str) -> None:
    validator = Draft202012Validator(full_run.schema(stream)["schema"], format_checker=FORMATS)
    records = full_run.records(stream)
    assert records
    problems = [
        f"{record.get('feedback_id', record.get('project_id'))}: {error.json_path} {error.message}"
        for record in records
        for error in validator.iter_errors(record)
    ]
    assert not problems, problems[:10]


def test_every_item_arrives_once_in_created_at_order(
    full_run: SyncResult, data: PrerenderedFeedback
) -> None:
    records = full_run.records("feedback")
    assert len(records) == PROJECTS * PER_PROJECT
    assert len({r["feedback_id"] for r in records}) == len(records)
    grouped = by_project(records)
    assert set(grouped) == set(data.projects)
    for project_id, emitted in grouped.items():
        assert [r["feedback_id"] for r in emitted] == data.ids(project_id)
        created = [r["created_at"] for r in emitted]
        assert created == sorted(created)


def test_records_equal_their_source_items(
    full_run: SyncResult, bench_fake: FakeUsersnap, data: PrerenderedFeedback
) -> None:
    """The same output, field for field: only ``project_name`` and derived fields added."""
    derived = {"project_name", "conversation", "label_names", "input_values"}
    for project_id, emitted in by_project(full_run.records("feedback")).items():
        name = bench_fake.projects[project_id]["name"]
        for index, record in enumerate(emitted):
            raw = {key: value for key, value in record.items() if key not in derived}
            assert raw == data.item(project_id, index), f"{project_id} item {index} differs"
            assert record["project_name"] == name
            assert derived <= set(record)


def test_final_state_has_one_bookmark_per_project_at_its_newest_item(
    full_run: SyncResult, data: PrerenderedFeedback
) -> None:
    state = full_run.final_state
    partitions = state["bookmarks"]["feedback"]["partitions"]
    assert len(partitions) == PROJECTS
    newest = {
        project_id: max(r["created_at"] for r in emitted)
        for project_id, emitted in by_project(full_run.records("feedback")).items()
    }
    assert bookmarks(state) == newest
    assert newest == {p: data.created_at(p, PER_PROJECT - 1) for p in data.projects}


def test_a_run_from_the_final_state_resumes_at_the_bookmarks(
    full_run: SyncResult, bench_fake: FakeUsersnap, data: PrerenderedFeedback
) -> None:
    """``created_at gte <bookmark>``: only each project's newest item comes again, and
    the edit scan's item at the ``updated_at`` mark (re-read like a tie, nothing edited)."""
    resumed = run_cli(config=bench_fake.config(), state=full_run.final_state)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    newest_ids = {data.ids(p)[-1] for p in data.projects}
    at_mark = {newest_update(data, p) for p in data.projects}
    assert set(resumed.ids()) == newest_ids | at_mark
    assert len(resumed.ids()) == len(newest_ids | at_mark)
    assert bookmarks(resumed.final_state) == bookmarks(full_run.final_state)


def newest_update(data: PrerenderedFeedback, project_id: str) -> str:
    """The id of the project's most recently updated item (the edit scan's mark)."""
    items = [data.item(project_id, n) for n in range(PER_PROJECT)]
    return max(items, key=lambda i: (i["updated_at"], i["feedback_id"]))["feedback_id"]
