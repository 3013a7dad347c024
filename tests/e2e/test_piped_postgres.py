"""``tap-usersnap | target-postgres`` by hand: no Meltano, so no catalog and no ``schema:`` extra.

The column types must come from the tap's own schema, so a project that installs the tap
from the Hub definition, or pipes it into a target, gets the tables meltano.yml gets. Uses
the target-postgres that ``meltano install`` put in its plugin venv (meltano.yml's pin).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import typing as t
from pathlib import Path

import pytest

from harness.singer_run import bookmarks

if t.TYPE_CHECKING:
    from fake_usersnap import FakeUsersnap
    from harness.pg_cluster import PostgresCluster

pytestmark = pytest.mark.e2e

TAP = Path(sys.executable).with_name("tap-usersnap")


def target_postgres(meltano_sys_dir: Path) -> Path:
    (executable,) = meltano_sys_dir.glob("**/loaders/target-postgres/venv/bin/target-postgres")
    return executable


def pipe(tmp_path: Path, tap_config: dict[str, t.Any], target: Path, pg: PostgresCluster) -> None:
    """Run the tap and feed its output to the target, as a shell pipe would."""
    tap_file, target_file = tmp_path / "tap.json", tmp_path / "target.json"
    tap_file.write_text(json.dumps(tap_config))
    target_file.write_text(json.dumps(pg.target_config()))
    tap = subprocess.run(
        [str(TAP), "--config", str(tap_file)], capture_output=True, check=True, timeout=120
    )
    loaded = subprocess.run(
        [str(target), "--config", str(target_file)],
        input=tap.stdout,
        capture_output=True,
        check=False,
        timeout=300,
    )
    assert loaded.returncode == 0, loaded.stderr.decode()[-3000:]


def test_piped_tap_gives_jsonb_arrays_of_objects_and_text_arrays_of_strings(
    tmp_path: Path, fake: FakeUsersnap, meltano_sys_dir: Path, warehouse: PostgresCluster
) -> None:
    pipe(tmp_path, fake.config(), target_postgres(meltano_sys_dir), warehouse)

    types = dict(
        warehouse.query(
            "SELECT column_name, udt_name FROM information_schema.columns"
            " WHERE table_schema = 'usersnap' AND table_name = 'feedback'"
            " AND column_name IN ('labels', 'ordered_inputs', 'conversation', 'label_names')"
        )
    )
    assert types == {
        "labels": "jsonb",
        "ordered_inputs": "jsonb",
        "conversation": "_text",
        "label_names": "_text",
    }
    # The README's queries work on them.
    items = {i["feedback_id"]: i for items in fake.feedback.values() for i in items}
    bugs = {
        fid
        for fid, item in items.items()
        if any(lb["identifier"] == "bug" for lb in item["labels"])
    }
    assert bugs, "the sample has items labelled bug"
    rows = warehouse.query(
        "SELECT feedback_id FROM usersnap.feedback WHERE labels @> %s::jsonb",
        json.dumps([{"identifier": "bug"}]),
    )
    assert {fid for (fid,) in rows} == bugs
    names = warehouse.query(
        "SELECT f.feedback_id, array_agg(e ->> 'name' ORDER BY n)"
        " FROM usersnap.feedback f, jsonb_array_elements(f.labels) WITH ORDINALITY AS x(e, n)"
        " GROUP BY f.feedback_id"
    )
    expected = {fid: [lb["name"] for lb in item["labels"]] for fid, item in items.items()}
    assert dict(names) == {fid: labels for fid, labels in expected.items() if labels}
    texts = warehouse.query(
        "SELECT feedback_id, jsonb_array_length(ordered_inputs), label_names FROM usersnap.feedback"
    )
    assert {fid: (n, names) for fid, n, names in texts} == {
        fid: (len(item["ordered_inputs"]), expected[fid]) for fid, item in items.items()
    }


def test_piped_flattened_tap_loads_every_column(
    tmp_path: Path, fake: FakeUsersnap, meltano_sys_dir: Path, warehouse: PostgresCluster
) -> None:
    project = next(iter(fake.projects))
    bare = fake.add_feedback(project)  # client, screenshot and screen_recording null
    recorded = fake.add_feedback(
        project,
        screen_recording={"file_resource_url": "https://r/1.webm", "mime_type": "video/webm"},
    )
    config = fake.config(flattening_enabled=True, flattening_max_depth=1)
    pipe(tmp_path, config, target_postgres(meltano_sys_dir), warehouse)

    rows = dict(
        warehouse.query(
            "SELECT feedback_id, screen_recording__mime_type FROM usersnap.feedback"
            " WHERE feedback_id IN (%s, %s)",
            bare["feedback_id"],
            recorded["feedback_id"],
        )
    )
    assert rows == {bare["feedback_id"]: None, recorded["feedback_id"]: "video/webm"}
    columns = {
        name
        for (name,) in warehouse.query(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = 'usersnap' AND table_name = 'feedback'"
        )
    }
    assert {"client__url", "screenshot__annotated_image_url", "labels"} <= columns
    assert not {"client", "screenshot", "screen_recording"} & columns


def readme_state_loop() -> str:
    """The README's bare-tap lines that keep the state between runs (docs/ repeats them)."""
    repo = Path(__file__).resolve().parents[2]
    readme = (repo / "README.md").read_text()
    section = readme[readme.index("\n## Without Meltano\n") :]
    (block,) = re.findall(r"```bash\n(.*?)```", section.split("\n## ", 2)[1], re.S)
    assert block in (repo / "docs" / "state-and-deletes.md").read_text()
    return block


def test_the_readmes_state_loop_works_from_the_first_run(
    tmp_path: Path, fake: FakeUsersnap, meltano_sys_dir: Path, warehouse: PostgresCluster
) -> None:
    """No state.json at first; each run leaves the last committed state for the next one."""
    repo = Path(__file__).resolve().parents[2]
    sample = json.loads((repo / "config.sample.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**sample, **fake.config()}))
    (tmp_path / "target.json").write_text(json.dumps(warehouse.target_config()))
    path = os.pathsep.join(
        [str(TAP.parent), str(target_postgres(meltano_sys_dir).parent), os.environ["PATH"]]
    )

    def run_the_loop() -> dict[str, t.Any]:
        subprocess.run(
            ["bash", "-eu", "-c", readme_state_loop()],
            cwd=tmp_path,
            env={**os.environ, "PATH": path},
            check=True,
            capture_output=True,
            timeout=300,
        )
        return t.cast("dict[str, t.Any]", json.loads((tmp_path / "state.json").read_text()))

    def newest() -> dict[str, str]:
        return {pid: max(i["created_at"] for i in items) for pid, items in fake.feedback.items()}

    assert not (tmp_path / "state.json").exists()
    first = run_the_loop()
    assert bookmarks(first) == newest()
    assert warehouse.query("SELECT count(*) FROM usersnap.feedback") == [(3 * 12,)]

    project = next(iter(fake.projects))
    added = fake.add_feedback(project)
    second = run_the_loop()

    assert bookmarks(second) == newest()
    assert bookmarks(second)[project] == added["created_at"] != bookmarks(first)[project]
    loaded = warehouse.query("SELECT feedback_id FROM usersnap.feedback")
    assert {fid for (fid,) in loaded} == fake.all_feedback_ids()
    assert len(loaded) == 3 * 12 + 1
