"""Every kind of setting from ``TAP_USERSNAP_*`` through Meltano, and the log settings.

The extractor is declared as hub/tap-usersnap.yml declares it (what ``meltano add`` gives a
user), installed from this checkout. ``meltano invoke --dump=config`` shows the config.json
Meltano writes for the tap, where a ``decimal`` read from the environment used to crash it
("Object of type Decimal is not JSON serializable"); a run against the fake shows the tap
took each value. Then the ways docs/troubleshooting.md gives to quiet the METRIC lines.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import typing as t

import pytest
import yaml

from harness.meltano_project import REPO, MeltanoProject, usersnap_env
from harness.singer_run import parse_messages

if t.TYPE_CHECKING:
    from fake_usersnap import FakeUsersnap

pytestmark = pytest.mark.e2e

HUB = yaml.safe_load((REPO / "hub" / "tap-usersnap.yml").read_text())
TROUBLESHOOTING = (REPO / "docs" / "troubleshooting.md").read_text()


@pytest.fixture
def project(meltano: MeltanoProject) -> MeltanoProject:
    """The repository's project with the extractor's settings as the Hub file has them."""
    path = meltano.root / "meltano.yml"
    config = yaml.safe_load(path.read_text())
    (extractor,) = config["plugins"]["extractors"]
    extractor["settings"] = HUB["settings"]
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return meltano


def instant(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def settings_of_every_kind(fake: FakeUsersnap) -> dict[str, t.Any]:
    """Two of the three projects, from the median instant on, and a value for every kind."""
    chosen = sorted(fake.feedback)[:2]
    created = sorted(item["created_at"] for pid in chosen for item in fake.feedback[pid])
    kinds = {s["name"]: s["kind"] for s in HUB["settings"]}
    settings = {
        **fake.config(),  # jwt_id, api_url: string; jwt_secret: password
        "project_ids": chosen,  # array
        "start_date": created[len(created) // 2],  # date_iso8601
        "page_size": 5,  # integer
        "capture_edits": False,  # boolean
        "capture_deletes": False,
        "max_delete_percent": 80,
        "concurrency": 2,
        "request_timeout": 30,  # the one that was `decimal`
        "stream_maps": {"feedback": {"email": "__NULL__"}},  # object
        "stream_map_config": {"salt": "x"},
        "flattening_enabled": False,
        "flattening_max_depth": 1,
        "flattening_separator": "__",
    }
    assert {kinds[name] for name in settings} >= {
        "string", "password", "array", "date_iso8601", "integer", "boolean", "object"
    }  # fmt: skip
    return settings


def test_every_kind_of_setting_from_the_environment_reaches_the_tap(
    fake: FakeUsersnap, project: MeltanoProject
) -> None:
    settings = settings_of_every_kind(fake)
    env = usersnap_env(settings)
    assert env["TAP_USERSNAP_REQUEST_TIMEOUT"] == "30"
    assert env["TAP_USERSNAP_CAPTURE_EDITS"] == "false"

    dumped = json.loads(project.run("invoke", "--dump=config", "tap-usersnap", env=env).stdout)

    assert instant(dumped.pop("start_date")) == instant(settings.pop("start_date"))
    assert {name: dumped[name] for name in settings} == settings  # typed: 5, False, [...]

    run = project.run("invoke", "tap-usersnap", env=env)
    records = [m for m in parse_messages(run.stdout) if m["type"] == "RECORD"]
    feedback = [m["record"] for m in records if m["stream"] == "feedback"]
    projects = {m["record"]["project_id"] for m in records if m["stream"] == "projects"}
    since = instant(env["TAP_USERSNAP_START_DATE"])
    assert projects == set(settings["project_ids"])
    assert {r["feedback_id"] for r in feedback} == {
        item["feedback_id"]
        for pid in settings["project_ids"]
        for item in fake.feedback[pid]
        if instant(item["created_at"]) >= since
    }
    assert all("email" not in record for record in feedback)  # the stream map
    activations = [m for m in parse_messages(run.stdout) if m["type"] == "ACTIVATE_VERSION"]
    assert activations == []  # capture_deletes: false (counts still find late items)
    pages = fake.requests_to(r"^POST .*/feedbacks/filter$")
    assert pages
    assert {request.params.get("limit") for request in pages} == {"5"}


def test_loglevel_warning_quiets_the_metric_lines_and_nothing_else(
    fake: FakeUsersnap, project: MeltanoProject
) -> None:
    env = usersnap_env(fake.config())
    (command,) = [
        b for b in re.findall(r"```bash\n(.*?)```", TROUBLESHOOTING, re.S) if "LOGLEVEL" in b
    ]
    assert (
        command.strip() == "TAP_USERSNAP_LOGLEVEL=warning meltano run tap-usersnap target-postgres"
    )

    default = project.run("invoke", "tap-usersnap", env=env)
    quiet = project.run("invoke", "tap-usersnap", env={**env, "TAP_USERSNAP_LOGLEVEL": "warning"})

    assert "metric_name=http_request_duration" in default.stderr
    assert "METRIC" not in quiet.stderr
    assert "Beginning sync of 'feedback'" in quiet.stderr  # the tap's INFO lines stay
    assert len(parse_messages(quiet.stdout)) == len(parse_messages(default.stdout))


def test_the_docs_logging_file_drops_request_durations_and_keeps_tagged_counts(
    fake: FakeUsersnap, project: MeltanoProject
) -> None:
    yaml_blocks = re.findall(r"```yaml\n(.*?)```", TROUBLESHOOTING, re.S)
    (logging_file,) = [b for b in yaml_blocks if "MetricExclusionFilter" in b]
    (env_block,) = [b for b in yaml_blocks if "SINGER_SDK_LOG_CONFIG" in b]
    extractor_env = yaml.safe_load(env_block)["env"]
    (project.root / extractor_env["SINGER_SDK_LOG_CONFIG"]).write_text(logging_file)
    path = project.root / "meltano.yml"
    config = yaml.safe_load(path.read_text())
    config["plugins"]["extractors"][0]["env"] = extractor_env
    path.write_text(yaml.safe_dump(config, sort_keys=False))

    run = project.run("invoke", "tap-usersnap", env=usersnap_env(fake.config()))

    metrics = [
        json.loads(line.split("METRIC: ", 1)[1])
        for line in run.stderr.splitlines()
        if "METRIC: " in line
    ]
    names = {metric["metric"] for metric in metrics}
    assert "http_request_duration" not in names
    assert {"http_request_count", "record_count", "sync_duration"} <= names
    counted = {
        metric["tags"]["context"]["project_id"]
        for metric in metrics
        if metric["metric"] == "http_request_count" and metric["tags"]["stream"] == "feedback"
    }
    assert counted == set(fake.feedback)  # the tags say which project
    ids = {
        m["record"]["feedback_id"]
        for m in parse_messages(run.stdout)
        if m["type"] == "RECORD" and m["stream"] == "feedback"
    }
    assert ids == fake.all_feedback_ids()
