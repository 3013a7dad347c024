"""Render the reliability figures of the last test run into docs/reliability.md and the README.

The fault suite (``tests/reliability/test_faults.py``, ``test_rate_limits.py``), the other tests
that play scenarios and the crash-and-resume trials (``tests/reliability/test_crash_resume.py``)
write what happened in each scenario to
``build/reliability.json``; this script only formats it, so every figure comes from a test
run. ``make reliability`` runs it after those tests; ``make report`` after any test run.
"""

from __future__ import annotations

import argparse
import json
import sys
import typing as t
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: The README's summary sits between these markers and is replaced on every run.
START, END = "<!-- reliability:start -->", "<!-- reliability:end -->"
#: The scenario group of hostile input (``harness/reliability.py``): a summary row of its own.
BAD_INPUT = "bad input"

Results = dict[str, list[dict[str, t.Any]]]


def scenario_row(label: str, scenarios: list[dict[str, t.Any]]) -> tuple[t.Any, ...]:
    """A summary row of some scenarios: tried, survived, lost, duplicates, secrets leaked."""
    failed_runs = [s for s in scenarios if s["ending"] != "completes"]
    return (
        label,
        len(scenarios),
        sum(1 for s in scenarios if s["survived"]),
        sum(s["lost"] for s in scenarios),
        f"{sum(s['duplicates_after_resume'] for s in failed_runs)} in "
        f"{len(failed_runs)} resumes after a clear failure",
        sum(s["secrets_leaked"] for s in scenarios),
    )


def summary(results: Results) -> list[str]:
    """The short table: faults tried, survived, records lost, duplicates, secrets leaked."""
    scenarios, trials = results["scenarios"], results["trials"]
    kills = sum(len(trial["kills"]) for trial in trials)
    kills_survived = sum(len(trial["kills"]) for trial in trials if trial["survived"])
    resumes = [count for trial in trials for count in trial["duplicates_per_resume"]]
    faults = [s for s in scenarios if s["group"] != BAD_INPUT]
    bad_input = [s for s in scenarios if s["group"] == BAD_INPUT]
    rows = [
        scenario_row("fault suite (faults injected into full syncs)", faults),
        *(
            [scenario_row("bad input (malformed items, pages and state)", bad_input)]
            if bad_input
            else []
        ),
        (
            "crash and resume (SIGKILL at random points)",
            kills,
            kills_survived,
            sum(trial["lost"] for trial in trials),
            f"{sum(resumes)} in {len(resumes)} resumes (at most {max(resumes, default=0)} "
            "per resume)",
            sum(trial["secrets_leaked"] for trial in trials),
        ),
    ]
    lines = [
        "| | faults tried | survived | records lost | duplicates after resume | secrets leaked |",
        "|---|---:|---:|---:|---|---:|",
    ]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines


def checks(results: Results) -> str:
    """The other invariants every scenario checks, summed."""
    everything = results["scenarios"] + results["trials"]
    unsafe = sum(entry["unsafe_states"] for entry in everything)
    bodies = sum(entry["bodies_in_errors"] for entry in everything)
    writes = sum(entry.get("unexpected_requests", 0) for entry in results["scenarios"])
    return (
        f"Also checked in every scenario: STATE messages that were not a safe resume point: "
        f"{unsafe}; feedback texts in logs or error messages: {bodies}; requests other than "
        f"GET and the read-only filter POST: {writes}."
    )


def scenario_table(scenarios: list[dict[str, t.Any]]) -> list[str]:
    """One row per fault scenario, grouped as in the suite."""
    lines = [
        "| group | fault | the run | via | items | lost | duplicates after resume "
        "| secrets leaked | survived |",
        "|---|---|---|---|---:|---:|---:|---:|---|",
    ]
    for s in scenarios:
        lines.append(
            f"| {s['group']} | {s['name']} | {s['ending']} | {s['via']} | {s['expected']} "
            f"| {s['lost']} | {s['duplicates_after_resume']} | {s['secrets_leaked']} "
            f"| {'yes' if s['survived'] else '**no**'} |"
        )
    return lines


def trial_table(trials: list[dict[str, t.Any]]) -> list[str]:
    """One row per crash-and-resume trial."""
    lines = [
        "| trial (seed) | items | killed after printed lines | records delivered before "
        "each kill | duplicates per resume (bound) | lost | secrets leaked | survived |",
        "|---|---:|---|---|---|---:|---:|---|",
    ]
    for trial in trials:
        points = ", ".join(str(k["after_lines"]) for k in trial["kills"])
        delivered = ", ".join(str(k["records_delivered"]) for k in trial["kills"])
        duplicates = ", ".join(str(count) for count in trial["duplicates_per_resume"])
        lines.append(
            f"| {trial['seed']} | {trial['items']} in {trial['projects']} projects, pages of "
            f"{trial['page_size']} | {points} | {delivered} | {duplicates} "
            f"(≤ {trial['most_allowed_per_resume']}) | {trial['lost']} "
            f"| {trial['secrets_leaked']} | {'yes' if trial['survived'] else '**no**'} |"
        )
    return lines


def document(results: Results) -> str:
    """docs/reliability.md."""
    parts = [
        "# Reliability",
        "",
        "Figures from the last `make test` (or `make reliability`) run, written by "
        "`scripts/reliability_report.py` from `build/reliability.json`; do not edit by hand.",
        "",
        *summary(results),
        "",
        checks(results),
        "",
        "**Survived** means the test passed: the run ended as designed (it completed, or it "
        "failed with one clear line and exit code 1), every STATE it printed was a safe resume "
        "point, and every feedback_id had arrived once the fault was gone (after a resume from "
        "the last STATE where the run had to fail). **Duplicates after resume** are records a "
        "resumed run sent again; targets upsert on `feedback_id`, so they cost time, not "
        "correctness.",
        "",
        "## Fault suite",
        "",
        "`tests/reliability/` (`test_faults.py`, `test_rate_limits.py`) and the tests that "
        "play bad input or other faults as scenarios (in `tests/behaviour/` and `tests/http/`): "
        "each fault or bad input is injected into the fake Usersnap API "
        "(`fake_usersnap/`) during a full sync of 3 projects with 12 feedback items each, "
        "read in pages of 5. Every comment carries a unique marker that must never appear in a "
        "log or error; the JWT secret and every token the fake saw must appear nowhere.",
        "",
        *scenario_table(results["scenarios"]),
        "",
        "## Crash and resume",
        "",
        "`tests/reliability/test_crash_resume.py`: the tap runs as a subprocess and is killed with "
        "SIGKILL as soon as it has printed a random number of lines; the next run starts from "
        "the last STATE among those lines; a last run finishes. What a kill can cost is a "
        "re-read of the records since the last STATE (one follows every 100 records) and of "
        "each project's bookmark second; nothing is lost.",
        "",
        *trial_table(results["trials"]),
        "",
    ]
    return "\n".join(parts)


def readme_with_summary(readme: str, results: Results) -> str:
    """The README with its summary table (between the markers) replaced."""
    before, found, rest = readme.partition(START)
    if not found:
        raise SystemExit(f"README.md has no {START} marker")
    _, found, after = rest.partition(END)
    if not found:
        raise SystemExit(f"README.md has no {END} marker")
    table = "\n".join(summary(results))
    return f"{before}{START}\n{table}\n{END}{after}"


def main(argv: list[str] | None = None) -> int:
    """Read the results, write the document and the README's summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=ROOT / "build" / "reliability.json")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "reliability.md")
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    args = parser.parse_args(argv)
    if not args.results.exists():
        print(f"{args.results} not found: run `make reliability` first", file=sys.stderr)
        return 1
    results: Results = json.loads(args.results.read_text())
    if not results["scenarios"] or not results["trials"]:
        print(f"{args.results} lacks the fault suite or the trials", file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(document(results))
    args.readme.write_text(readme_with_summary(args.readme.read_text(), results))
    print(f"wrote {args.out} and the summary in {args.readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
