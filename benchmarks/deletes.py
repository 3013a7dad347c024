"""Requests per project for deletes: a run with nothing deleted, and one with a deletion.

``python -m benchmarks.deletes`` seeds the fake API (3 projects x 10,000 items by default),
runs a full sync, then an incremental run with nothing changed, then one after one item was
deleted, and prints the requests each run sent per project (filter pages, counts).
"""

from __future__ import annotations

import argparse
import collections
import re
import time

from fake_usersnap import FakeUsersnap
from harness.singer_run import SyncResult, run_sync

KINDS = {
    "count": re.compile(r"/feedbacks/filter/count$"),
    "filter": re.compile(r"/feedbacks/filter$"),
}


def per_project(fake: FakeUsersnap) -> dict[str, float]:
    """Average requests of each kind per project since the last reset."""
    seen: collections.Counter[str] = collections.Counter()
    for request in fake.requests:
        for kind, pattern in KINDS.items():
            if pattern.search(request.path):
                seen[kind] += 1
    return {kind: seen[kind] / len(fake.projects) for kind in KINDS}


def run(fake: FakeUsersnap, label: str, state: dict | None) -> SyncResult:
    fake.requests.clear()
    started = time.monotonic()
    result = run_sync(fake.config(), state)
    figures = per_project(fake)
    activations = [m["stream"] for m in result.messages if m["type"] == "ACTIVATE_VERSION"]
    print(
        f"{label:<28} {figures['filter']:>8.1f} {figures['count']:>7.1f} "
        f"{time.monotonic() - started:>7.1f}s  ACTIVATE_VERSION: {', '.join(activations)}"
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--projects", type=int, default=3)
    parser.add_argument("--per-project", type=int, default=10_000)
    args = parser.parse_args()
    with FakeUsersnap() as fake:
        fake.seed(projects=args.projects, per_project=args.per_project)
        print(f"{args.projects} projects x {args.per_project} items, page_size 100")
        print(f"{'run':<28} {'filter/p':>8} {'count/p':>7} {'time':>8}")
        first = run(fake, "1. full", None)
        second = run(fake, "2. nothing deleted", first.final_state)
        project_id = next(iter(fake.projects))
        fake.delete_feedback(
            fake.feedback[project_id][len(fake.feedback[project_id]) // 2]["feedback_id"]
        )
        third = run(fake, "3. one item deleted", second.final_state)
        run(fake, "4. nothing deleted again", third.final_state)


if __name__ == "__main__":
    main()
