"""What deletes, late items and sweeps cost: requests per project and wall time per run.

``python -m benchmarks.deletes`` seeds the fake API (20 projects x 500 items, 100 ms a
request by default), runs a full sync, then runs with nothing changed, after one item was
deleted (a sweep), after a late item, and with the periodic sweep due, and prints the
requests each run sent per project (filter pages, counts) and its wall time.
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
    parser.add_argument("--projects", type=int, default=20)
    parser.add_argument("--per-project", type=int, default=500)
    parser.add_argument("--latency-ms", type=float, default=100)
    args = parser.parse_args()
    with FakeUsersnap() as fake:
        fake.seed(projects=args.projects, per_project=args.per_project)
        fake.latency_seconds = args.latency_ms / 1000
        print(
            f"{args.projects} projects x {args.per_project} items, page_size 100, "
            f"{args.latency_ms:.0f} ms a request, concurrency 4"
        )
        print(f"{'run':<28} {'filter/p':>8} {'count/p':>7} {'time':>8}")
        state = run(fake, "1. full", None).final_state
        state = run(fake, "2. nothing changed", state).final_state
        project_id = next(iter(fake.projects))
        items = sorted(fake.feedback[project_id], key=lambda i: i["created_at"])
        fake.delete_feedback(items[len(items) // 2]["feedback_id"])
        state = run(fake, "3. one item deleted: sweep", state).final_state
        state = run(fake, "4. nothing changed", state).final_state
        fake.add_feedback(project_id, created_at=items[len(items) // 3]["created_at"])
        state = run(fake, "5. one late item", state).final_state
        state["bookmarks"]["feedback"]["swept_at"] = "2000-01-01T00:00:00.000000Z"
        run(fake, "6. periodic sweep due", state)


if __name__ == "__main__":
    main()
