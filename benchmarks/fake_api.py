"""``python -m benchmarks.fake_api``: the fake API's benchmark process, counting requests.

The same as ``python -m fake_usersnap --prerendered ... --control`` (pre-rendered pages, a
latency applied to every request, commands on stdin, stops at end of input), plus one
command: ``requests`` answers how many requests the fake has received so far, by kind
(``filter``, ``count``, ``projects``, ``assignees``, ``other``). The benchmark's fake does
not record requests (a list of them would cost the server time and memory), so this process
counts them in a subclass, without touching ``fake_usersnap``.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import sys
import threading
import typing as t

from typing_extensions import override

from fake_usersnap.__main__ import serve_commands
from fake_usersnap.server import FakeUsersnap

if t.TYPE_CHECKING:
    from fake_usersnap.faults import RecordedRequest

#: ``METHOD path`` patterns of the requests a tap run sends, by kind.
KINDS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("filter", re.compile(r"^POST /projects/[^/]+/feedbacks/filter$")),
    ("count", re.compile(r"^POST /projects/[^/]+/feedbacks/filter/count$")),
    ("projects", re.compile(r"^GET /projects$")),
    ("assignees", re.compile(r"^GET /projects/[^/]+/assignees$")),
)


def kind_of(method: str, path: str) -> str:
    target = f"{method} {path}"
    return next((kind for kind, pattern in KINDS if pattern.match(target)), "other")


class CountingFake(FakeUsersnap):
    """A fake that counts every request it receives (faults and errors included)."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: collections.Counter[str] = collections.Counter()
        self._count_lock = threading.Lock()

    @override
    def record(self, request: RecordedRequest) -> None:
        kind = kind_of(request.method, request.path)
        with self._count_lock:
            self.counts[kind] += 1
        super().record(request)

    def request_counts(self) -> dict[str, int]:
        with self._count_lock:
            counts = {kind: self.counts[kind] for kind, _ in KINDS} | {
                "other": self.counts["other"]
            }
        return counts | {"total": sum(counts.values())}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fake_api", description=__doc__)
    parser.add_argument("--projects", type=int, default=3)
    parser.add_argument("--per-project", type=int, default=100)
    parser.add_argument("--prerendered", choices=("eager", "lazy"), default="eager")
    parser.add_argument("--item-bytes", type=int, default=1900)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    args = parser.parse_args()
    fake = CountingFake()
    fake.seed_benchmark(
        projects=args.projects,
        per_project=args.per_project,
        item_bytes=args.item_bytes,
        eager=args.prerendered == "eager",
    )
    fake.latency_seconds = args.latency_ms / 1000
    fake.start()
    print(json.dumps(fake.config()), flush=True)
    try:
        serve_commands(
            fake, sys.stdin, sys.stdout, extra={"requests": lambda _: fake.request_counts()}
        )
    finally:
        fake.stop()


if __name__ == "__main__":
    main()
