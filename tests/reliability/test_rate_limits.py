"""The 429 rule through the tap: Retry-After obeyed, capped or replaced by the backoff, one
pause for every request, and a server that rate-limits forever ends the run in bounds.

The scenarios count in the reliability figures (group "429 rate limits"; the CLI run that
never recovers in "a server that never recovers"). The retry loop's own 429 tests are in
``tests/http/test_retry.py``.
"""

from __future__ import annotations

import email.utils
import json
import signal
import subprocess
import sys
import tempfile
import time
import typing as t
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.reliability import FaultScenario
from harness.singer_run import run_sync
from tap_usersnap.client import (
    MAX_RATE_LIMITED,
    MAX_RETRY_AFTER_SECONDS,
    MAX_TRIES,
    UsersnapError,
)

if t.TYPE_CHECKING:
    from fake_usersnap import FakeUsersnap

FILTER = r"POST .*/filter$"
POLICY = SimpleNamespace(
    max_tries=MAX_TRIES,
    max_rate_limited=MAX_RATE_LIMITED,
    max_retry_after_seconds=MAX_RETRY_AFTER_SECONDS,
)
FOREVER = 10**6
TAP = str(Path(sys.executable).with_name("tap-usersnap"))

RATE = "429 rate limits"
NEVER = "a server that never recovers"


def test_429_with_retry_after_in_seconds(scenario: FaultScenario, sleeps: list[float]) -> None:
    scenario.fake.inject("status", status=429, headers={"Retry-After": "7"}, match=FILTER, times=3)
    scenario.play("429 x3 with Retry-After: 7 (seconds)", group=RATE)
    assert sleeps == [7.0, 7.0, 7.0]


def test_429_with_retry_after_as_an_http_date(scenario: FaultScenario, sleeps: list[float]) -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    scenario.fake.inject("status", status=429, headers={"Retry-After": when}, match=FILTER)
    scenario.play("429 with Retry-After as an HTTP date 30 s ahead", group=RATE)
    assert len(sleeps) == 1
    assert 25 <= sleeps[0] <= 31


def test_429_without_retry_after_backs_off(scenario: FaultScenario, sleeps: list[float]) -> None:
    scenario.fake.inject("status", status=429, match=FILTER, times=3)
    scenario.play("429 x3 without Retry-After", group=RATE)
    assert len(sleeps) == 3
    assert sleeps[0] < sleeps[1] < sleeps[2] <= 4


@pytest.mark.parametrize(
    ("retry_after", "said"),
    [
        ("-5", "Retry-After '-5' names no wait"),
        ("nan", "Retry-After 'nan' names no wait"),
        ("inf", "Retry-After 'inf' names no wait"),
        ("soon", "Retry-After 'soon' names no wait"),
    ],
)
def test_a_retry_after_that_names_no_wait_falls_back_to_the_backoff(
    scenario: FaultScenario, sleeps: list[float], retry_after: str, said: str
) -> None:
    scenario.fake.inject(
        "status", status=429, headers={"Retry-After": retry_after}, match=FILTER, times=3
    )
    played = scenario.play(f"429 x3 with Retry-After: {retry_after}", group=RATE)
    assert len(sleeps) == 3
    assert 0.8 <= sleeps[0] < sleeps[1] < sleeps[2] <= 4  # the backoff, not 0 or nan
    waits = [line for line in played.logs.splitlines() if "(429); waiting" in line]
    assert len(waits) == 3, played.logs
    assert all(", the backoff (" in line and said in line for line in waits), waits
    assert "as asked" not in played.logs


@pytest.mark.parametrize("retry_after", ["0", "Sat, 01 Jan 2000 00:00:00 GMT"])
def test_a_retry_after_of_now_is_waited_a_second_however_often_it_comes(
    scenario: FaultScenario, sleeps: list[float], retry_after: str
) -> None:
    """A wait of 0 is a wait: never a busy loop, and never the budget of a 429 without one."""
    times = POLICY.max_rate_limited + 5
    scenario.fake.inject(
        "status", status=429, headers={"Retry-After": retry_after}, match=FILTER, times=times
    )
    played = scenario.play(f"429 x{times} with Retry-After: {retry_after}", group=RATE)
    assert sleeps == [1.0] * times
    assert played.logs.count("(429); waiting 1.0s as asked") == times


def test_a_retry_after_longer_than_an_hour_ends_the_run_in_one_line_and_resumes(
    scenario: FaultScenario, sleeps: list[float]
) -> None:
    """Retrying early would ignore the server; waiting a day would look like a hang."""
    scenario.fake.inject("status", status=429, headers={"Retry-After": "86400"}, match=FILTER)
    scenario.play(
        "429 with Retry-After: 86400 (a day)",
        group=RATE,
        fails=UsersnapError,
        message=(
            r"rate-limited POST .*/feedbacks/filter \(429\) with Retry-After of 86400s, more "
            r"than the 3600s the tap waits in a run; stopped, the next run resumes from the "
            r"last STATE"
        ),
    )
    assert sleeps == []


def test_a_burst_of_429s(scenario: FaultScenario, sleeps: list[float]) -> None:
    burst = POLICY.max_rate_limited
    scenario.fake.inject(
        "status", status=429, headers={"Retry-After": "1"}, match="GET /projects$", times=5
    )
    scenario.fake.inject(
        "status", status=429, headers={"Retry-After": "1"}, match=FILTER, skip=2, times=burst
    )
    scenario.play(f"429 bursts: 5 on the listing, {burst} in a row mid-project", group=RATE)
    assert sleeps == [1.0] * (5 + burst)


def test_429s_with_a_wait_never_end_the_run_and_a_signal_stops_it_cleanly(
    fake: FakeUsersnap,
) -> None:
    """Usersnap does not publish its limits: however long it answers 429 with a wait, the
    tap waits (far past the 20 tries a 429 without a wait gets), until a signal stops it."""
    fake.inject(
        "status", status=429, headers={"Retry-After": "0.05"}, match=FILTER, skip=4, times=FOREVER
    )
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp, "config.json")
        config.write_text(json.dumps(fake.config(concurrency=1, page_size=5)))
        out = Path(tmp, "stdout")
        with out.open("w") as stdout:
            process = subprocess.Popen(
                [TAP, "--config", str(config)], stdout=stdout, stderr=subprocess.PIPE, text=True
            )
            deadline = time.monotonic() + 60
            while (
                sum(1 for r in fake.requests_to(FILTER) if r.status == 429) <= 2 * MAX_RATE_LIMITED
            ):
                assert process.poll() is None, "the tap gave up on a 429 with a wait"
                assert time.monotonic() < deadline
                time.sleep(0.05)
            process.send_signal(signal.SIGTERM)
            _, stderr = process.communicate(timeout=30)
        lines = out.read_text().splitlines()
    assert process.returncode == 128 + signal.SIGTERM
    assert json.loads(lines[-1])["type"] == "STATE"
    assert "Interrupted by signal 15" in stderr
    assert "Traceback" not in stderr


@pytest.mark.usefixtures("read_ahead")
def test_concurrent_run_survives_429s_on_every_project(
    fake: FakeUsersnap, sleeps: list[float]
) -> None:
    fake.inject("status", status=429, headers={"Retry-After": "3"}, match=FILTER, times=6)
    result = run_sync(fake.config(concurrency=3, page_size=5))
    assert sorted(result.ids()) == sorted(fake.all_feedback_ids())
    assert sum(1 for r in fake.requests_to(FILTER) if r.status == 429) == 6
    assert sleeps
    assert all(wait <= 3 for wait in sleeps)


def test_many_429s_at_high_concurrency_cost_no_item(
    fake: FakeUsersnap, sleeps: list[float]
) -> None:
    """More 429s with a wait than any per-request budget, spread over eight readers: the
    run waits each out (every reader pauses with it) and delivers every item."""
    fake.inject("status", status=429, headers={"Retry-After": "2"}, match=FILTER, times=60)
    result = run_sync(fake.config(concurrency=8, page_size=5))
    assert sorted(result.ids()) == sorted(fake.all_feedback_ids())
    assert sum(1 for r in fake.requests_to(FILTER) if r.status == 429) == 60
    assert all(wait <= 2 for wait in sleeps)
