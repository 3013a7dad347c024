"""The README's Quick start, command by command, as a new user types it.

Every command of its four ``bash`` blocks runs through bash in a fresh directory, in order,
with only what a user would fill in replaced: the credentials (the fake API's), the
database's address (a throwaway PostgreSQL), and the raw GitHub URLs (this checkout's
files, as GitHub serves them). The secrets are typed on stdin to the ``read -rs`` lines.
The one step a user with a checkout does by hand, pointing ``pip_url`` at it, is done where
the block's comment says; the API's address comes as ``TAP_USERSNAP_API_URL``, the way the
README says settings can. Then the warehouse holds every item, and the schedule exists.
"""

from __future__ import annotations

import os
import re
import subprocess
import typing as t

import pytest
import yaml

from harness.meltano_project import MELTANO, REPO, meltano_env, state_id
from harness.pg_cluster import find_pg_bindir

if t.TYPE_CHECKING:
    from pathlib import Path

    from fake_usersnap import FakeUsersnap
    from harness.pg_cluster import PostgresCluster

pytestmark = pytest.mark.e2e

README = (REPO / "README.md").read_text()
RAW = "https://raw.githubusercontent.com/tap-usersnap/tap-usersnap/main/"
HUB = yaml.safe_load((REPO / "hub" / "tap-usersnap.yml").read_text())


def quick_start_blocks() -> list[str]:
    start = README.index("\n## Quick start into PostgreSQL\n")
    text = README[start : README.index("\n## ", start + 1)]
    blocks = re.findall(r"^( *)```bash\n(.*?)^\1```$", text, re.M | re.S)
    return ["\n".join(line.strip() for line in body.splitlines()) for _, body in blocks]


def commands(block: str) -> list[str]:
    """Each command of a block: continuation lines joined, comment-only lines kept apart."""
    joined = re.sub(r"\\\n", " ", block)
    return [line for line in joined.splitlines() if line.strip()]


def test_the_quick_start_as_written(
    tmp_path: Path, fake: FakeUsersnap, warehouse: PostgresCluster
) -> None:
    blocks = quick_start_blocks()
    assert len(blocks) == 4
    filled_in = {
        RAW: f"{REPO}/",
        "<JWT ID>": fake.jwt_id,
        "host db.example.com": f"host {warehouse.host}",
        "-h db.example.com": f"-h {warehouse.host}",
        "port 5432": f"port {warehouse.port}",
        "-p 5432": f"-p {warehouse.port}",
        "user loader": f"user {warehouse.user}",
        "-U loader": f"-U {warehouse.user}",
        "database warehouse": f"database {warehouse.dbname}",
        "-d warehouse": f"-d {warehouse.dbname}",
    }
    text = "\n".join(blocks)
    assert [key for key in filled_in if key not in text] == []
    for key, value in filled_in.items():
        text = text.replace(key, value)

    env = meltano_env(
        PATH=os.pathsep.join([str(MELTANO.parent), str(find_pg_bindir()), os.environ["PATH"]]),
        TAP_USERSNAP_API_URL=fake.url,
        PGPASSWORD=warehouse.password,
    )
    typed = {
        "tap-usersnap jwt_secret": fake.jwt_secret,
        "target-postgres password": warehouse.password,
    }
    cwd, outputs = tmp_path, {}
    for command in commands(text):
        if command.startswith("#"):
            if "pip_url" in command:  # what a user with a checkout does here
                point_pip_url_at_this_checkout(cwd / "meltano.yml")
            continue
        secret = next((s for key, s in typed.items() if key in command), None)
        assert ("read -rs" in command) == (secret is not None), command
        completed = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", command],
            cwd=cwd,
            env=env,
            input=f"{secret}\n" if secret else "",
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        output = completed.stdout + completed.stderr
        assert completed.returncode == 0, f"{command}\n{output[-3000:]}"
        outputs[command.split("#")[0].strip()] = output
        if command.endswith("&& cd usersnap-elt"):
            cwd = cwd / "usersnap-elt"

    ran = set(outputs)
    assert {"meltano install", "meltano run tap-usersnap target-postgres"} <= ran
    assert {"meltano state list", "meltano run usersnap-to-postgres"} <= ran
    assert "Plugin configuration is valid" in outputs["meltano config test tap-usersnap"]
    listed = outputs["meltano config list tap-usersnap"]
    assert "jwt_secret" in listed
    assert fake.jwt_secret not in listed
    counts = re.findall(r"^ *(.+?) +\| +(\d+)$", outputs[psql_command(outputs)], re.M)
    assert dict(counts) == {
        project["name"]: str(len(fake.feedback[pid])) for pid, project in fake.projects.items()
    }
    assert state_id("tap-usersnap", "target-postgres") in outputs["meltano state list"]
    assert "usersnap-daily" in outputs["meltano schedule list"]

    loaded = warehouse.query("SELECT feedback_id FROM usersnap.feedback")
    assert {row[0] for row in loaded} == fake.all_feedback_ids()
    assert len(loaded) == len(fake.all_feedback_ids()) == 3 * 12


def point_pip_url_at_this_checkout(meltano_yml: Path) -> None:
    """The README's Installation table: ``pip_url: /path/to/tap-usersnap``."""
    text = meltano_yml.read_text()
    line = f"    pip_url: {HUB['pip_url']}\n"
    assert text.count(line) == 1
    meltano_yml.write_text(text.replace(line, f"    pip_url: {REPO}\n"))


def psql_command(outputs: dict[str, str]) -> str:
    (command,) = [c for c in outputs if c.startswith("psql ")]
    return command


def test_the_installation_pins_the_meltano_that_runs_here() -> None:
    version = subprocess.run(
        [str(MELTANO), "--version"], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    assert f"# {version.strip()}\n" in README  # "meltano, version 4.4.1", as the README shows
