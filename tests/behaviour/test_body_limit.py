"""A limit on each answer's body, decompressed: a gzip bomb fails the try, never fills memory."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import typing as t
from pathlib import Path

from harness.reliability import FaultScenario, secrets_in
from harness.singer_run import parse_messages
from tap_usersnap.client import (
    MAX_BODY_BYTES,
    MAX_TRIES,
    UsersnapError,
)

if t.TYPE_CHECKING:
    from fake_usersnap import FakeUsersnap

FILTER = r"POST .*/filter$"
FOREVER = 10**6
TAP = str(Path(sys.executable).with_name("tap-usersnap"))
#: Runs a command and reports its peak RSS (the kernel's figure for the waited-for child).
PEAK_RSS = """
import json, resource, subprocess, sys
done = subprocess.run(sys.argv[1:], capture_output=True, text=True, check=False)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
print(json.dumps({"rc": done.returncode, "out": done.stdout, "err": done.stderr, "peak": peak}))
"""


def too_large(fake: FakeUsersnap, project_id: str) -> str:
    return (
        f"Usersnap's answer to POST /v0.1/projects/{project_id}/feedbacks/filter is larger "
        f"than {MAX_BODY_BYTES // 2**20} MB once decompressed (gzip), the most the tap reads "
        "of one answer"
    )


def test_a_gzip_bomb_of_2_gb_fails_one_try_in_bounded_memory(
    fake: FakeUsersnap, tmp_path: Path
) -> None:
    project_id = next(iter(fake.projects))
    fake.inject("gzip_bomb", inflates_to=2 * 2**30, match=FILTER, skip=1)
    config = tmp_path / "config.json"
    config.write_text(json.dumps(fake.config(page_size=5, concurrency=1, capture_edits=False)))

    done = subprocess.run(
        [sys.executable, "-c", PEAK_RSS, TAP, "--config", str(config)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    run = json.loads(done.stdout)

    assert run["rc"] == 0, run["err"]
    assert "Traceback" not in run["err"]
    assert run["peak"] < 600 * 2**20, f"peak RSS {run['peak'] / 2**20:.0f} MB"
    warnings = [line.split(" | ")[-1] for line in run["err"].splitlines() if "| WARNING" in line]
    assert len(warnings) == 1, warnings
    project = fake.projects[project_id]
    named = f" (project {project['name']!r} ({project_id}))"
    assert warnings[0].startswith(f"{too_large(fake, project_id)}{named}; retrying in ")
    records = [m for m in parse_messages(run["out"]) if m["type"] == "RECORD"]
    delivered = {m["record"]["feedback_id"] for m in records if m["stream"] == "feedback"}
    assert delivered == fake.all_feedback_ids()
    assert not secrets_in(run["out"] + run["err"], fake)


def test_a_gzip_bomb_forever_ends_the_run_in_one_line(
    scenario: FaultScenario, sleeps: list[float]
) -> None:
    fake = scenario.fake
    project_id = next(iter(fake.projects))
    fake.inject("gzip_bomb", inflates_to=2 * 2**30, match=FILTER, skip=1, times=FOREVER)
    played = scenario.play(
        "200 with a 2 GB gzip bomb forever",
        group="unreadable 200 answers",
        fails=UsersnapError,
        message=rf"^{re.escape(too_large(fake, project_id))}; gave up after 6 tries$",
    )
    assert len(sleeps) == MAX_TRIES - 1
    assert len(played.first.ids()) == 5  # the page before the bomb, kept
    warnings = [r for r in scenario.caplog.records if r.levelno == logging.WARNING]
    assert all(r.getMessage().startswith(too_large(fake, project_id)) for r in warnings)
