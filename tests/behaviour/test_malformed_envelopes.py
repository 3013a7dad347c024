"""Malformed envelopes: a page that is not what the API promises is a failed try, and one
malformed forever fails the CLI in one line.
"""

from __future__ import annotations

import logging
import re
import typing as t
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.expect import error_lines, messages_at, oldest_first
from harness.reliability import (
    BAD_INPUT,
    PAGE_SIZE,
    SEQUENTIAL,
    FaultScenario,
)
from harness.singer_run import bookmarks, run_cli
from tap_usersnap.client import MAX_RATE_LIMITED, MAX_RETRY_AFTER_SECONDS, MAX_TRIES

if t.TYPE_CHECKING:
    from fake_usersnap import FakeUsersnap


FILTER = r"POST .*/filter$"
FOREVER = 10**6
POLICY = SimpleNamespace(
    max_tries=MAX_TRIES,
    max_rate_limited=MAX_RATE_LIMITED,
    max_retry_after_seconds=MAX_RETRY_AFTER_SECONDS,
)


@pytest.fixture
def quick_retries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """CLI runs retry without waiting: a ``sitecustomize`` sets a zero backoff in the tap."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import tap_usersnap.client\ntap_usersnap.client.BASE_BACKOFF_SECONDS = 0.0\n"
    )
    monkeypatch.setenv("PYTHONPATH", str(site))


MALFORMED = [
    pytest.param(b'{"status": true, "data": null}', "no data object", id="data null"),
    pytest.param(b'{"status": true}', "no data object", id="no data"),
    pytest.param(
        b'{"status": true, "data": {"has_more": false, "feedbacks": null}}',
        "nothing",
        id="feedbacks null",
    ),
    pytest.param(
        b'{"status": true, "data": {"has_more": false, "feedbacks": "x"}}',
        "a str",
        id="feedbacks a string",
    ),
]


@pytest.mark.parametrize(("body", "found"), MALFORMED)
def test_a_malformed_page_is_a_failed_try(
    scenario: FaultScenario, sleeps: list[float], body: bytes, found: str
) -> None:
    fake = scenario.fake
    fake.inject("raw", body=body, match=FILTER, skip=1, times=1)

    played = scenario.play(f"200 with {body.decode()}", group=BAD_INPUT)

    assert sorted(played.first.ids()) == sorted(fake.all_feedback_ids())
    assert len(sleeps) == 1
    project_id = fake.requests_to(FILTER)[1].path.split("/")[2]
    assert [
        re.sub(r"retrying in \d+\.\ds", "retrying in Ns", w)
        for w in messages_at(scenario.caplog, logging.WARNING)
    ] == [
        f"Usersnap answered POST /v0.1/projects/{project_id}/feedbacks/filter with a "
        f"malformed page: expected data.feedbacks to be a list, found {found} (project "
        f"{fake.projects[project_id]['name']!r} ({project_id})); retrying in Ns (try 2 of 6)"
    ]


@pytest.mark.usefixtures("quick_retries")
@pytest.mark.parametrize(("body", "found"), MALFORMED)
def test_a_page_malformed_forever_fails_the_cli_with_one_line(
    canary_fake: FakeUsersnap, body: bytes, found: str
) -> None:
    fake = canary_fake
    fake.inject("raw", body=body, match=FILTER, skip=1, times=FOREVER)
    project_id = next(iter(fake.projects))

    result = run_cli(config=fake.config(**SEQUENTIAL))

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = error_lines(result.stderr)
    assert len(errors) == 1, result.stderr
    assert errors[0].endswith(
        f"| Usersnap answered POST /v0.1/projects/{project_id}/feedbacks/filter with a "
        f"malformed page: expected data.feedbacks to be a list, found {found}; gave up "
        f"after {POLICY.max_tries} tries"
    )
    first_page = oldest_first(fake, project_id)[:PAGE_SIZE]
    assert result.ids() == [i["feedback_id"] for i in first_page]
    assert bookmarks(result.final_state) == {project_id: first_page[-1]["created_at"]}
    assert len(fake.requests_to(FILTER)) == 1 + POLICY.max_tries
    assert fake.jwt_secret not in result.output
