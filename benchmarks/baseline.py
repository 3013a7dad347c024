"""The yardstick: the plainest ``requests`` loop that reads the same data as the tap.

It lists the projects, then pages through each project's feedback (``POST .../filter``,
created_at ascending, ``limit``/``after``), parses each page with ``response.json()`` and
writes ``json.dumps(record)`` per record to stdout. With ``--concurrency N`` (N > 1),
N projects are read at once, one thread and one session each. Nothing else: no schema,
no state, no retries. This is what "close to the raw-HTTP limit" is measured against.

Run as its own process (``python -m benchmarks.baseline --config cfg.json``) so its CPU
time and peak RSS are its own.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import threading
import time
import typing as t
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jwt
import requests

#: The body the tap sends on a first run (no bookmark, no start_date).
FILTER_BODY = {"order_by": {"order_by_type": "created_at", "direction": "asc"}}
TOKEN_LIFETIME_SECONDS = 3600


def sign_token(jwt_id: str, jwt_secret: str) -> str:
    """One HS256 token for the whole run (the run is far shorter than its lifetime)."""
    now = int(time.time())
    return jwt.encode(
        {"iat": now - 30, "exp": now + TOKEN_LIFETIME_SECONDS},
        jwt_secret,
        algorithm="HS256",
        headers={"kid": jwt_id},
    )


class PlainLoop:
    """Reads every project's feedback and writes one JSON line per record."""

    def __init__(
        self,
        api_url: str,
        token: str,
        page_size: int,
        out: t.TextIO,
        start_date: str | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.body: dict[str, t.Any] = dict(FILTER_BODY)
        if start_date:
            # As the tap does with its start_date setting: its whole second, as the spec has it.
            self.body["query"] = [
                {"filter_type": "created_at", "operator": "gte", "value": whole_second(start_date)}
            ]
        self.headers = {"Authorization": f"Bearer {token}"}
        self.page_size = page_size
        self.out = out
        self.write_lock = threading.Lock()
        self.local = threading.local()

    @property
    def session(self) -> requests.Session:
        """One keep-alive session per thread (sessions are not shared across threads)."""
        if not hasattr(self.local, "session"):
            self.local.session = requests.Session()
            self.local.session.headers.update(self.headers)
        return t.cast("requests.Session", self.local.session)

    def project_ids(self) -> list[str]:
        """``GET /projects``, one request with no parameter, as the spec has it."""
        response = self.session.get(f"{self.api_url}/projects", timeout=60)
        response.raise_for_status()
        return [project["project_id"] for project in response.json()["data"]["projects"]]

    def read_project(self, project_id: str, *, locked: bool) -> int:
        """Every page of one project, oldest first; returns how many records it wrote."""
        url = f"{self.api_url}/projects/{project_id}/feedbacks/filter"
        params: dict[str, t.Any] = {"limit": self.page_size}
        written = 0
        while True:
            response = self.session.post(url, params=params, json=self.body, timeout=60)
            response.raise_for_status()
            data = response.json()["data"]
            records = data["feedbacks"]
            lines = "".join(json.dumps(record) + "\n" for record in records)
            if locked:
                with self.write_lock:
                    self.out.write(lines)
            else:
                self.out.write(lines)
            written += len(records)
            if not data.get("has_more"):
                return written
            params["after"] = data["next"]["after"]

    def run(self, concurrency: int) -> int:
        projects = self.project_ids()
        if concurrency <= 1:
            return sum(self.read_project(project, locked=False) for project in projects)
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            counts = pool.map(lambda project: self.read_project(project, locked=True), projects)
            return sum(counts)


def whole_second(value: str) -> str:
    """A timestamp as the spec's filters take it: its UTC second, ``YYYY-MM-DDTHH:MM:SSZ``."""
    moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True, help="tap config JSON")
    parser.add_argument("--concurrency", type=int, default=1, help="projects read at once")
    args = parser.parse_args(argv)
    config = json.loads(args.config.read_text())
    token = sign_token(config["jwt_id"], config["jwt_secret"])
    loop = PlainLoop(
        config["api_url"],
        token,
        int(config.get("page_size", 100)),
        sys.stdout,
        start_date=config.get("start_date"),
    )
    written = loop.run(args.concurrency)
    sys.stdout.flush()
    print(f"baseline wrote {written} records", file=sys.stderr)


if __name__ == "__main__":
    main()
