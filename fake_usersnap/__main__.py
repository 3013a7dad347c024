"""``python -m fake_usersnap``: serve the fake Usersnap API from a process of its own."""

from __future__ import annotations

import argparse
import json
import resource
import sys
import threading
import typing as t

from fake_usersnap.server import FakeUsersnap

DESCRIPTION = "A local fake of the Usersnap REST API v0.1 on 127.0.0.1."


def main() -> None:
    """Serve sample data until interrupted (for the demo and manual poking).

    ``--prerendered`` serves benchmark data instead; ``--control`` takes commands on stdin
    (``latency <ms>``, ``cpu``) and stops at end of input, so a parent process that dies
    never leaves the server behind.
    """
    parser = argparse.ArgumentParser(prog="python -m fake_usersnap", description=DESCRIPTION)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--projects", type=int, default=3)
    parser.add_argument("--per-project", type=int, default=100)
    parser.add_argument(
        "--prerendered",
        choices=("eager", "lazy"),
        help="benchmark data: every page rendered up front (eager) or on request (lazy)",
    )
    parser.add_argument("--item-bytes", type=int, default=1900, help="JSON size of an item")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay per request")
    parser.add_argument("--control", action="store_true", help="read commands from stdin")
    args = parser.parse_args()
    fake = FakeUsersnap()
    if args.prerendered:
        fake.seed_benchmark(
            projects=args.projects,
            per_project=args.per_project,
            item_bytes=args.item_bytes,
            eager=args.prerendered == "eager",
        )
    else:
        fake.seed(projects=args.projects, per_project=args.per_project)
    fake.latency_seconds = args.latency_ms / 1000
    fake.start(args.port)
    print(json.dumps(fake.config()), flush=True)
    try:
        if args.control:
            serve_commands(fake, sys.stdin, sys.stdout)
        else:
            threading.Event().wait()
    except KeyboardInterrupt:
        pass
    fake.stop()


def serve_commands(
    fake: FakeUsersnap,
    commands: t.TextIO,
    answers: t.TextIO,
    extra: t.Mapping[str, t.Callable[[list[str]], dict[str, t.Any]]] | None = None,
) -> None:
    """Answer one JSON line per command until end of input; ``extra`` adds commands."""
    for line in commands:
        command, *rest = line.split() or [""]
        answer: dict[str, t.Any]
        if extra and command in extra:
            answer = extra[command](rest)
        elif command == "latency":
            fake.latency_seconds = float(rest[0]) / 1000
            answer = {"latency_ms": fake.latency_seconds * 1000}
        elif command == "cpu":
            usage = resource.getrusage(resource.RUSAGE_SELF)
            answer = {"cpu_s": usage.ru_utime + usage.ru_stime, "maxrss_kb": usage.ru_maxrss}
        else:
            answer = {"error": f"unknown command {command!r}"}
        answers.write(json.dumps(answer) + "\n")
        answers.flush()


if __name__ == "__main__":
    main()
