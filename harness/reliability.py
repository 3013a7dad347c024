"""The reliability suite's tools: play syncs under faults, prove nothing was lost or leaked.

Every scenario checks the same outcomes, whatever the fault:

- every feedback_id arrives, in the faulty run or in the resume that follows a clear failure;
- every STATE the tap printed is a safe resume point (no bookmark runs ahead of an item that
  had not been delivered yet);
- no secret or token appears in any output, and no feedback text in any log or error;
- only GET and the read-only filter POST reached the API.

Each scenario's figures go to a :class:`Scorecard`; the session writes it to
``build/reliability.json`` and ``scripts/reliability_report.py`` renders
``docs/reliability.md`` from it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import typing as t
from pathlib import Path

from harness.singer_run import SyncResult, bookmarks, run_cli, run_sync
from tap_usersnap.client import UsersnapError
from tap_usersnap.records import normalise_timestamp

if t.TYPE_CHECKING:
    import pytest

    from fake_usersnap import FakeUsersnap

#: Where a test session leaves its figures (relative to the repository root).
RESULTS_PATH = Path("build", "reliability.json")
#: The only POST the tap may send: the read-only filter.
FILTER_PATH = re.compile(r"/projects/[^/]+/feedbacks/filter(/count)?")
#: The group of scenarios whose input is hostile: malformed items and pages, odd state.
BAD_INPUT = "bad input"
#: Marks every feedback text planted by :func:`plant_canaries`.
CANARY = "zq-canary"
#: Page size of the fault suite: 12 items per project make pages of 5, 5 and 2.
PAGE_SIZE = 5
#: The suite's default settings: one request at a time and no edit scan, so a fault set to
#: strike the n-th filter request strikes the same page every run. Scenarios that pass
#: their own ``settings`` (concurrency, edit scans) exercise the read-ahead path.
SEQUENTIAL = {"page_size": PAGE_SIZE, "concurrency": 1, "capture_edits": False}


def plant_canaries(fake: FakeUsersnap) -> None:
    """Put a unique marker in every feedback comment: it must never reach a log or error."""
    for items in fake.feedback.values():
        for item in items:
            canary = f"{CANARY}-{item['feedback_id'][:8]}"
            for answer in item.get("ordered_inputs") or []:
                if answer.get("text_value"):
                    answer["text_value"] = answer["value"] = f"{canary} {answer['text_value']}"


def canaries_in(text: str) -> list[str]:
    """The planted feedback texts found in ``text``."""
    return sorted(set(re.findall(rf"{CANARY}-[0-9a-f]{{8}}", text)))


def secrets_in(text: str, fake: FakeUsersnap) -> list[str]:
    """The JWT secret and every token (or its signature) the fake saw, found in ``text``."""
    secrets = {fake.jwt_secret}
    for request in fake.requests:
        if request.token:
            secrets |= {request.token, request.token.rsplit(".", 1)[-1]}
    return sorted(f"{s[:6]}..." for s in secrets if s and s in text)


def unexpected_requests(fake: FakeUsersnap) -> list[str]:
    """Requests other than GET and the read-only filter and count POSTs (there must be none)."""
    return [
        f"{r.method} {r.path}"
        for r in fake.requests
        if r.method != "GET" and not (r.method == "POST" and FILTER_PATH.fullmatch(r.path))
    ]


def item_index(fake: FakeUsersnap) -> dict[str, tuple[str, str]]:
    """``{feedback_id: (project_id, created_at normalised)}``, taken before faults change data."""
    return {
        item["feedback_id"]: (project_id, str(normalise_timestamp(item["created_at"])))
        for project_id, items in fake.feedback.items()
        for item in items
    }


def unsafe_states(
    runs: t.Sequence[SyncResult], items: dict[str, tuple[str, str]], expected: set[str]
) -> list[str]:
    """STATE messages that would lose data if a run resumed from them.

    A project's bookmark B is safe when every expected item of that project created before B
    had been delivered (by this run or an earlier one) when the STATE was printed: the
    resume asks for ``created_at >= B``, so anything older and undelivered would be lost.
    """
    delivered: set[str] = set()
    problems: list[str] = []
    for number, run in enumerate(runs, 1):
        for message in run.messages:
            if message["type"] == "RECORD" and message["stream"] == "feedback":
                delivered.add(message["record"]["feedback_id"])
            elif message["type"] == "STATE":
                for project_id, bookmark in bookmarks(message["value"]).items():
                    skipped = [
                        fid
                        for fid, (pid, created) in items.items()
                        if pid == project_id
                        and fid in expected
                        and fid not in delivered
                        and bookmark is not None
                        and created < bookmark
                    ]
                    if skipped:
                        problems.append(f"run {number}: bookmark {bookmark} skips {skipped}")
    return problems


def resume_duplicates(runs: t.Sequence[SyncResult]) -> list[int]:
    """For each run after the first, how many of its records earlier runs had delivered."""
    seen = set(runs[0].ids()) if runs else set()
    counts = []
    for run in runs[1:]:
        ids = run.ids()
        counts.append(sum(1 for fid in ids if fid in seen))
        seen |= set(ids)
    return counts


@dataclasses.dataclass
class Scorecard:
    """Per-scenario figures of one test session, for ``docs/reliability.md``."""

    scenarios: list[dict[str, t.Any]] = dataclasses.field(default_factory=list)
    trials: list[dict[str, t.Any]] = dataclasses.field(default_factory=list)

    def write(self, path: Path) -> None:
        """Save the figures as JSON for ``scripts/reliability_report.py``."""
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"scenarios": self.scenarios, "trials": self.trials}
        path.write_text(json.dumps(payload, indent=1, ensure_ascii=False) + "\n")


@dataclasses.dataclass
class Played:
    """What a scenario's runs produced, for the checks a test adds on top."""

    runs: list[SyncResult]
    error: str | None
    logs: str

    @property
    def first(self) -> SyncResult:
        """The run under faults (the others are resumes)."""
        return self.runs[0]

    @property
    def ids(self) -> list[str]:
        """Every feedback_id delivered, across the runs, with repeats."""
        return [fid for run in self.runs for fid in run.ids()]


class FaultScenario:
    """Plays a sync against the canary fake and checks and scores what came out of it."""

    def __init__(
        self, fake: FakeUsersnap, caplog: pytest.LogCaptureFixture, entries: list[dict]
    ) -> None:
        self.fake = fake
        self.caplog = caplog
        self.entries = entries

    def play(
        self,
        name: str,
        *,
        group: str,
        settings: dict[str, t.Any] | None = None,
        fails: type[UsersnapError] | None = None,
        message: str = "",
        recover: t.Callable[[], None] | None = None,
        expected: set[str] | None = None,
        cli: bool = False,
        state: dict[str, t.Any] | None = None,
    ) -> Played:
        """Sync under the injected faults; on an expected failure, recover and resume.

        ``fails`` names the error the run must end with (its text matching ``message``);
        the resume then runs from the last STATE printed, without faults, after
        ``recover``. ``expected`` defaults to every feedback_id the fake holds at the end.
        With ``cli`` the runs go through the console script (then ``fails`` only says
        that the run must exit 1, without a traceback, its last ERROR line matching
        ``message``). ``state`` is the first run's input state.
        """
        items = item_index(self.fake)
        config = self.fake.config(**{**SEQUENTIAL, **(settings or {})})
        self.caplog.clear()
        self.caplog.set_level(logging.INFO)
        first, error = self._run(config, state, cli=cli)
        runs = [first]
        resume_error = None
        if fails is not None:
            self.fake.clear_faults()
            if recover is not None:
                recover()
            resumed, resume_error = self._run(config, first.resume_state(state), cli=cli)
            runs.append(resumed)
        logs = self.caplog.text + "".join(run.stderr for run in runs)
        expected = self.fake.all_feedback_ids() if expected is None else expected
        delivered = {fid for run in runs for fid in run.ids()}
        printed = "".join(run.stdout or json.dumps(run.messages) for run in runs)
        errors = error or ""
        leaked = secrets_in(printed + logs + errors, self.fake)
        bodies = canaries_in(logs + errors)
        unsafe = unsafe_states(runs, items, expected)
        unexpected = unexpected_requests(self.fake)
        self.entries.append(
            {
                "group": group,
                "name": name,
                "ending": "fails clearly, then resumes" if fails else "completes",
                "via": "CLI" if cli else "in-process",
                "expected": len(expected),
                "delivered": len(delivered & expected),
                "lost": len(expected - delivered),
                "duplicates_after_resume": sum(resume_duplicates(runs)),
                "secrets_leaked": len(leaked),
                "bodies_in_errors": len(bodies),
                "unsafe_states": len(unsafe),
                "requests": len(self.fake.requests),
                "unexpected_requests": len(unexpected),
            }
        )
        if fails is None:
            assert error is None, f"the run should have completed but ended with: {error}"
        else:
            assert error is not None, "the run should have failed"
            assert re.search(message, error), error
            assert resume_error is None, f"the resume failed too: {resume_error}"
        assert not expected - delivered, f"lost {len(expected - delivered)} feedback items"
        assert not unsafe, unsafe
        assert not leaked, f"secrets or tokens in the output: {leaked}"
        assert not bodies, f"feedback texts in logs or errors: {bodies}"
        assert not unexpected, (
            f"requests that are not GET or the filter and count POSTs: {unexpected}"
        )
        return Played(runs, error, logs)

    def _run(
        self, config: dict[str, t.Any], state: dict[str, t.Any] | None, *, cli: bool
    ) -> tuple[SyncResult, str | None]:
        """One run and its failure, as one line, if it failed."""
        if not cli:
            result = run_sync(config, state, check=False)
            error = None if result.error is None else str(result.error)
            assert error is None or "\n" not in error, error
            return result, error
        result = run_cli(config=config, state=state, timeout=120)
        if result.returncode == 0:
            return result, None
        assert result.returncode == 1, result.stderr
        assert "Traceback" not in result.stderr, result.stderr
        last_error = [line for line in result.stderr.splitlines() if "ERROR" in line][-1]
        return result, last_error
