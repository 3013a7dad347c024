"""``meltano run tap-usersnap target-postgres`` against the fake, and what it loaded.

Shared by the end-to-end tests that load into a real PostgreSQL (``tests/e2e/``).
"""

from __future__ import annotations

import typing as t

from fake_usersnap import parse_iso
from harness.meltano_project import usersnap_env

if t.TYPE_CHECKING:
    import subprocess

    from fake_usersnap import FakeUsersnap
    from harness.meltano_project import MeltanoProject
    from harness.pg_cluster import PostgresCluster

#: The feedback columns target-postgres types as ``jsonb``.
JSONB_COLUMNS = {"labels", "ordered_inputs", "custom_data", "client", "screenshot"}
#: The feedback columns :func:`loaded_rows` reads.
FEEDBACK_COLUMNS = (
    "feedback_id, project_id, project_name, created_at, updated_at, status_type, priority, "
    "email, labels, ordered_inputs, custom_data, client, screenshot"
)


def run_pipeline(
    meltano: MeltanoProject,
    fake: FakeUsersnap,
    pg: PostgresCluster,
    *,
    check: bool = True,
    **settings: str,
) -> subprocess.CompletedProcess[str]:
    """``meltano run tap-usersnap target-postgres`` with every setting from the environment."""
    env = {
        **usersnap_env(fake.config()),
        "TARGET_POSTGRES_HOST": pg.host,
        "TARGET_POSTGRES_PORT": str(pg.port),
        "TARGET_POSTGRES_USER": pg.user,
        "TARGET_POSTGRES_PASSWORD": pg.password,
        "TARGET_POSTGRES_DATABASE": pg.dbname,
        **settings,
    }
    return meltano.run("run", "tap-usersnap", "target-postgres", env=env, check=check)


def fake_items(fake: FakeUsersnap) -> dict[str, dict[str, t.Any]]:
    """Every item the fake holds, by feedback_id."""
    return {item["feedback_id"]: item for items in fake.feedback.values() for item in items}


def loaded_rows(pg: PostgresCluster) -> dict[str, dict[str, t.Any]]:
    """The loaded feedback rows (:data:`FEEDBACK_COLUMNS`), by feedback_id."""
    names = [name.strip() for name in FEEDBACK_COLUMNS.split(",")]
    rows = pg.query(f"SELECT {FEEDBACK_COLUMNS} FROM usersnap.feedback")  # noqa: S608
    return {row[0]: dict(zip(names, row, strict=True)) for row in rows}


def naive_utc(value: str) -> t.Any:
    """What a ``timestamp without time zone`` column holds for an ISO timestamp (UTC)."""
    return parse_iso(value).replace(tzinfo=None)
