"""The README's install without Meltano: a tool install of the package, then the CLI runs.

``uv tool install`` from this checkout stands in for the README's git URL (no network to
GitHub here); the package, its dependencies from PyPI and its entry point are the same.
"""

from __future__ import annotations

import json
import os
import subprocess
import typing as t

import pytest

import tap_usersnap
from fake_usersnap.meltano_project import REPO
from fake_usersnap.singer_run import parse_messages

if t.TYPE_CHECKING:
    from pathlib import Path

    from fake_usersnap import FakeUsersnap

pytestmark = pytest.mark.e2e

UV = REPO / ".uv" / "bin" / "uv"


def test_a_tool_install_gives_a_working_tap_usersnap(tmp_path: Path, fake: FakeUsersnap) -> None:
    env = {
        **os.environ,
        "UV_TOOL_DIR": str(tmp_path / "tools"),
        "UV_TOOL_BIN_DIR": str(tmp_path / "bin"),
        "UV_PYTHON_DOWNLOADS": "never",
    }
    subprocess.run([str(UV), "tool", "install", str(REPO)], env=env, check=True, timeout=600)
    tap = tmp_path / "bin" / "tap-usersnap"

    about = subprocess.run(
        [str(tap), "--about", "--format=json"], capture_output=True, text=True, check=True
    )
    assert json.loads(about.stdout)["version"] == tap_usersnap.__version__

    config = tmp_path / "config.json"
    config.write_text(json.dumps(fake.config()))
    run = subprocess.run(
        [str(tap), "--config", str(config)], capture_output=True, text=True, check=True
    )
    records = [m for m in parse_messages(run.stdout) if m["type"] == "RECORD"]
    ids = {m["record"]["feedback_id"] for m in records if m["stream"] == "feedback"}
    assert ids == fake.all_feedback_ids()
