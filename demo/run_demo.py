"""`make demo`: Usersnap feedback into a DuckDB warehouse with Meltano, no credentials needed.

1. Start the sample Usersnap API (``fake_usersnap``, the tests' fake) on 127.0.0.1.
2. ``meltano run tap-usersnap target-duckdb`` into ``output/warehouse.duckdb``; print what
   landed, queried from the warehouse.
3. Add feedback at the API and run again: only feedback created since the first run arrives.
4. Delete an item at the API (a visitor's erasure request) and show it leave a PostgreSQL
   warehouse (target-duckdb ignores ACTIVATE_VERSION; skipped without PostgreSQL binaries).

Meltano's own logs go to ``output/demo-run-<n>.log``. The API runs in this process, so nothing
keeps running afterwards. The API's credentials reach Meltano only as environment variables.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import sys
import time
import typing as t
import unicodedata

import duckdb

from fake_usersnap import FakeUsersnap, SampleData
from harness.meltano_project import (
    REPO,
    MeltanoError,
    MeltanoProject,
    meltano_env,
    state_id,
    usersnap_env,
)
from harness.pg_cluster import PostgresCluster, PostgresClusterError, find_pg_bindir
from harness.singer_run import bookmarks

if t.TYPE_CHECKING:
    from pathlib import Path

LOADER = "target-duckdb"
MAX_CELL = 50  # characters shown of a comment
NEW_COMMENTS = (
    "Neu seit dem ersten Lauf: der Export hängt bei 99 % ⏳",
    "Nouveau : le bouton « Enregistrer » est caché sur mobile",
    "新しいフィードバック、保存ボタンが反応しません",
    "Added after the first sync 👋, the search is much faster now",
)

FEEDBACK_PER_PROJECT = """
    SELECT project_name, count(*) AS items,
           count(*) FILTER (WHERE status_type = 'open') AS open,
           round(avg(rating), 2) AS avg_rating
    FROM usersnap.feedback
    LEFT JOIN (
        SELECT feedback_id AS rated_id, avg(CAST(input->>'value' AS INTEGER)) AS rating
        FROM usersnap.feedback, unnest(CAST(ordered_inputs AS JSON[])) AS inputs(input)
        WHERE input->>'label' = 'Rating'
        GROUP BY rated_id
    ) AS ratings ON rated_id = feedback_id
    GROUP BY project_name ORDER BY project_name
"""
TOP_LABELS = """
    SELECT label->>'name' AS label, count(*) AS items
    FROM usersnap.feedback, unnest(CAST(labels AS JSON[])) AS labelled(label)
    GROUP BY 1 ORDER BY items DESC, label LIMIT 5
"""
NEWEST = """
    SELECT strftime(created_at, '%Y-%m-%d %H:%M:%S') AS created_at, project_name,
           coalesce((SELECT string_agg(l->>'identifier', ',')
                     FROM unnest(CAST(labels AS JSON[])) AS ls(l)), '') AS labels,
           ordered_inputs->0->>'text_value' AS comment
    FROM usersnap.feedback ORDER BY created_at DESC LIMIT {limit}
"""


@dataclasses.dataclass
class Demo:
    """One demo: a Meltano project, the sample API, and where output is printed."""

    project: MeltanoProject
    api: FakeUsersnap
    out: t.TextIO
    runs: int = 0

    @property
    def warehouse(self) -> Path:
        """meltano.yml's target-duckdb ``path`` for this project."""
        return self.project.root / "output" / "warehouse.duckdb"

    def say(self, text: str = "") -> None:
        """Print a line now (flushed, so a slow run never looks stuck)."""
        self.out.write(text + "\n")
        self.out.flush()

    def meltano_run(self, *args: str, env: dict[str, str] | None = None) -> float:
        """``meltano run ARGS`` with the API's settings; its log goes to a file."""
        self.runs += 1
        log = self.project.root / "output" / f"demo-run-{self.runs}.log"
        started = time.monotonic()
        try:
            environment = {**usersnap_env(self.api.config()), **(env or {})}
            done = self.project.run("run", *args, env=environment)
        except MeltanoError as exc:
            log.write_text(str(exc))
            raise
        log.write_text(done.stdout + done.stderr)
        return time.monotonic() - started

    def query(self, sql: str) -> list[tuple[t.Any, ...]]:
        """Read the warehouse; read-only, so the target's file is never locked by the demo."""
        with duckdb.connect(str(self.warehouse), read_only=True) as db:
            return db.sql(sql).fetchall()

    def table(self, headers: tuple[str, ...], rows: list[tuple[t.Any, ...]]) -> None:
        """Print rows as aligned columns."""
        cells = [headers, *[tuple(_cell(v) for v in row) for row in rows]]
        widths = [max(_width(row[i]) for row in cells) for i in range(len(headers))]
        for row in cells:
            padded = (v + " " * (w - _width(v)) for v, w in zip(row, widths, strict=True))
            self.say("  " + "  ".join(padded).rstrip())

    def bookmarks(self) -> dict[str, str]:
        """``{project name: bookmark}`` from the state Meltano stored for this pipeline."""
        state = self.project.state(state_id("tap-usersnap", LOADER))
        names = {pid: p["name"] for pid, p in self.api.projects.items()}
        return {names[pid]: value for pid, value in bookmarks(state).items() if pid in names}

    def per_project(self) -> dict[str, int]:
        """``{project name: feedback rows}`` in the warehouse."""
        return dict(self.query("SELECT project_name, count(*) FROM usersnap.feedback GROUP BY 1"))


def run_demo(
    project: MeltanoProject, out: t.TextIO, *, projects: int = 4, per_project: int = 75
) -> None:
    """The whole demo, on any Meltano project with meltano.yml's plugins."""
    with FakeUsersnap() as api:
        demo = Demo(project, api, out)
        demo.warehouse.parent.mkdir(exist_ok=True)
        demo.warehouse.unlink(missing_ok=True)
        demo.say("== Setting up: meltano install tap-usersnap target-duckdb")
        project.run("install", "tap-usersnap", LOADER)

        api.seed(projects=projects, per_project=per_project)
        total = len(api.all_feedback_ids())
        demo.say(f"== Sample Usersnap API on {api.url}: {projects} projects, {total} feedback")
        demo.say()
        demo.say(f"== Run 1: meltano run tap-usersnap {LOADER} (full refresh)")
        seconds = demo.meltano_run("--full-refresh", "tap-usersnap", LOADER)
        demo.say(f"   done in {seconds:.1f}s; landed in {demo.warehouse.relative_to(project.root)}")
        first_counts = demo.per_project()
        report_first_run(demo)

        new_ids = add_new_feedback(api)
        edited = edit_old_feedback(api)
        demo.say()
        demo.say(f"== {len(new_ids)} new feedback items arrive at the API")
        demo.say(f"== {len(edited)} older items are edited in Usersnap: closed, labelled Billing")
        bookmarks_before = demo.bookmarks()
        second_started = dt.datetime.now()  # target-duckdb stamps local time
        demo.say(f"== Run 2: meltano run tap-usersnap {LOADER} (incremental, from the state)")
        seconds = demo.meltano_run("tap-usersnap", LOADER)
        demo.say(f"   done in {seconds:.1f}s")
        report_second_run(demo, first_counts, bookmarks_before, new_ids, second_started)
        report_edits(demo, edited)
        show_deletion(demo)
    demo.say()
    demo.say("== Sample API stopped; nothing is left running.")
    demo.say(
        "   Warehouse: output/warehouse.duckdb (usersnap.feedback, usersnap.projects);"
        " Meltano logs: output/demo-run-*.log"
    )


def report_first_run(demo: Demo) -> None:
    """What a data team would look at first: volumes, labels, the latest items, the state."""
    demo.say()
    demo.say("Feedback per project:")
    demo.table(("project", "items", "open", "avg rating"), demo.query(FEEDBACK_PER_PROJECT))
    demo.say()
    demo.say("Top labels:")
    demo.table(("label", "items"), demo.query(TOP_LABELS))
    demo.say()
    demo.say("Newest feedback:")
    demo.table(
        ("created_at", "project", "labels", "comment"),
        demo.query(NEWEST.format(limit=5)),
    )
    demo.say()
    demo.say("State Meltano keeps for the next run (newest created_at per project):")
    demo.table(("project", "bookmark"), sorted(demo.bookmarks().items()))


def add_new_feedback(api: FakeUsersnap) -> list[str]:
    """A few realistic items in some projects, created after everything already there."""
    sample = SampleData(api, random.Random(2024))  # noqa: S311 - sample data, not secrets
    project_ids = list(api.projects)
    new_ids = []
    for index, comment in enumerate(NEW_COMMENTS * 2):
        fields = sample.feedback_fields()
        fields["comment"] = comment
        fields["ordered_inputs"][0].update(text_value=comment, value=comment)
        target = project_ids[index % max(1, len(project_ids) - 1)]  # the last gets none
        new_ids.append(api.add_feedback(target, **fields)["feedback_id"])
    return new_ids


def edit_old_feedback(api: FakeUsersnap) -> dict[str, str]:
    """Close and label an early item in two projects: ``{feedback_id: status before}``."""
    billing = next(label for label in SampleData.LABELS if label[0] == "billing")
    identifier, name, color = billing
    edited = {}
    for project_id in list(api.projects)[:2]:
        item = sorted(api.feedback[project_id], key=lambda i: i["created_at"])[1]
        edited[item["feedback_id"]] = item["status_type"]
        label = {
            "company_label_id": "billing",
            "identifier": identifier,
            "name": name,
            "color": color,
        }
        api.update_feedback(item["feedback_id"], status_type="done", labels=[label])
    return edited


def report_edits(demo: Demo, edited: dict[str, str]) -> None:
    """Show that the edits reached the warehouse, in place (change capture)."""
    ids = ", ".join(f"'{feedback_id}'" for feedback_id in edited)
    rows = demo.query(
        "SELECT feedback_id, project_name, feedback_number, status_type,"  # noqa: S608
        " (SELECT string_agg(l->>'name', ',') FROM unnest(CAST(labels AS JSON[])) AS ls(l)),"
        f" count(*) OVER (PARTITION BY feedback_id) FROM usersnap.feedback"
        f" WHERE feedback_id IN ({ids}) ORDER BY project_name"
    )
    demo.say()
    demo.say("Edited in Usersnap after run 1, now in the warehouse (one row each, updated):")
    demo.table(
        ("project", "number", "status before", "status now", "labels now", "rows"),
        [
            (project, number, edited[fid], status, labels, n)
            for fid, project, number, status, labels, n in rows
        ],
    )


def report_second_run(
    demo: Demo,
    first_counts: dict[str, int],
    bookmarks_before: dict[str, str],
    new_ids: list[str],
    started: dt.datetime,
) -> None:
    """Show that run 2 added exactly the new feedback and moved the bookmarks on."""
    counts = demo.per_project()
    demo.say()
    demo.say("Feedback per project, before -> after:")
    demo.table(
        ("project", "run 1", "run 2", "new"),
        [
            (name, first_counts.get(name, 0), n, n - first_counts.get(name, 0))
            for name, n in sorted(counts.items())
        ],
    )
    ((rows, distinct),) = demo.query(
        "SELECT count(*), count(DISTINCT feedback_id) FROM usersnap.feedback"
    )
    written = {
        fid
        for (fid,) in demo.query(
            f"SELECT feedback_id FROM usersnap.feedback WHERE _sdc_batched_at >= '{started}'"  # noqa: S608
        )
    }
    again = len(written - set(new_ids))
    demo.say()
    demo.say(
        f"Run 2 read {len(written)} items: the {len(written & set(new_ids))} new ones, plus {again}"
        " already stored (edited since run 1, or created at a bookmark's exact instant and read"
        " again on purpose so none sharing it is lost; upserted on feedback_id)."
    )
    demo.say(f"Rows now: {rows}, distinct feedback_id: {distinct}: no duplicates.")
    demo.say()
    demo.say("The new feedback:")
    demo.table(
        ("created_at", "project", "labels", "comment"),
        demo.query(NEWEST.format(limit=len(new_ids))),
    )
    demo.say()
    demo.say("Bookmarks, before -> after:")
    after = demo.bookmarks()
    demo.table(
        ("project", "run 1", "run 2"),
        [(name, bookmarks_before.get(name, "-"), value) for name, value in sorted(after.items())],
    )


def show_deletion(demo: Demo) -> None:
    """An item deleted in Usersnap leaves a warehouse that applies ACTIVATE_VERSION.

    target-duckdb 0.8.0 ignores ACTIVATE_VERSION, so this part loads into a throwaway
    PostgreSQL with target-postgres (MeltanoLabs), which marks the row ``_sdc_deleted_at``.
    """
    demo.say()
    try:
        bindir = find_pg_bindir()
    except PostgresClusterError:
        demo.say("== Deletes: skipped (they need the PostgreSQL server binaries installed)")
        return
    demo.say("== Deletes: target-duckdb ignores ACTIVATE_VERSION, so they are shown in a")
    demo.say("   throwaway PostgreSQL with target-postgres: meltano install target-postgres")
    demo.project.run("install", "target-postgres")
    with PostgresCluster(dbname="warehouse", bindir=bindir) as pg:
        env = {
            "TARGET_POSTGRES_HOST": pg.host,
            "TARGET_POSTGRES_PORT": str(pg.port),
            "TARGET_POSTGRES_PASSWORD": pg.password,
        }
        demo.meltano_run("tap-usersnap", "target-postgres", env=env)
        project_id = next(iter(demo.api.projects))
        erased = sorted(demo.api.feedback[project_id], key=lambda i: i["created_at"])[0]
        number = erased["feedback_number"]
        demo.api.delete_feedback(erased["feedback_id"])
        name = demo.api.projects[project_id]["name"]
        demo.say(f"== {name} #{number} is deleted in Usersnap (a visitor asked to be erased)")
        demo.meltano_run("tap-usersnap", "target-postgres", env=env)
        ((live, gone),) = pg.query(
            "SELECT count(*) FILTER (WHERE _sdc_deleted_at IS NULL),"
            " count(*) FILTER (WHERE _sdc_deleted_at IS NOT NULL) FROM usersnap.feedback"
        )
        rows = pg.query(
            "SELECT feedback_number, _sdc_deleted_at IS NOT NULL FROM usersnap.feedback"
            " WHERE feedback_id = %s",
            erased["feedback_id"],
        )
    demo.say(f"   After the next run: {live} live rows (as many as Usersnap has), {gone} deleted:")
    demo.table(("project", "number", "deleted (_sdc_deleted_at set)"), [(name, *r) for r in rows])
    demo.say("   With target-postgres's hard_delete: true the row is removed instead.")


def _cell(value: t.Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    text = "" if value is None else str(value).replace("\n", " ")
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def _width(text: str) -> int:
    """Terminal columns: CJK characters and most emoji take two."""
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


def main() -> int:
    """Run the demo on this repository's Meltano project."""
    try:
        run_demo(MeltanoProject(REPO, meltano_env()), sys.stdout)
    except MeltanoError as exc:
        sys.stderr.write(f"demo failed: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
