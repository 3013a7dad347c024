"""A local fake of the Usersnap REST API v0.1, faithful to shared/usersnap-api/openapi.json.

One module serves every test, the demo and the benchmark. It listens on 127.0.0.1, checks
the JWT the way Usersnap documents it (HS256 only, header ``kid`` = JWT ID, signed with the
JWT secret, not expired), answers with the spec's envelopes, and implements the filter
endpoint's semantics (created_at/state/email filters, created_at/updated_at ordering, keyset
cursor pagination with ``limit``/``after``, ``has_more`` and ``next``).

Faults are injected with :meth:`FakeUsersnap.inject`; every request is recorded in
:attr:`FakeUsersnap.requests` so tests can assert on what the tap asked for. Besides answers
that replace the real one (``status``, ``reset``, ``truncate``, ``raw``), a fault can delay it
(``stall``), send its body a byte at a time (``trickle``), run an action first, such as
deleting a project or revoking the key mid-run (``call``), or rewrite the real answer, such
as dropping the cursor or repeating items (``mangle``).

Run ``python -m tests.fake_api`` to serve realistic sample data for a demo.

For the benchmark (``benchmarks/``), :meth:`FakeUsersnap.seed_benchmark` adds large projects
whose filter pages are pre-rendered JSON (:class:`PrerenderedFeedback`), so the server is never
the bottleneck; ``python -m tests.fake_api --prerendered eager --control`` serves them from a
process of its own.
"""

from __future__ import annotations

import argparse
import bisect
import copy
import dataclasses
import datetime as dt
import json
import random
import re
import resource
import secrets
import socket
import sys
import threading
import time
import typing as t
import uuid
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import jwt

API_PREFIX = "/v0.1"
DEFAULT_LIMIT = 50
MAX_LIMIT = 100


FaultKind = t.Literal["status", "reset", "stall", "truncate", "raw", "call", "mangle", "trickle"]
#: Rewrites a real JSON answer (a deep copy of it) for a ``mangle`` fault; bytes are sent
#: as they are (for bodies ``json.dumps`` cannot write, such as nesting thousands deep).
Transform = t.Callable[[dict[str, t.Any], "RecordedRequest"], dict[str, t.Any] | bytes]


def utc_iso(moment: dt.datetime) -> str:
    """Render a timestamp the way Usersnap does: UTC, microseconds, ``Z``."""
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(value: str) -> dt.datetime:
    """Parse an ISO 8601 timestamp; naive values are taken as UTC."""
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


@dataclasses.dataclass
class RecordedRequest:
    """What the fake saw of one request (the token is kept so tests can check re-signing)."""

    method: str
    path: str
    params: dict[str, str]
    body: t.Any
    token: str | None
    status: int = 0
    #: When it arrived (``time.monotonic``), to time the tap's tries.
    at: float = dataclasses.field(default_factory=time.monotonic)


@dataclasses.dataclass
class Fault:
    """A scripted misbehaviour, served instead of the real answer ``times`` times.

    ``match`` is a regex searched in ``METHOD path`` (e.g. ``"POST .*/filter"``); ``skip``
    lets that many matching requests through first, so a fault can strike mid-run.
    ``action`` (kind ``call``) runs before the real answer; ``transform`` (kind ``mangle``)
    rewrites a successful real answer. ``trickle`` sends the real answer's status and
    headers, then its body one byte every ``seconds`` (0.2 if unset) until the client
    hangs up.
    """

    kind: FaultKind
    times: int = 1
    match: str = ""
    skip: int = 0
    status: int = 500
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    body: bytes | None = None
    seconds: float = 0.0
    action: t.Callable[[], None] | None = None
    transform: Transform | None = None


class ApiError(Exception):
    """An error the fake answers with the spec's error envelope."""

    def __init__(self, status: int, msg: str, errortype: str, errordata: dict | None = None):
        super().__init__(msg)
        self.status = status
        self.msg = msg
        self.errortype = errortype
        self.errordata = errordata or {}

    def envelope(self) -> dict[str, t.Any]:
        return {
            "status": False,
            "msg": self.msg,
            "errortype": self.errortype,
            "errordata": self.errordata,
        }


class FakeUsersnap:
    """The fake API: data, auth, faults, and a threaded HTTP server on 127.0.0.1."""

    def __init__(self, *, jwt_id: str | None = None, jwt_secret: str | None = None) -> None:
        self.jwt_id = jwt_id or str(uuid.uuid4())
        self.jwt_secret = jwt_secret or secrets.token_urlsafe(32)
        self.company_id = str(uuid.uuid4())
        self.projects: dict[str, dict[str, t.Any]] = {}
        self.feedback: dict[str, list[dict[str, t.Any]]] = {}
        self.assignees: dict[str, list[dict[str, t.Any]]] = {}
        self.requests: list[RecordedRequest] = []
        self.faults: list[Fault] = []
        self.latency_seconds = 0.0
        self.rest_api_enabled = True
        self.revoked = False
        self.projects_page_limit = DEFAULT_LIMIT
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._clock = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
        self._numbers: dict[str, int] = {}
        # Benchmark switches (see :meth:`seed_benchmark`): off by default, so every test
        # sees the full per-request behaviour.
        self.record_requests = True
        self.cache_verified_tokens = False
        self._verified_tokens: dict[str, float] = {}
        self.prerendered: PrerenderedFeedback | None = None

    # ----------------------------------------------------------------- lifecycle

    def start(self, port: int = 0) -> FakeUsersnap:
        """Serve on 127.0.0.1 (a free port unless one is given) in a daemon thread."""
        server = _QuietServer(("127.0.0.1", port), _Handler)
        server.fake = self  # type: ignore[attr-defined]
        self._server = server
        # A short poll interval: stop() waits for it, and every test stops a fake.
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeUsersnap:
        return self.start() if self._server is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The base URL to give the tap as ``api_url``."""
        assert self._server is not None, "start() the fake first"
        return f"http://127.0.0.1:{self._server.server_port}{API_PREFIX}"

    def config(self, **overrides: t.Any) -> dict[str, t.Any]:
        """A tap config that points at this fake with valid credentials."""
        return {
            "jwt_id": self.jwt_id,
            "jwt_secret": self.jwt_secret,
            "api_url": self.url,
            **overrides,
        }

    # ---------------------------------------------------------------------- data

    def add_project(self, name: str, **fields: t.Any) -> dict[str, t.Any]:
        project_id = fields.pop("project_id", None) or str(uuid.uuid4())
        created = self._tick()
        project = {
            "project_id": project_id,
            "api_key": str(uuid.uuid4()),
            "company_id": self.company_id,
            "space_id": str(uuid.uuid4()),
            "created_at": created,
            "updated_at": created,
            "archived_at": None,
            "owner_id": str(uuid.uuid4()),
            "default_assignee_id": None,
            "name": name,
            "is_live": True,
            "feedback_count": 0,
            "open_feedback_count": 0,
            **fields,
        }
        with self._lock:
            self.projects[project_id] = project
            self.feedback[project_id] = []
            self.assignees[project["api_key"]] = []
        return project

    def add_feedback(self, project_id: str, **fields: t.Any) -> dict[str, t.Any]:
        """Add one feedback item; unspecified fields get plausible values."""
        with self._lock:
            number = self._numbers.get(project_id, 0) + 1
            self._numbers[project_id] = number
            feedback_id = fields.pop("feedback_id", None) or str(uuid.uuid4())
            created = fields.pop("created_at", None) or self._tick()
            comment = fields.pop("comment", f"Feedback number {number}")
            item = {
                "feedback_id": feedback_id,
                "feedback_number": number,
                "public_link": f"https://app.usersnap.com/l/feedback/{feedback_id}",
                "project_id": project_id,
                "created_at": created,
                "updated_at": fields.pop("updated_at", created),
                "status_type": "open",
                "priority": "medium",
                "assignee_id": None,
                "is_demo": False,
                "email": None,
                "client": None,
                "custom_data": {},
                "screenshot": None,
                "screen_recording": None,
                "ordered_inputs": [
                    {
                        "order": 0,
                        "label": "Comment",
                        "boolean_value": None,
                        "text_value": comment,
                        "value": comment,
                    }
                ],
                "labels": [],
                **fields,
            }
            self.feedback[project_id].append(item)
            self._refresh_counts(project_id)
            return item

    def update_feedback(self, feedback_id: str, **fields: t.Any) -> dict[str, t.Any]:
        """Change an item the way an edit in Usersnap would (updated_at moves on)."""
        with self._lock:
            for items in self.feedback.values():
                for item in items:
                    if item["feedback_id"] == feedback_id:
                        item.update(fields)
                        item["updated_at"] = fields.get("updated_at") or self._tick()
                        self._refresh_counts(item["project_id"])
                        return item
        raise KeyError(feedback_id)

    def remove_project(self, project_id: str) -> None:
        with self._lock:
            project = self.projects.pop(project_id)
            self.feedback.pop(project_id, None)
            self.assignees.pop(project["api_key"], None)

    def all_feedback_ids(self) -> set[str]:
        with self._lock:
            return {i["feedback_id"] for items in self.feedback.values() for i in items}

    def seed(self, *, projects: int = 3, per_project: int = 40, seed: int = 7) -> None:
        """Fill the fake with realistic sample data (see :class:`SampleData`)."""
        SampleData(self, random.Random(seed)).fill(projects=projects, per_project=per_project)

    def seed_benchmark(
        self,
        *,
        projects: int = 5,
        per_project: int = 10_000,
        item_bytes: int = 1900,
        eager: bool = True,
        seed: int = 11,
    ) -> list[str]:
        """Add benchmark-sized projects whose feedback is served from pre-rendered pages.

        Also switches the fake to benchmark speed: requests are no longer recorded and a
        verified token is not verified again. ``eager`` renders every default page now
        (the server then only copies bytes); otherwise pages are rendered on request and
        not kept, so 200k items cost the server little memory. Returns the project ids.
        """
        if self.prerendered is None:
            self.prerendered = PrerenderedFeedback(self, item_bytes=item_bytes, seed=seed)
        self.record_requests = False
        self.cache_verified_tokens = True
        project_ids = self.prerendered.add_projects(projects, per_project)
        if eager:
            self.prerendered.render_all()
        else:
            self.prerendered.cache_pages = False
        return project_ids

    def prerendered_page(
        self, method: str, full_path: str, params: dict[str, str], body: t.Any
    ) -> bytes | None:
        """The response body for a filter request on a benchmark project, else None."""
        if self.prerendered is None or method != "POST":
            return None
        found = _PRERENDERED_ROUTE.match(full_path.removeprefix(API_PREFIX))
        if found is None or not self.prerendered.serves(found.group(1)):
            return None
        return self.prerendered.page(found.group(1), body, params)

    def _tick(self) -> str:
        """A strictly increasing clock, so generated data is deterministic."""
        with self._lock:
            self._clock += dt.timedelta(minutes=7, microseconds=123457)
            return utc_iso(self._clock)

    def _refresh_counts(self, project_id: str) -> None:
        items = self.feedback.get(project_id, [])
        if project_id in self.projects:
            self.projects[project_id]["feedback_count"] = len(items)
            self.projects[project_id]["open_feedback_count"] = sum(
                1 for i in items if i.get("status_type") == "open"
            )

    # -------------------------------------------------------------------- faults

    def inject(self, kind: FaultKind, **options: t.Any) -> Fault:
        """Script a fault, e.g. ``inject("status", status=429, headers={"Retry-After": "1"})``."""
        fault = Fault(kind=kind, **options)
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def requests_to(self, pattern: str) -> list[RecordedRequest]:
        """Recorded requests whose ``METHOD path`` matches a regex."""
        return [r for r in self.requests if re.search(pattern, f"{r.method} {r.path}")]

    def filter_requests(self, order_by_type: str) -> list[RecordedRequest]:
        """Recorded ``feedbacks/filter`` requests that sorted by ``order_by_type``."""
        return [
            r
            for r in self.requests_to(r"POST .*/feedbacks/filter$")
            if isinstance(r.body, dict)
            and (r.body.get("order_by") or {}).get("order_by_type") == order_by_type
        ]

    def _take_fault(self, method: str, path: str) -> Fault | None:
        target = f"{method} {path}"
        with self._lock:
            for fault in self.faults:
                if fault.times <= 0 or not re.search(fault.match, target):
                    continue
                if fault.skip > 0:
                    fault.skip -= 1
                    return None
                fault.times -= 1
                return fault
        return None

    # ----------------------------------------------------------------- API logic

    def authenticate(self, header: str | None) -> str:
        """Verify the bearer JWT as Usersnap documents it; return the token."""
        if not header or not header.startswith("Bearer "):
            raise ApiError(401, "Authorization header missing", "WRONG_AUTH")
        token = header.removeprefix("Bearer ").strip()
        if self._token_still_verified(token):
            return token
        try:
            head = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise ApiError(401, "Authorization failed", "WRONG_AUTH") from exc
        if head.get("alg") != "HS256":
            raise ApiError(401, "Authorization failed: use HS256", "WRONG_AUTH")
        if head.get("kid") != self.jwt_id or self.revoked:
            raise ApiError(401, "Authorization failed", "WRONG_AUTH")
        try:
            claims = jwt.decode(
                token,
                self.jwt_secret,
                algorithms=["HS256"],
                options={"require": ["exp", "iat"]},
            )
        except jwt.PyJWTError as exc:
            raise ApiError(401, "Authorization failed", "WRONG_AUTH") from exc
        if not self.rest_api_enabled:
            raise ApiError(403, "REST API is not enabled for this plan", "FORBIDDEN")
        if self.cache_verified_tokens:
            with self._lock:
                self._verified_tokens[token] = float(claims["exp"])
        return token

    def _token_still_verified(self, token: str) -> bool:
        """With ``cache_verified_tokens``: a token already verified and not yet expired.

        Verifying a JWT costs the server more than sending a pre-rendered page; the
        benchmark skips it for a token it has already checked. Revocation and the plan
        switch still apply.
        """
        if not self.cache_verified_tokens or self.revoked or not self.rest_api_enabled:
            return False
        expires = self._verified_tokens.get(token)
        return expires is not None and time.time() < expires

    def list_projects(self, params: dict[str, str]) -> dict[str, t.Any]:
        limit = _limit(params, default=self.projects_page_limit)
        with self._lock:
            items = list(self.projects.values())
        return _page(items, "projects", "project_id", limit, params.get("after"))

    def filter_feedback(
        self, project_id: str, body: t.Any, params: dict[str, str]
    ) -> dict[str, t.Any]:
        if not isinstance(body, dict):
            raise ApiError(400, "Request body must be a JSON object", "INVALID_REQUEST")
        items = self._project_feedback(project_id)
        for condition in body.get("query") or []:
            items = [i for i in items if _matches(i, condition)]
        order = body.get("order_by") or {"order_by_type": "created_at", "direction": "desc"}
        return self._sorted_page(items, order, params)

    def list_feedback(self, project_id: str, params: dict[str, str]) -> dict[str, t.Any]:
        """``GET .../feedbacks``: newest update first, as the real endpoint does."""
        items = self._project_feedback(project_id)
        order = {"order_by_type": "updated_at", "direction": "desc"}
        return self._sorted_page(items, order, params)

    def count_feedback(self, project_id: str, body: t.Any) -> dict[str, t.Any]:
        items = self._project_feedback(project_id)
        for condition in (body or {}).get("query") or []:
            items = [i for i in items if _matches(i, condition)]
        return {"total_count": len(items)}

    def list_assignees(self, api_key: str) -> dict[str, t.Any]:
        with self._lock:
            if api_key not in self.assignees:
                raise _site_not_found(api_key)
            return {"users": list(self.assignees[api_key])}

    def _project_feedback(self, project_id: str) -> list[dict[str, t.Any]]:
        with self._lock:
            if project_id not in self.projects:
                raise _site_not_found(project_id)
            return list(self.feedback[project_id])

    def _sorted_page(
        self, items: list[dict[str, t.Any]], order: dict[str, str], params: dict[str, str]
    ) -> dict[str, t.Any]:
        field = order.get("order_by_type", "created_at")
        if field not in {"created_at", "updated_at"}:
            raise ApiError(400, f"order_by_type {field!r} is not supported", "INVALID_REQUEST")
        descending = order.get("direction", "desc") == "desc"
        items.sort(key=lambda i: (parse_iso(i[field]), i["feedback_id"]), reverse=descending)
        limit = _limit(params)
        return _page(items, "feedbacks", "feedback_id", limit, params.get("after"))


class SampleData:
    """Realistic feedback: forms with comments, ratings and yes/no inputs, labels, unicode."""

    LABELS = (
        ("bug", "Bug", "#f71007"),
        ("feature", "Feature request", "#1a7ff7"),
        ("ux", "UX", "#7b2ff7"),
        ("performance", "Performance", "#f7a81a"),
        ("billing", "Billing", "#17a34a"),
    )
    COMMENTS = (
        "The login button does nothing on Safari.",
        "Please add dark mode 🌙",
        "Export to CSV times out for big reports",
        "Die Seite lädt sehr langsam, bitte prüfen.",
        "La recherche ne trouve pas les accents: éèà",
        "結果の並び替えができません",
        "Love the new dashboard! 👏",
        "Checkout fails with a 500 after entering the coupon",
        'Text with "quotes", a backslash \\ and a\nnew line',
    )
    PROJECTS = ("Web app", "Mobile app (iOS)", "Marketing site", "Billing portal", "Admin")

    def __init__(self, fake: FakeUsersnap, rng: random.Random) -> None:
        self.fake = fake
        self.rng = rng
        self.label_ids = {
            ident: str(uuid.UUID(int=rng.getrandbits(128))) for ident, *_ in self.LABELS
        }

    def fill(self, *, projects: int, per_project: int) -> None:
        for index in range(projects):
            name = self.PROJECTS[index % len(self.PROJECTS)]
            if index >= len(self.PROJECTS):
                name = f"{name} {index // len(self.PROJECTS) + 1}"
            project = self.fake.add_project(name)
            self.fake.assignees[project["api_key"]] = self.users(self.rng.randint(0, 3))
            for _ in range(per_project):
                self.fake.add_feedback(project["project_id"], **self.feedback_fields())

    def users(self, count: int) -> list[dict[str, t.Any]]:
        names = [("Ada", "Lovelace"), ("Grace", "Hopper"), ("Zoë", "Müller"), ("Li", "Wei")]
        return [
            {
                "user_id": str(uuid.UUID(int=self.rng.getrandbits(128))),
                "first_name": first,
                "last_name": last,
                "gravatar_url": f"https://www.gravatar.com/avatar/{index:032x}",
            }
            for index, (first, last) in enumerate(names[:count])
        ]

    def feedback_fields(self) -> dict[str, t.Any]:
        rng = self.rng
        comment = rng.choice(self.COMMENTS)
        inputs: list[dict[str, t.Any]] = [text_input(0, "Comment", comment)]
        if rng.random() < 0.6:
            rating = str(rng.randint(1, 5))
            inputs.append(
                {
                    "order": 1,
                    "label": "Rating",
                    "boolean_value": None,
                    "text_value": None,
                    "value": rating,
                }
            )
        if rng.random() < 0.4:
            inputs.append(
                {
                    "order": 2,
                    "label": "Would you recommend us?",
                    "boolean_value": rng.random() < 0.7,
                    "text_value": None,
                    "value": None,
                }
            )
        if rng.random() < 0.3:
            inputs.append(text_input(3, "What did you expect?", rng.choice(self.COMMENTS)))
        chosen = rng.sample(self.LABELS, k=rng.randint(0, 2))
        return {
            "comment": comment,
            "ordered_inputs": inputs,
            "status_type": rng.choice(("open", "open", "in_progress", "done")),
            "priority": rng.choice(("low", "medium", "high", None)),
            "email": rng.choice((None, "ana@example.com", "jürgen@example.de")),
            "labels": [
                {
                    "company_label_id": self.label_ids[ident],
                    "identifier": ident,
                    "name": name,
                    "color": color,
                }
                for ident, name, color in chosen
            ],
            "custom_data": rng.choice(
                (
                    {},
                    {"plan": "enterprise", "mrr": 1200, "user_id": rng.randint(1, 9999)},
                    {"System": "Staging", "Release Version": "0.2"},
                )
            ),
            "client": {
                "url": "https://app.example.com/reports",
                "client_type": "browser",
                "city_name": rng.choice(("Linz", "Berlin", "São Paulo")),
                "country_name": rng.choice(("Austria", "Germany", "Brazil")),
                "screen_width": 1728,
                "screen_height": 1117,
                "browser_full_name": "Firefox 103 (macOS Catalina)",
                "browser_os": "Macintosh",
                "browser_name": "Firefox",
                "browser_version": "103.0",
            },
            "screenshot": {
                "annotated_image_url": "https://resources.usersnap.com/shot.png",
                "comments": [{"label": "1", "comment": "here"}] if rng.random() < 0.3 else [],
            },
        }


@dataclasses.dataclass
class _BenchProject:
    """One benchmark project: its item ids in created_at order, and where each one is."""

    ordinal: int
    ids: list[str]
    positions: dict[str, int]


class PrerenderedFeedback:
    """Benchmark-sized feedback, rendered to JSON once so the server is never the bottleneck.

    Item ``i`` of a project is a deterministic function of ``(project, i)``: a realistic
    :class:`SampleData` item (one of a pool of templates) padded to about ``item_bytes``
    of JSON, with its own id, number and timestamps. ``created_at`` grows with ``i``, so
    the created_at-ascending listing is the item order and a ``created_at gte``/``gt``
    filter is a binary search: resumed runs are served too. Only the filter endpoint is
    served from here; other feedback endpoints see these projects as empty.
    """

    TEMPLATES = 256
    BASE_TIME = dt.datetime(2023, 1, 1, tzinfo=dt.timezone.utc)
    STEP = dt.timedelta(seconds=61)
    FILLER = (
        "Steps to reproduce: open the monthly report, choose last quarter, add the region "
        "filter, press Export and wait. Expected a CSV download; got a spinner instead. "
    )

    def __init__(self, fake: FakeUsersnap, *, item_bytes: int = 1900, seed: int = 11) -> None:
        self.fake = fake
        self.item_bytes = item_bytes
        self.cache_pages = True
        self.page_size = MAX_LIMIT
        self.rng = random.Random(seed)
        self.projects: dict[str, _BenchProject] = {}
        self._templates = [self._template() for _ in range(self.TEMPLATES)]
        self._pages: dict[tuple[str, int, int], bytes] = {}

    @property
    def total_items(self) -> int:
        return sum(len(p.ids) for p in self.projects.values())

    def serves(self, project_id: str) -> bool:
        return project_id in self.projects

    def add_projects(self, count: int, per_project: int) -> list[str]:
        added = []
        for _ in range(count):
            ordinal = len(self.projects)
            name = SampleData.PROJECTS[ordinal % len(SampleData.PROJECTS)]
            project = self.fake.add_project(f"{name} (benchmark {ordinal + 1})")
            project["feedback_count"] = project["open_feedback_count"] = per_project
            ids = [
                str(uuid.UUID(int=self.rng.getrandbits(128), version=4)) for _ in range(per_project)
            ]
            positions = {feedback_id: n for n, feedback_id in enumerate(ids)}
            self.projects[project["project_id"]] = _BenchProject(ordinal, ids, positions)
            added.append(project["project_id"])
        return added

    def ids(self, project_id: str) -> list[str]:
        return list(self.projects[project_id].ids)

    def created_at(self, project_id: str, index: int) -> str:
        return utc_iso(self._created(self.projects[project_id].ordinal, index))

    def item(self, project_id: str, index: int) -> dict[str, t.Any]:
        """Item ``index`` (0-based, oldest first) of a benchmark project."""
        project = self.projects[project_id]
        template = self._templates[(index * 31 + project.ordinal * 7) % self.TEMPLATES]
        created = self._created(project.ordinal, index)
        feedback_id = project.ids[index]
        return {
            **template,
            "feedback_id": feedback_id,
            "feedback_number": index + 1,
            "public_link": f"https://app.usersnap.com/l/feedback/{feedback_id}",
            "project_id": project_id,
            "created_at": utc_iso(created),
            "updated_at": utc_iso(created + dt.timedelta(minutes=index % 90)),
        }

    def render_all(self) -> None:
        """Render every page of the default listing (no filter, ``page_size`` items)."""
        for project_id, project in self.projects.items():
            for start in range(0, len(project.ids), self.page_size):
                self._page_bytes(project_id, 0, start, self.page_size)

    def page(self, project_id: str, body: t.Any, params: dict[str, str]) -> bytes:
        """The envelope for one filter request, as :meth:`FakeUsersnap.filter_feedback`."""
        project = self.projects[project_id]
        if (
            isinstance(body, dict)
            and not body.get("query")
            and body.get("order_by")
            == {
                "order_by_type": "updated_at",
                "direction": "desc",
            }
        ):
            return self._newest_updates(project_id, params)
        first = self._first_index(project, body)
        start = first
        after = params.get("after")
        if after:
            position = project.positions.get(after)
            if position is None or position < first:
                raise ApiError(400, "Invalid cursor", "INVALID_CURSOR", {"after": after})
            start = position + 1
        return self._page_bytes(project_id, first, start, _limit(params))

    def _page_bytes(self, project_id: str, first: int, start: int, limit: int) -> bytes:
        key = (project_id, start, limit)
        cacheable = first == 0
        rendered = self._pages.get(key) if cacheable else None
        if rendered is None:
            rendered = self._render(project_id, first, start, limit)
            if cacheable and self.cache_pages:
                with self.fake._lock:
                    self._pages[key] = rendered
        return rendered

    def _render(self, project_id: str, first: int, start: int, limit: int) -> bytes:
        total = len(self.projects[project_id].ids)
        stop = min(start + limit, total)
        items = [self.item(project_id, n) for n in range(start, stop)]
        return _page_bytes(items, has_more=stop < total, count=total - first, limit=limit)

    def _newest_updates(self, project_id: str, params: dict[str, str]) -> bytes:
        """``order_by updated_at desc``, as the tap's edit scan asks: rendered per request.

        Sorting a project's items costs the server some milliseconds, once per project
        and run (a first run asks for one item).
        """
        project = self.projects[project_id]

        def updated(n: int) -> tuple[str, str]:
            return self.item(project_id, n)["updated_at"], project.ids[n]

        order = sorted(range(len(project.ids)), key=updated, reverse=True)
        start = 0
        if after := params.get("after"):
            position = project.positions.get(after)
            if position is None:
                raise ApiError(400, "Invalid cursor", "INVALID_CURSOR", {"after": after})
            start = order.index(position) + 1
        limit = _limit(params)
        items = [self.item(project_id, n) for n in order[start : start + limit]]
        has_more = start + limit < len(order)
        return _page_bytes(items, has_more=has_more, count=len(order), limit=limit)

    def _first_index(self, project: _BenchProject, body: t.Any) -> int:
        """Where the filtered, created_at-ascending listing starts."""
        if not isinstance(body, dict):
            raise ApiError(400, "Request body must be a JSON object", "INVALID_REQUEST")
        order = body.get("order_by") or {"order_by_type": "created_at", "direction": "desc"}
        if (
            order.get("order_by_type", "created_at") != "created_at"
            or order.get("direction", "desc") != "asc"
        ):
            raise _prerendered_unsupported("an order other than created_at ascending")
        first = 0
        for condition in body.get("query") or []:
            operator = condition.get("operator")
            if condition.get("filter_type") != "created_at" or operator not in {"gte", "gt"}:
                raise _prerendered_unsupported(f"the filter {condition!r}")
            try:
                bound = parse_iso(str(condition.get("value")))
            except ValueError as exc:
                raise ApiError(
                    400, "created_at filter needs an ISO 8601 date-time", "INVALID_REQUEST"
                ) from exc
            search = bisect.bisect_left if operator == "gte" else bisect.bisect_right
            found = search(
                range(len(project.ids)), bound, key=lambda n: self._created(project.ordinal, n)
            )
            first = max(first, found)
        return first

    def _created(self, ordinal: int, index: int) -> dt.datetime:
        """Strictly increasing per project; projects interleave a millisecond apart."""
        return (
            self.BASE_TIME
            + self.STEP * index
            + dt.timedelta(milliseconds=ordinal, microseconds=index * 7 % 1000)
        )

    def _template(self) -> dict[str, t.Any]:
        """A realistic item padded (a longer comment, session notes) to ``item_bytes``."""
        fields = SampleData(self.fake, self.rng).feedback_fields()
        fields.pop("comment")
        fields["custom_data"] = {**fields["custom_data"], "session_notes": ""}
        template: dict[str, t.Any] = {
            "feedback_id": str(uuid.UUID(int=0)),
            "feedback_number": 10_000,
            "public_link": f"https://app.usersnap.com/l/feedback/{uuid.UUID(int=0)}",
            "project_id": str(uuid.UUID(int=0)),
            "created_at": utc_iso(self.BASE_TIME),
            "updated_at": utc_iso(self.BASE_TIME),
            "assignee_id": None,
            "is_demo": False,
            "screen_recording": None,
            **fields,
        }
        missing = max(0, self.item_bytes - len(json.dumps(template)))
        comment_extra = missing // 4  # the comment appears twice: text_value and value
        first_input = template["ordered_inputs"][0]
        longer = f"{first_input['text_value']} {_filler(self.FILLER, comment_extra)}"
        template["ordered_inputs"][0] = {**first_input, "text_value": longer, "value": longer}
        notes_length = max(0, self.item_bytes - len(json.dumps(template)))
        template["custom_data"]["session_notes"] = _filler(self.FILLER, notes_length)
        return template


def _filler(text: str, length: int) -> str:
    """ASCII text of exactly ``length`` characters (one JSON byte each)."""
    return (text * (length // len(text) + 1))[:length]


def _prerendered_unsupported(what: str) -> ApiError:
    return ApiError(
        400, f"The pre-rendered benchmark data does not serve {what}", "INVALID_REQUEST"
    )


def text_input(order: int | None, label: str | None, text: str | None) -> dict[str, t.Any]:
    """One text answer of a feedback form, as Usersnap puts it in ``ordered_inputs``."""
    return {
        "order": order,
        "label": label,
        "boolean_value": None,
        "text_value": text,
        "value": text,
    }


def _page_bytes(items: list[dict[str, t.Any]], *, has_more: bool, count: int, limit: int) -> bytes:
    """A rendered feedback list envelope with ``next`` pointing after its last item."""
    data: dict[str, t.Any] = {"has_more": has_more, "count": count, "feedbacks": items}
    data["next"] = None
    if items:
        last = items[-1]["feedback_id"]
        data["next"] = {
            "query_string": f"limit={limit}&after={last}",
            "limit": limit,
            "after": last,
        }
    return json.dumps({"status": True, "data": data}).encode()


def _site_not_found(site_id: str) -> ApiError:
    return ApiError(400, "Site does not exist", "SITE_NOT_FOUND", {"site_id": site_id})


def _limit(params: dict[str, str], default: int = DEFAULT_LIMIT) -> int:
    raw = params.get("limit", str(default))
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise ApiError(400, f"limit must be between 1 and {MAX_LIMIT}", "INVALID_REQUEST")
    return int(raw)


def _page(
    items: list[dict[str, t.Any]], key: str, id_field: str, limit: int, after: str | None
) -> dict[str, t.Any]:
    """Keyset pagination: the page starts right after the item whose id is ``after``."""
    start = 0
    if after:
        positions = [n for n, item in enumerate(items) if item[id_field] == after]
        if not positions:
            raise ApiError(400, "Invalid cursor", "INVALID_CURSOR", {"after": after})
        start = positions[0] + 1
    page = items[start : start + limit]
    has_more = start + limit < len(items)
    data: dict[str, t.Any] = {"has_more": has_more, "count": len(items), key: page}
    if page:
        last = page[-1][id_field]
        data["next"] = {
            "query_string": f"limit={limit}&after={last}",
            "limit": limit,
            "after": last,
        }
    else:
        data["next"] = None
    return data


_FILTER_FIELDS = {
    "created_at": "created_at",
    "state": "status_type",
    "email": "email",
    "feedback_number": "feedback_number",
    "assignee": "assignee_id",
}


def _matches(item: dict[str, t.Any], condition: dict[str, t.Any]) -> bool:
    filter_type = condition.get("filter_type")
    operator = condition.get("operator")
    value = condition.get("value")
    if filter_type not in _FILTER_FIELDS or not isinstance(value, str):
        raise ApiError(400, f"Unsupported filter {filter_type!r}", "INVALID_REQUEST")
    actual = item.get(_FILTER_FIELDS[filter_type])
    if filter_type == "created_at":
        try:
            actual, value = parse_iso(str(actual)), parse_iso(value)
        except ValueError as exc:
            raise ApiError(
                400, "created_at filter needs an ISO 8601 date-time", "INVALID_REQUEST"
            ) from exc
    elif filter_type == "feedback_number":
        value = int(value)
    comparisons: dict[str, t.Callable[[t.Any, t.Any], bool]] = {
        "eq": lambda a, b: a == b,
        "neq": lambda a, b: a != b,
        "gt": lambda a, b: a is not None and a > b,
        "gte": lambda a, b: a is not None and a >= b,
        "lt": lambda a, b: a is not None and a < b,
        "lte": lambda a, b: a is not None and a <= b,
        "like": lambda a, b: a is not None and _like(a, b, case=True),
        "ilike": lambda a, b: a is not None and _like(a, b, case=False),
    }
    if operator not in comparisons:
        raise ApiError(400, f"Unsupported operator {operator!r}", "INVALID_REQUEST")
    return comparisons[operator](actual, value)


def _like(actual: str, pattern: str, *, case: bool) -> bool:
    regex = "^" + ".*".join(re.escape(part) for part in pattern.split("%")) + "$"
    return re.match(regex, actual, 0 if case else re.IGNORECASE) is not None


_PRERENDERED_ROUTE = re.compile(r"^/projects/([^/]+)/feedbacks/filter$")

_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("GET", re.compile(r"^/projects$"), "projects"),
    ("POST", re.compile(r"^/projects/([^/]+)/feedbacks/filter$"), "filter"),
    ("POST", re.compile(r"^/projects/([^/]+)/feedbacks/filter/count$"), "filter_count"),
    ("GET", re.compile(r"^/projects/([^/]+)/feedbacks$"), "feedbacks"),
    ("GET", re.compile(r"^/projects/([^/]+)/feedbacks/count$"), "count"),
    ("GET", re.compile(r"^/projects/([^/]+)/assignees$"), "assignees"),
]


class _QuietServer(ThreadingHTTPServer):
    """Ignores clients that hang up (after a stall, the tap has given up and gone)."""

    daemon_threads = True

    def handle_error(self, request: t.Any, client_address: t.Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out as two writes; with Nagle's algorithm on, each answer would
    # wait for the client's delayed ACK (about 40 ms).
    disable_nagle_algorithm = True
    server: ThreadingHTTPServer

    def log_message(self, format: str, *args: t.Any) -> None:
        """Stay quiet: tests read the tap's output, not the server's."""

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    @property
    def fake(self) -> FakeUsersnap:
        return t.cast("FakeUsersnap", self.server.fake)  # type: ignore[attr-defined]

    def _handle(self, method: str) -> None:
        fake = self.fake
        split = urlsplit(self.path)
        path = split.path.removeprefix(API_PREFIX)
        params = {k: v[-1] for k, v in parse_qs(split.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw_body = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw_body) if raw_body else None
        except ValueError:
            body = raw_body.decode("utf-8", "replace")
        auth = self.headers.get("Authorization")
        record = RecordedRequest(
            method, path, params, body, auth.removeprefix("Bearer ") if auth else None
        )
        if fake.record_requests:
            with fake._lock:
                fake.requests.append(record)
        if fake.latency_seconds:
            time.sleep(fake.latency_seconds)
        fault = fake._take_fault(method, path)
        if fault is not None and self._serve_fault(fault, record):
            return
        try:
            fake.authenticate(auth)
            rendered = fake.prerendered_page(method, split.path, params, body)
            if rendered is not None:
                self._send_bytes(200, rendered, record)
                return
            data = self._route(method, split.path, params, body)
        except ApiError as error:
            self._send_json(error.status, error.envelope(), record)
            return
        payload = {"status": True, "data": data}
        answer: dict[str, t.Any] | bytes = payload
        if fault is not None and fault.transform is not None:
            answer = fault.transform(copy.deepcopy(payload), record)
        body = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
        if fault is not None and fault.kind == "trickle":
            self._send_trickle(body, fault.seconds or 0.2, record)
            return
        self._send_bytes(200, body, record)

    def _route(self, method: str, full_path: str, params: dict[str, str], body: t.Any) -> t.Any:
        if not full_path.startswith(API_PREFIX + "/"):
            raise ApiError(404, "Not found", "NOT_FOUND")
        path = full_path.removeprefix(API_PREFIX)
        for route_method, pattern, name in _ROUTES:
            found = pattern.match(path)
            if found and route_method == method:
                return self._dispatch(name, found.group(1) if found.groups() else "", params, body)
        if any(pattern.match(path) for _, pattern, _ in _ROUTES):
            raise ApiError(405, "Method not allowed", "METHOD_NOT_ALLOWED")
        raise ApiError(404, "Not found", "NOT_FOUND")

    def _dispatch(self, name: str, arg: str, params: dict[str, str], body: t.Any) -> t.Any:
        fake = self.fake
        if name == "projects":
            return fake.list_projects(params)
        if name == "filter":
            return fake.filter_feedback(arg, body, params)
        if name == "filter_count":
            return fake.count_feedback(arg, body)
        if name == "feedbacks":
            return fake.list_feedback(arg, params)
        if name == "count":
            return fake.count_feedback(arg, None)
        return fake.list_assignees(arg)

    def _serve_fault(self, fault: Fault, record: RecordedRequest) -> bool:
        """Serve a fault; False means "then answer normally" (a stall, a call, a mangle)."""
        if fault.kind == "stall":
            time.sleep(fault.seconds)
            return False
        if fault.kind == "call":
            if fault.action is not None:
                fault.action()
            return False
        if fault.kind in {"mangle", "trickle"}:
            return False
        if fault.kind == "reset":
            record.status = -1
            self.close_connection = True
            self.connection.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
            self.connection.close()
            return True
        if fault.kind == "truncate":
            body = fault.body or b'{"status": true, "data": {"has_more": false, "feedbacks": ['
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body) * 2))
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
            self.close_connection = True
            record.status = 200
            return True
        status = fault.status if fault.kind == "status" else 200
        if fault.body is not None:
            body = fault.body
        else:
            body = json.dumps(
                {
                    "status": False,
                    "msg": HTTPStatus(status).phrase,
                    "errortype": "FAULT",
                    "errordata": {},
                }
            ).encode()
        record.status = status
        self.send_response(status)
        headers = {"Content-Type": "application/json", **fault.headers}
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        return True

    def _send_trickle(self, body: bytes, seconds: float, record: RecordedRequest) -> None:
        """A 200 with the body's real length, sent one byte every ``seconds``."""
        record.status = 200
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.close_connection = True
        try:
            for offset in range(len(body)):
                self.wfile.write(body[offset : offset + 1])
                self.wfile.flush()
                time.sleep(seconds)
        except OSError:  # the client gave up and hung up
            return

    def _send_json(self, status: int, payload: t.Any, record: RecordedRequest) -> None:
        self._send_bytes(status, json.dumps(payload).encode(), record)

    def _send_bytes(self, status: int, body: bytes, record: RecordedRequest) -> None:
        record.status = status
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main() -> None:
    """Serve sample data until interrupted (for the demo and manual poking).

    ``--prerendered`` serves benchmark data instead; ``--control`` takes commands on stdin
    (``latency <ms>``, ``cpu``) and stops at end of input, so a parent process that dies
    never leaves the server behind.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
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
            _serve_commands(fake, sys.stdin, sys.stdout)
        else:
            threading.Event().wait()
    except KeyboardInterrupt:
        pass
    fake.stop()


def _serve_commands(fake: FakeUsersnap, commands: t.TextIO, answers: t.TextIO) -> None:
    """Answer one JSON line per command until end of input."""
    for line in commands:
        command, *rest = line.split() or [""]
        if command == "latency":
            fake.latency_seconds = float(rest[0]) / 1000
            answer: dict[str, t.Any] = {"latency_ms": fake.latency_seconds * 1000}
        elif command == "cpu":
            usage = resource.getrusage(resource.RUSAGE_SELF)
            answer = {"cpu_s": usage.ru_utime + usage.ru_stime, "maxrss_kb": usage.ru_maxrss}
        else:
            answer = {"error": f"unknown command {command!r}"}
        answers.write(json.dumps(answer) + "\n")
        answers.flush()


if __name__ == "__main__":
    main()
