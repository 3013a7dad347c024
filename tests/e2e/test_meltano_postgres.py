"""``meltano run tap-usersnap target-postgres`` against the fake API and a real PostgreSQL.

Everything runs as a user runs it: the meltano CLI, the plugins meltano.yml defines (the tap
installed from this repository, meltanolabs-target-postgres from PyPI), settings from
``TAP_USERSNAP_*`` / ``TARGET_POSTGRES_*`` variables. Assertions read the warehouse.
"""

from __future__ import annotations

import secrets
import typing as t

import pytest
import yaml

from fake_usersnap import filter_time
from harness.meltano_project import state_id
from harness.postgres_pipeline import (
    JSONB_COLUMNS,
    fake_items,
    loaded_rows,
    naive_utc,
    run_pipeline,
)
from harness.singer_run import bookmarks

if t.TYPE_CHECKING:
    from fake_usersnap import FakeUsersnap
    from harness.meltano_project import MeltanoProject
    from harness.pg_cluster import PostgresCluster

pytestmark = pytest.mark.e2e

STATE_ID = state_id("tap-usersnap", "target-postgres")


def snapshot(pg: PostgresCluster) -> list[list[tuple[t.Any, ...]]]:
    """Every loaded row, every column (``_sdc_*`` too), in a stable order."""
    return [
        pg.query("SELECT to_jsonb(f) FROM usersnap.feedback f ORDER BY to_jsonb(f)::text"),
        pg.query("SELECT to_jsonb(p) FROM usersnap.projects p ORDER BY to_jsonb(p)::text"),
    ]


def test_run_loads_exactly_what_the_api_serves(
    fake: FakeUsersnap, meltano: MeltanoProject, warehouse: PostgresCluster
) -> None:
    run_pipeline(meltano, fake, warehouse)

    per_project = dict(
        warehouse.query("SELECT project_id, count(*) FROM usersnap.feedback GROUP BY 1")
    )
    assert per_project == {pid: len(items) for pid, items in fake.feedback.items()}
    assert warehouse.query("SELECT count(DISTINCT feedback_id) FROM usersnap.feedback") == [
        (sum(per_project.values()),)
    ]
    assert dict(warehouse.query("SELECT project_id, name FROM usersnap.projects")) == {
        pid: project["name"] for pid, project in fake.projects.items()
    }

    types = dict(
        warehouse.query(
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = 'usersnap' AND table_name = 'feedback'"
        )
    )
    assert {name: types[name] for name in JSONB_COLUMNS} == dict.fromkeys(JSONB_COLUMNS, "jsonb")
    assert types["created_at"] == types["updated_at"] == "timestamp without time zone"

    # Every row, field by field: nested JSON round-trips as JSON, timestamps as UTC instants.
    rows = loaded_rows(warehouse)
    for feedback_id, item in fake_items(fake).items():
        row = rows[feedback_id]
        assert row["project_name"] == fake.projects[item["project_id"]]["name"]
        assert row["created_at"] == naive_utc(item["created_at"])
        assert row["updated_at"] == naive_utc(item["updated_at"])
        for field in ("status_type", "priority", "email", *sorted(JSONB_COLUMNS)):
            assert row[field] == item[field], field

    # The sample has what makes loading hard: unicode, empty and nested JSON, several labels.
    comments = {r["ordered_inputs"][0]["text_value"] for r in rows.values()}
    assert any("結果" in c for c in comments)
    assert any("\n" in c and "\\" in c for c in comments)
    assert any(len(r["labels"]) == 2 for r in rows.values())
    assert any(r["custom_data"] == {} for r in rows.values())

    # ...and it is queryable as JSON in SQL.
    with_bug = sum(
        any(label["identifier"] == "bug" for label in item["labels"])
        for item in fake_items(fake).values()
    )
    assert warehouse.query(
        "SELECT count(*) FROM usersnap.feedback WHERE labels @> %s::jsonb",
        '[{"identifier": "bug"}]',
    ) == [(with_bug,)]
    enterprise = sum(
        i["custom_data"].get("plan") == "enterprise" for i in fake_items(fake).values()
    )
    assert warehouse.query(
        "SELECT count(*) FROM usersnap.feedback WHERE custom_data->>'plan' = 'enterprise'"
    ) == [(enterprise,)]


def test_second_run_loads_only_new_feedback_without_duplicates(
    fake: FakeUsersnap, meltano: MeltanoProject, warehouse: PostgresCluster
) -> None:
    run_pipeline(meltano, fake, warehouse)
    first = bookmarks(meltano.state(STATE_ID))
    assert first == {
        pid: max(i["created_at"] for i in items) for pid, items in fake.feedback.items()
    }

    busy, quiet, untouched = list(fake.feedback)
    tie = fake.add_feedback(busy, created_at=first[busy], comment="Zur gleichen Zeit ⏱")
    later = [
        fake.add_feedback(busy, comment="New after the first run"),
        fake.add_feedback(busy, comment="Another one ✓", labels=[{"identifier": "bug"}]),
        fake.add_feedback(quiet, comment="Quiet project, one new item"),
    ]
    new_ids = {tie["feedback_id"], *(item["feedback_id"] for item in later)}
    asked_before = len(fake.requests)

    run_pipeline(meltano, fake, warehouse)

    # All of the fake's feedback, once each.
    counts = warehouse.query("SELECT count(*), count(DISTINCT feedback_id) FROM usersnap.feedback")
    assert counts == [(len(fake.all_feedback_ids()), len(fake.all_feedback_ids()))]
    # The second run asked each project only for feedback from its bookmark's second on...
    asked = {
        r.path.split("/")[2]: r.body["query"][0]["value"]
        for r in fake.filter_requests("created_at")
        if r in fake.requests[asked_before:]
    }
    assert asked == {pid: filter_time(mark) for pid, mark in first.items()}
    # ...so it loaded the new items and re-read only those at a bookmark's very instant.
    at_bookmark = {
        i["feedback_id"]
        for pid, items in fake.feedback.items()
        for i in items
        if i["created_at"] == first[pid]
    }
    second_run = warehouse.query(
        "SELECT feedback_id FROM usersnap.feedback WHERE _sdc_sync_started_at ="
        " (SELECT max(_sdc_sync_started_at) FROM usersnap.feedback)"
    )
    assert {feedback_id for (feedback_id,) in second_run} == new_ids | at_bookmark
    rows = loaded_rows(warehouse)
    assert rows[later[1]["feedback_id"]]["labels"] == [{"identifier": "bug"}]
    assert rows[tie["feedback_id"]]["created_at"] == naive_utc(first[busy])

    # Meltano stored the advanced state.
    second = bookmarks(meltano.state(STATE_ID))
    assert second == {
        busy: later[1]["created_at"],
        quiet: later[2]["created_at"],
        untouched: first[untouched],
    }


def test_selected_fields_are_the_only_columns(
    fake: FakeUsersnap, meltano: MeltanoProject, warehouse: PostgresCluster
) -> None:
    for field in ("status_type", "labels"):
        meltano.run("select", "tap-usersnap", "feedback", field)
    project_file = yaml.safe_load((meltano.root / "meltano.yml").read_text())
    assert project_file["plugins"]["extractors"][0]["select"] == [
        "feedback.status_type",
        "feedback.labels",
    ]

    run_pipeline(meltano, fake, warehouse)

    tables = warehouse.query(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'usersnap'"
    )
    assert tables == [("feedback",)]  # `projects` was not selected
    columns = {
        name
        for (name,) in warehouse.query(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = 'usersnap' AND table_name = 'feedback'"
        )
    }
    # The key and the replication key always come along; the rest is what was selected.
    assert {c for c in columns if not c.startswith("_sdc_")} == {
        "feedback_id",
        "created_at",
        "status_type",
        "labels",
    }
    rows = dict(warehouse.query("SELECT feedback_id, labels FROM usersnap.feedback"))
    assert rows == {fid: item["labels"] for fid, item in fake_items(fake).items()}


def test_bad_credentials_fail_in_one_line_and_leave_loaded_rows_alone(
    fake: FakeUsersnap, meltano: MeltanoProject, warehouse: PostgresCluster
) -> None:
    run_pipeline(meltano, fake, warehouse)
    before = snapshot(warehouse)
    state_before = meltano.state(STATE_ID)
    fake.add_feedback(next(iter(fake.feedback)), comment="Must not arrive")

    wrong_secret = secrets.token_urlsafe(32)
    failed = run_pipeline(
        meltano, fake, warehouse, check=False, TAP_USERSNAP_JWT_SECRET=wrong_secret
    )

    assert failed.returncode != 0
    output = failed.stdout + failed.stderr
    reasons = [line for line in output.splitlines() if "rejected the credentials" in line]
    assert len(reasons) == 1, output
    assert f"Usersnap rejected the credentials (401) of JWT ID '{fake.jwt_id}'" in reasons[0]
    assert "Traceback" not in output
    assert wrong_secret not in output
    assert fake.jwt_secret not in output
    assert snapshot(warehouse) == before
    assert bookmarks(meltano.state(STATE_ID)) == bookmarks(state_before)


def test_a_run_that_fails_midway_keeps_its_pages_and_the_next_run_finishes(
    fake: FakeUsersnap, meltano: MeltanoProject, warehouse: PostgresCluster
) -> None:
    """The tap's STATE after every page reaches Meltano, so a failed run is resumed, not redone."""
    first_project, *others = fake.feedback
    # The first project's 4th filter request is its 3rd page (after its edit scan and two
    # pages of new feedback): refused from then on, so the project is skipped there and the
    # run fails at its end, the other projects delivered.
    fake.inject(
        "status", status=403, match=f"POST /projects/{first_project}/.*/filter$", skip=3, times=99
    )
    failed = run_pipeline(
        meltano,
        fake,
        warehouse,
        check=False,
        TAP_USERSNAP_PAGE_SIZE="5",
        TAP_USERSNAP_CONCURRENCY="1",
    )

    assert failed.returncode != 0
    oldest_ten = sorted(fake.feedback[first_project], key=lambda i: i["created_at"])[:10]
    loaded = {fid for (fid,) in warehouse.query("SELECT feedback_id FROM usersnap.feedback")}
    others_ids = {i["feedback_id"] for p in others for i in fake.feedback[p]}
    assert loaded == {i["feedback_id"] for i in oldest_ten} | others_ids
    assert bookmarks(meltano.state(STATE_ID))[first_project] == oldest_ten[-1]["created_at"]

    fake.clear_faults()
    asked_before = len(fake.requests)
    run_pipeline(meltano, fake, warehouse, TAP_USERSNAP_PAGE_SIZE="5", TAP_USERSNAP_CONCURRENCY="1")

    resumed = next(
        r
        for r in fake.filter_requests("created_at")
        if first_project in r.path and r in fake.requests[asked_before:]
    )
    assert resumed.body["query"][0]["value"] == filter_time(oldest_ten[-1]["created_at"])
    assert warehouse.query(
        "SELECT count(*), count(DISTINCT feedback_id) FROM usersnap.feedback"
    ) == [(len(fake.all_feedback_ids()), len(fake.all_feedback_ids()))]


def test_an_edit_reaches_postgres_on_the_next_run_once(
    fake: FakeUsersnap, meltano: MeltanoProject, warehouse: PostgresCluster
) -> None:
    """Change capture: a status and label change at Usersnap updates the row, in place."""
    run_pipeline(meltano, fake, warehouse)
    project_id = next(iter(fake.feedback))
    old = sorted(fake.feedback[project_id], key=lambda i: i["created_at"])[1]
    billing = {
        "company_label_id": "l-9",
        "identifier": "billing",
        "name": "Billing",
        "color": "#17a34a",
    }
    fake.update_feedback(old["feedback_id"], status_type="done", labels=[billing])

    run_pipeline(meltano, fake, warehouse)

    rows = warehouse.query(
        "SELECT status_type, label_names, labels FROM usersnap.feedback WHERE feedback_id = %s",
        old["feedback_id"],
    )
    assert rows == [("done", ["Billing"], [billing])]
    assert warehouse.query(
        "SELECT count(*), count(DISTINCT feedback_id) FROM usersnap.feedback"
    ) == [(len(fake.all_feedback_ids()), len(fake.all_feedback_ids()))]


def test_assignees_and_derived_fields_land_as_columns(
    fake: FakeUsersnap, meltano: MeltanoProject, warehouse: PostgresCluster
) -> None:
    run_pipeline(meltano, fake, warehouse)

    assignees = warehouse.query(
        "SELECT project_id, user_id, first_name, last_name FROM usersnap.project_assignees"
    )
    expected = {
        (project_id, user["user_id"], user["first_name"], user["last_name"])
        for project_id, project in fake.projects.items()
        for user in fake.assignees[project["api_key"]]
    }
    assert expected, "the sample data has assignees"
    assert set(assignees) == expected
    assert len(assignees) == len(expected)  # (project_id, user_id) is the key: no repeats

    types = dict(
        warehouse.query(
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = 'usersnap' AND table_name = 'feedback'"
            " AND column_name IN ('conversation', 'label_names', 'input_values')"
        )
    )
    assert types == {"conversation": "ARRAY", "label_names": "ARRAY", "input_values": "jsonb"}
    for feedback_id, label_names, rating in warehouse.query(
        "SELECT feedback_id, label_names, input_values->>'Rating' FROM usersnap.feedback"
    ):
        item = fake_items(fake)[feedback_id]
        assert label_names == [label["name"] for label in item["labels"]]
        given = [i["value"] for i in item["ordered_inputs"] if i["label"] == "Rating"]
        assert rating == (given[0] if given else None)


def live_feedback(pg: PostgresCluster) -> set[str]:
    return {
        fid
        for (fid,) in pg.query(
            "SELECT feedback_id FROM usersnap.feedback WHERE _sdc_deleted_at IS NULL"
        )
    }


@pytest.mark.parametrize("hard_delete", [False, True])
def test_deletions_at_usersnap_leave_postgres_on_the_next_run(
    fake: FakeUsersnap, meltano: MeltanoProject, warehouse: PostgresCluster, hard_delete: bool
) -> None:
    """A deleted item, assignee and project are no longer live rows after the next run."""
    hard = str(hard_delete).lower()
    run_pipeline(meltano, fake, warehouse, TARGET_POSTGRES_HARD_DELETE=hard)
    project_a, project_b, *_ = list(fake.projects)
    erased = fake.feedback[project_a][1]["feedback_id"]
    fake.delete_feedback(erased)
    gone_project = project_b
    fake.remove_project(gone_project)
    new = fake.add_feedback(project_a)

    run_pipeline(meltano, fake, warehouse, TARGET_POSTGRES_HARD_DELETE=hard)

    assert live_feedback(warehouse) == fake.all_feedback_ids()
    assert new["feedback_id"] in live_feedback(warehouse)
    live_projects = warehouse.query(
        "SELECT project_id FROM usersnap.projects WHERE _sdc_deleted_at IS NULL"
    )
    assert {pid for (pid,) in live_projects} == set(fake.projects)
    stored = warehouse.query(
        "SELECT _sdc_deleted_at IS NOT NULL FROM usersnap.feedback WHERE feedback_id = %s", erased
    )
    assert stored == ([] if hard_delete else [(True,)])
    live_assignees = warehouse.query(
        "SELECT DISTINCT project_id FROM usersnap.project_assignees WHERE _sdc_deleted_at IS NULL"
    )
    assert gone_project not in {pid for (pid,) in live_assignees}
