"""Shared fixtures: a fresh fake Usersnap API per test, no real sleeping, and the
reliability suite's scorekeeping (written to build/reliability.json after the session)."""

from __future__ import annotations

import typing as t

import pytest

from fake_usersnap import ContractLog, FakeUsersnap
from harness.clock import FakeClock
from harness.contract import every_request_checked
from harness.reliability import RESULTS_PATH, FaultScenario, Scorecard, plant_canaries
from harness.singer_run import injected_clock

pytest_plugins = ["pytester"]

SCORECARD = pytest.StashKey[Scorecard]()
REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.fixture(autouse=True)
def api_contract(request: pytest.FixtureRequest) -> t.Iterator[ContractLog]:
    """Every request a tap sends to any fake during the test must be one the spec allows.

    Every fake reports to this log (see :mod:`harness.contract`); a test whose tap sent a
    request ``openapi.json`` does not allow fails at teardown, listing each problem. A test
    that makes such requests on purpose says so with ``@pytest.mark.off_contract`` (and may
    read the log itself).
    """
    on_purpose = request.node.get_closest_marker("off_contract") is not None
    with every_request_checked(on_purpose=on_purpose) as log:
        yield log


@pytest.fixture
def fake() -> t.Iterator[FakeUsersnap]:
    """A running fake with three projects of 12 feedback items each."""
    with FakeUsersnap() as api:
        api.seed(projects=3, per_project=12)
        yield api


@pytest.fixture
def empty_fake() -> t.Iterator[FakeUsersnap]:
    """A running fake with no data, for tests that build their own."""
    with FakeUsersnap() as api:
        yield api


@pytest.fixture
def canary_fake() -> t.Iterator[FakeUsersnap]:
    """Like ``fake``, but every comment carries a marker that must never reach a log."""
    with FakeUsersnap() as api:
        api.seed(projects=3, per_project=12)
        plant_canaries(api)
        yield api


@pytest.fixture
def read_ahead(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start every reader at once, though the local fake answers faster than a real API."""
    monkeypatch.setattr("tap_usersnap.feedback.ANOTHER_READER_AFTER_SECONDS", 0.0)


@pytest.fixture
def fake_clock() -> FakeClock:
    """A clock whose waits pass at once."""
    return FakeClock()


@pytest.fixture
def sleeps(fake_clock: FakeClock) -> t.Iterator[list[float]]:
    """Record the tap's retry waits instead of sleeping through them (in-process runs)."""
    with injected_clock(fake_clock):
        yield fake_clock.waits


@pytest.fixture
def scorecard(request: pytest.FixtureRequest) -> Scorecard:
    """The session's reliability figures."""
    stash = request.config.stash
    if SCORECARD not in stash:
        stash[SCORECARD] = Scorecard()
    return stash[SCORECARD]


def _score(request: pytest.FixtureRequest, entries: list[dict[str, t.Any]]) -> None:
    """Mark a test's entries survived if the test passed (a failed check is not survival)."""
    report = request.node.stash.get(REPORTS, {}).get("call")
    for entry in entries:
        entry["test"] = request.node.nodeid
        entry["survived"] = bool(report and report.passed)


@pytest.fixture
def scenario(
    request: pytest.FixtureRequest,
    canary_fake: FakeUsersnap,
    caplog: pytest.LogCaptureFixture,
    scorecard: Scorecard,
) -> t.Iterator[FaultScenario]:
    """Plays and checks fault scenarios, and scores them."""
    entries: list[dict[str, t.Any]] = []
    yield FaultScenario(canary_fake, caplog, entries)
    _score(request, entries)
    scorecard.scenarios.extend(entries)


@pytest.fixture
def trial_log(request: pytest.FixtureRequest, scorecard: Scorecard) -> t.Iterator[list[dict]]:
    """Where a crash-and-resume trial puts its figures, scored like scenarios."""
    entries: list[dict[str, t.Any]] = []
    yield entries
    _score(request, entries)
    scorecard.trials.extend(entries)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> t.Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the item, so fixtures can tell whether the test passed."""
    report = yield
    item.stash.setdefault(REPORTS, {})[report.when] = report
    return report


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Write the reliability figures, when the session played any scenario or trial."""
    card = session.config.stash.get(SCORECARD, None)
    if card is not None and (card.scenarios or card.trials):
        card.write(session.config.rootpath / RESULTS_PATH)
