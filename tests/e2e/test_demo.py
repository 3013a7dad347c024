"""`make demo` end to end, on a small sample: Meltano into DuckDB, twice."""

from __future__ import annotations

import io
import typing as t

import duckdb
import pytest

from demo.run_demo import NEW_COMMENTS, run_demo

if t.TYPE_CHECKING:
    from harness.meltano_project import MeltanoProject

pytestmark = pytest.mark.e2e

PROJECTS, PER_PROJECT = 3, 20
NEW = 2 * len(NEW_COMMENTS)


def test_demo_loads_everything_then_only_what_is_new(meltano: MeltanoProject) -> None:
    out = io.StringIO()

    run_demo(meltano, out, projects=PROJECTS, per_project=PER_PROJECT)

    printed = out.getvalue()
    warehouse = meltano.root / "output" / "warehouse.duckdb"
    with duckdb.connect(str(warehouse), read_only=True) as db:
        rows, distinct = db.sql(
            "SELECT count(*), count(DISTINCT feedback_id) FROM usersnap.feedback"
        ).fetchone() or (0, 0)
        comments = {
            c
            for (c,) in db.sql(
                "SELECT ordered_inputs->0->>'text_value' FROM usersnap.feedback"
            ).fetchall()
        }
        projects = db.sql("SELECT count(*) FROM usersnap.projects").fetchone()
    assert rows == distinct == PROJECTS * PER_PROJECT + NEW
    assert set(NEW_COMMENTS) <= comments
    assert projects == (PROJECTS,)

    assert f"{PROJECTS} projects, {PROJECTS * PER_PROJECT} feedback" in printed
    for heading in ("Feedback per project:", "Top labels:", "Newest feedback:"):
        assert heading in printed
    # Run 2 read the new items, the two edited ones and one per project at its bookmark's
    # instant, nothing more.
    assert (
        f"Run 2 read {NEW + 2 + PROJECTS} items: the {NEW} new ones, plus {2 + PROJECTS}" in printed
    )
    assert "Edited in Usersnap after run 1" in printed
    with duckdb.connect(str(warehouse), read_only=True) as db:
        done = db.sql(
            "SELECT count(*) FROM usersnap.feedback WHERE status_type = 'done'"
            " AND CAST(labels AS VARCHAR) LIKE '%Billing%'"
            " AND feedback_number = 2"
        ).fetchone()
    assert done is not None
    assert done[0] >= 2

    # The deletion part, in PostgreSQL: the erased item is the one deleted row.
    live = PROJECTS * PER_PROJECT + NEW - 1
    assert f"After the next run: {live} live rows (as many as Usersnap has), 1 deleted:" in printed
    erased_row = printed.split("deleted (_sdc_deleted_at set)")[1].splitlines()[1].split()
    assert erased_row[-1] == "True"
    assert f"Rows now: {rows}, distinct feedback_id: {rows}: no duplicates." in printed
    assert "新しいフィードバック" in printed
    assert (meltano.root / "output" / "demo-run-2.log").read_text().count("Run completed") == 1
