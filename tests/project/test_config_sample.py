"""config.sample.json, the bare tap's starting point: every setting, no secret, and it works.

The README tells a user without Meltano to copy it to config.json and fill in the two
credentials; these check that what they copy passes the tap's checks and, with only the
credentials and the API's address changed, syncs everything.
"""

from __future__ import annotations

import json
import subprocess
import sys
import typing as t

from harness.meltano_project import REPO
from harness.singer_run import run_cli
from tap_usersnap.settings import TAP_SETTINGS

if t.TYPE_CHECKING:
    from fake_usersnap import FakeUsersnap

SAMPLE_FILE = REPO / "config.sample.json"
SAMPLE: dict[str, t.Any] = json.loads(SAMPLE_FILE.read_text())


def credentials(fake: FakeUsersnap) -> dict[str, str]:
    """What a user fills in, and the API's address: the fake's."""
    return {key: fake.config()[key] for key in ("jwt_id", "jwt_secret", "api_url")}


def about_settings() -> dict[str, t.Any]:
    about = json.loads(run_cli("--about", "--format=json").stdout)
    return t.cast("dict[str, t.Any]", about["settings"])


def test_it_names_every_setting_of_the_tap_with_its_default() -> None:
    assert list(SAMPLE) == list(TAP_SETTINGS)
    properties = about_settings()["properties"]
    defaults = {
        name: properties[name]["default"] for name in SAMPLE if "default" in properties[name]
    }
    assert defaults
    assert {name: SAMPLE[name] for name in defaults} == defaults


def test_secrets_are_placeholders() -> None:
    settings = about_settings()
    secret = [name for name, schema in settings["properties"].items() if schema.get("secret")]
    assert secret == ["jwt_secret"]
    for name in settings["required"]:  # jwt_id, jwt_secret: to fill in
        assert SAMPLE[name].startswith("<"), name
        assert SAMPLE[name].endswith(">"), name


def test_discover_accepts_the_sample_as_it_is() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "tap_usersnap", "--config", str(SAMPLE_FILE), "--discover"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    streams = {s["tap_stream_id"] for s in json.loads(completed.stdout)["streams"]}
    assert streams == {"projects", "feedback", "project_assignees"}


def test_discover_does_not_check_settings_a_run_does(fake: FakeUsersnap) -> None:
    """So a copy with a wrong value passes ``--discover``, and a run refuses it at once."""
    broken = {**SAMPLE, **credentials(fake), "capture_edits": "sometimes"}
    assert run_cli("--discover", config=broken).returncode == 0

    result = run_cli(config=broken)

    assert result.returncode == 1
    assert "in config['capture_edits']" in result.stderr
    assert fake.requests == []  # stopped before any request


def test_with_only_the_credentials_filled_in_a_run_syncs_everything(fake: FakeUsersnap) -> None:
    result = run_cli(config={**SAMPLE, **credentials(fake)})

    assert result.returncode == 0, result.stderr[-3000:]
    assert set(result.ids()) == fake.all_feedback_ids()
    assert len(fake.all_feedback_ids()) == 3 * 12
    assert {r["project_id"] for r in result.records("projects")} == set(fake.projects)
