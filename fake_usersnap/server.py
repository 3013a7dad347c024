"""The fake Usersnap API's state: data and its control methods, faults, the JWT check.

:class:`FakeUsersnap` holds the projects, feedback and assignees, the scripted faults and
the request log, checks the JWT the way Usersnap documents it, and serves it all on
127.0.0.1 through :mod:`fake_usersnap.handler` (HTTP) and :mod:`fake_usersnap.endpoints`
(what each route answers).
"""

from __future__ import annotations

import datetime as dt
import random
import re
import secrets
import threading
import time
import typing as t
import uuid

import jwt

from fake_usersnap.contract import ContractLog
from fake_usersnap.data import SampleData, text_input
from fake_usersnap.faults import Fault, FaultKind, RecordedRequest
from fake_usersnap.handler import Handler, QuietServer
from fake_usersnap.prerendered import PrerenderedFeedback
from fake_usersnap.protocol import API_PREFIX, ApiError, ProjectsPaging, utc_iso


class FakeUsersnap:
    """The fake API: data, auth, faults, and a threaded HTTP server on 127.0.0.1.

    As strict as ``openapi.json`` where it is explicit: ``GET /projects`` takes no query
    parameter and lists every project in one answer (no cursor); a paged feedback list
    takes ``limit`` (1 to 100) and ``after`` alone; a ``created_at`` filter value is
    whole-second UTC (``2023-03-22T00:00:00Z``). Anything else is a 400 in the spec's error
    envelope. Where the spec is silent, switches (off by default) make it answer as a real
    server might: :attr:`projects_paging`, :attr:`filter_ignores_after`,
    :attr:`count_leaves_out_demo`,
    :meth:`refuse_project`. With :attr:`contract` set, every request is also checked
    against the spec itself (:mod:`fake_usersnap.contract`).
    """

    #: Where each request's problems with the spec go; the test suite sets one for every
    #: test (a class attribute, so every fake a test makes reports to it).
    contract: ContractLog | None = None

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
        #: How far the fake's clock is from the real one (negative: behind): it checks a
        #: token's iat and exp, and writes its Date header, by that clock.
        self.clock_offset_seconds = 0.0
        #: ``GET /projects`` pages as the spec leaves open (None: one answer, as in the spec).
        self.projects_paging: ProjectsPaging | None = None
        #: Projects whose feedback routes answer 403 or 404 (see :meth:`refuse_project`).
        self.refused_projects: dict[str, int] = {}
        #: The filter endpoint ignores ``after``: every page is the first one again.
        self.filter_ignores_after = False
        #: The count endpoints leave out demo feedback (``is_demo``), which the lists show.
        self.count_leaves_out_demo = False
        #: Held while the data is read or changed (by the endpoints, from server threads).
        self.lock = threading.RLock()
        self._server: QuietServer | None = None
        self._thread: threading.Thread | None = None
        #: Set by stop(), so answers still going out (a trickle) end at once.
        self.closing = threading.Event()
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
        self.closing.clear()
        server = QuietServer(("127.0.0.1", port), Handler)
        server.fake = self
        self._server = server
        # A short poll interval: stop() waits for it, and every test stops a fake.
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port; answers still trickling out end within 50 ms."""
        self.closing.set()
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
        """Add a project with no feedback and no assignees; ``fields`` override defaults."""
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
        with self.lock:
            self.projects[project_id] = project
            self.feedback[project_id] = []
            self.assignees[project["api_key"]] = []
        return project

    def add_feedback(self, project_id: str, **fields: t.Any) -> dict[str, t.Any]:
        """Add one feedback item; unspecified fields get plausible values."""
        with self.lock:
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
                "ordered_inputs": [text_input(0, "Comment", comment)],
                "labels": [],
                **fields,
            }
            self.feedback[project_id].append(item)
            self._refresh_counts(project_id)
            return item

    def update_feedback(self, feedback_id: str, **fields: t.Any) -> dict[str, t.Any]:
        """Change an item the way an edit in Usersnap would (updated_at moves on)."""
        with self.lock:
            project_id, position = self._locate(feedback_id)
            item = self.feedback[project_id][position]
            item.update(fields)
            item["updated_at"] = fields.get("updated_at") or self._tick()
            self._refresh_counts(project_id)
            return item

    def delete_feedback(self, feedback_id: str) -> dict[str, t.Any]:
        """Delete an item: gone from every listing, filter page and count; returns it.

        A cursor naming it afterwards gets the 400 an unknown cursor gets.
        """
        with self.lock:
            project_id, position = self._locate(feedback_id)
            item = self.feedback[project_id].pop(position)
            self._refresh_counts(project_id)
            return item

    def remove_project(self, project_id: str) -> None:
        """Delete a project with its feedback and assignees, as deleting it in Usersnap would.

        Requests for it then get 400 SITE_NOT_FOUND, by project id and by API key alike.
        """
        with self.lock:
            project = self.projects.pop(project_id)
            self.feedback.pop(project_id, None)
            self.assignees.pop(project["api_key"], None)
            if self.prerendered is not None:
                self.prerendered.projects.pop(project_id, None)

    def refuse_project(self, project_id: str, status: int = 404) -> None:
        """Answer ``status`` to the project's feedback routes, the project still listed.

        403 FORBIDDEN, 404 NOT_FOUND, or 400 SITE_NOT_FOUND (the spec's own error, as for a
        project deleted since the listing); its assignees still answer. ``status=0`` lifts
        the refusal.
        """
        with self.lock:
            if status:
                self.refused_projects[project_id] = status
            else:
                self.refused_projects.pop(project_id, None)

    def add_assignee(self, project_id: str, **fields: t.Any) -> dict[str, t.Any]:
        """Make a user assignable in a project; ``fields`` override the generated ones."""
        user = {
            "user_id": str(uuid.uuid4()),
            "first_name": "Ada",
            "last_name": "Lovelace",
            "gravatar_url": "https://www.gravatar.com/avatar/0",
            **fields,
        }
        with self.lock:
            self.assignees[self.projects[project_id]["api_key"]].append(user)
        return user

    def remove_assignee(self, project_id: str, user_id: str) -> dict[str, t.Any]:
        """Take a user off a project's assignees (KeyError if not one); returns the user."""
        with self.lock:
            users = self.assignees[self.projects[project_id]["api_key"]]
            for position, user in enumerate(users):
                if user["user_id"] == user_id:
                    return users.pop(position)
        raise KeyError(user_id)

    def all_feedback_ids(self) -> set[str]:
        """Every feedback id the fake holds now, across projects."""
        with self.lock:
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
        verified token is not verified again. ``eager`` renders every item now (the server
        then only joins bytes); otherwise items are rendered on request and not kept, so
        200k items cost the server little memory. Returns the project ids.
        """
        if self.prerendered is None:
            self.prerendered = PrerenderedFeedback(self, item_bytes=item_bytes, seed=seed)
        self.record_requests = False
        self.cache_verified_tokens = True
        project_ids = self.prerendered.add_projects(projects, per_project)
        if eager:
            self.prerendered.render_all()
        else:
            self.prerendered.cache_items = False
        return project_ids

    def _locate(self, feedback_id: str) -> tuple[str, int]:
        """The project and list position of an item (KeyError if the fake has none)."""
        for project_id, items in self.feedback.items():
            for position, item in enumerate(items):
                if item["feedback_id"] == feedback_id:
                    return project_id, position
        raise KeyError(feedback_id)

    def _tick(self) -> str:
        """A strictly increasing clock, so generated data is deterministic."""
        with self.lock:
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
        """Script a fault, e.g. ``inject("status", status=429, headers={"Retry-After": "1"})``.

        The kinds and their options: :class:`~fake_usersnap.faults.Fault`; ``match`` limits
        it to one endpoint (see :mod:`fake_usersnap.faults`).
        """
        fault = Fault(kind=kind, **options)
        with self.lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        """Drop every scripted fault, used or not."""
        with self.lock:
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

    def record(self, request: RecordedRequest) -> None:
        """Keep a request for :meth:`requests_to` (unless the benchmark switched that off)."""
        if self.record_requests:
            with self.lock:
                self.requests.append(request)

    def take_fault(self, method: str, path: str) -> Fault | None:
        """The fault that strikes this request, if any (its ``times``/``skip`` counted)."""
        target = f"{method} {path}"
        with self.lock:
            for fault in self.faults:
                if fault.times <= 0 or not re.search(fault.match, target):
                    continue
                if fault.skip > 0:
                    fault.skip -= 1
                    return None
                fault.times -= 1
                return fault
        return None

    # ---------------------------------------------------------------------- auth

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
                options={"require": ["exp", "iat"], "verify_exp": False, "verify_iat": False},
            )
        except jwt.PyJWTError as exc:
            raise ApiError(401, "Authorization failed", "WRONG_AUTH") from exc
        now = time.time() + self.clock_offset_seconds  # checked by the fake's own clock
        iat, exp = claims["iat"], claims["exp"]
        if not (isinstance(iat, int | float) and isinstance(exp, int | float) and iat <= now < exp):
            raise ApiError(401, "Authorization failed: token not valid now", "WRONG_AUTH")
        if not self.rest_api_enabled:
            raise ApiError(403, "REST API is not enabled for this plan", "FORBIDDEN")
        if self.cache_verified_tokens:
            with self.lock:
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
