"""The fault suite: full syncs under every fault the network and the API have.

Each test injects faults into the canary fake and plays a sync with the ``scenario``
fixture, which asserts what must hold whatever the fault (see ``harness/reliability.py``):
every feedback_id arrives (after a resume when the run must fail), every STATE printed is a
safe resume point, no secret, token or feedback text leaks, and only GET and the filter
POST are sent. The tests add what is specific to their fault: waits, messages, bounds.
Figures land in ``docs/reliability.md`` (``make reliability``). The 429 scenarios are in
``test_rate_limits.py`` beside this file.
"""

from __future__ import annotations

import typing as t
from types import SimpleNamespace

import pytest

from harness.expect import tries_of_filter_request
from harness.reliability import PAGE_SIZE, FaultScenario
from harness.singer_run import bookmarks
from tap_usersnap.client import (
    MAX_RATE_LIMITED,
    MAX_RETRY_AFTER_SECONDS,
    MAX_TRIES,
    CredentialsRejectedError,
    PaginationError,
    ProjectRefusedError,
    UsersnapError,
)

if t.TYPE_CHECKING:
    from fake_usersnap import FakeUsersnap, RecordedRequest

FILTER = r"POST .*/filter$"
POLICY = SimpleNamespace(
    max_tries=MAX_TRIES,
    max_rate_limited=MAX_RATE_LIMITED,
    max_retry_after_seconds=MAX_RETRY_AFTER_SECONDS,
)

SERVER = "server errors and network"
BODIES = "unreadable 200 answers"
PAGING = "pagination"
ACCESS = "credentials and projects"
DATA = "data oddities"
NEVER = "a server that never recovers"


def pages(fake: FakeUsersnap, project_id: str) -> list[list[dict[str, t.Any]]]:
    """A project's feedback as the tap reads it: oldest first, in pages of PAGE_SIZE."""
    items = sorted(fake.feedback[project_id], key=lambda i: (i["created_at"], i["feedback_id"]))
    return [items[n : n + PAGE_SIZE] for n in range(0, len(items), PAGE_SIZE)]


def ids_of(items: t.Iterable[dict[str, t.Any]]) -> set[str]:
    return {i["feedback_id"] for i in items}


# ------------------------------------------------------------- server errors and network


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_burst_of_server_errors(
    scenario: FaultScenario, sleeps: list[float], status: int
) -> None:
    burst = POLICY.max_tries - 1
    scenario.fake.inject("status", status=status, match=FILTER, skip=1, times=burst)
    played = scenario.play(f"{status} x{burst} in a row", group=SERVER)
    assert len(sleeps) == burst
    assert sleeps == sorted(sleeps)  # exponential backoff
    assert f"Usersnap answered {status} to POST" in played.logs


def test_server_errors_on_the_projects_listing(
    scenario: FaultScenario, sleeps: list[float]
) -> None:
    scenario.fake.inject("status", status=503, match="GET /projects$", times=2)
    scenario.play("503 x2 on GET /projects", group=SERVER)
    assert len(sleeps) == 2


def test_connection_reset_before_the_response(scenario: FaultScenario, sleeps: list[float]) -> None:
    scenario.fake.inject("reset", match=FILTER, skip=2, times=3)
    played = scenario.play("connection reset x3 before the response", group=SERVER)
    assert len(sleeps) == 3
    host = scenario.fake.url.split("//")[1].split("/")[0]
    assert f"Connection to {host} failed: the connection was reset" in played.logs


def test_response_cut_off_mid_body(scenario: FaultScenario, sleeps: list[float]) -> None:
    scenario.fake.inject("truncate", match=FILTER, skip=1, times=2)
    scenario.play("200 cut off mid-body x2", group=SERVER)
    assert len(sleeps) == 2


def test_server_stalling_past_the_request_timeout(
    scenario: FaultScenario, sleeps: list[float]
) -> None:
    scenario.fake.inject("stall", match=FILTER, skip=1, seconds=3)
    played = scenario.play(
        "stall of 3 s, request_timeout 1 s", group=SERVER, settings={"request_timeout": 1}
    )
    assert len(sleeps) == 1
    assert "Usersnap did not answer in time" in played.logs


# ------------------------------------------------------------------ unreadable 200 answers


@pytest.mark.parametrize(
    ("name", "body", "content_type"),
    [
        ("an HTML error page", b"<html><body>502 Bad Gateway</body></html>", "text/html"),
        ("invalid JSON", b'{"status": true, "data": {"has_more": tr', "application/json"),
        ("JSON that is not an object", b"[]", "application/json"),
    ],
)
def test_200_with_an_unreadable_body_is_retried(
    scenario: FaultScenario, sleeps: list[float], name: str, body: bytes, content_type: str
) -> None:
    scenario.fake.inject(
        "raw", body=body, headers={"Content-Type": content_type}, match=FILTER, skip=1, times=2
    )
    played = scenario.play(f"200 with {name} x2", group=BODIES)
    assert len(sleeps) == 2
    assert "the body is not a JSON object" in played.logs


def test_200_with_status_false_fails_clearly(scenario: FaultScenario) -> None:
    scenario.fake.inject(
        "raw",
        body=b'{"status": false, "msg": "Oops", "errortype": "INTERNAL", "errordata": {}}',
        match=FILTER,
        skip=4,
    )
    played = scenario.play(
        '200 with {"status": false}',
        group=BODIES,
        fails=UsersnapError,
        message=r"POST /v0\.1/projects/[^/]+/feedbacks/filter with status false: INTERNAL: Oops",
    )
    assert played.first.ids(), "the pages before the fault were delivered"


# ------------------------------------------------------------------------------ pagination


def on_page(number: int, transform: t.Callable[[dict, RecordedRequest], dict]) -> dict:
    """``inject`` options that rewrite the first project's page ``number`` (1-based)."""
    return {"match": FILTER, "skip": number - 1, "transform": transform}


def test_has_more_without_a_cursor_continues_after_the_last_item(scenario: FaultScenario) -> None:
    def drop_cursor(envelope: dict, request: RecordedRequest) -> dict:
        envelope["data"]["next"] = None
        return envelope

    scenario.fake.inject("mangle", **on_page(2, drop_cursor))
    played = scenario.play("has_more: true without a cursor", group=PAGING)
    assert sorted(played.first.ids()) == sorted(scenario.fake.all_feedback_ids())
    continued = [r for r in scenario.fake.requests_to(FILTER) if r.params.get("after")]
    assert continued, "the read went on with the last item's id as the cursor"


def test_cursor_repeated_from_an_earlier_page_fails_clearly(scenario: FaultScenario) -> None:
    def repeat_cursor(envelope: dict, request: RecordedRequest) -> dict:
        envelope["data"]["next"]["after"] = request.params["after"]
        return envelope

    scenario.fake.inject("mangle", **on_page(2, repeat_cursor))
    scenario.play(
        "a cursor repeated from the page before",
        group=PAGING,
        fails=PaginationError,
        message="a second time after 2 page.*rather than looping forever",
    )


def test_an_empty_page_with_has_more_is_followed(scenario: FaultScenario) -> None:
    fake = scenario.fake
    project_pages = pages(fake, next(iter(fake.projects)))
    hidden = ids_of(project_pages[1])

    def empty_page(envelope: dict, request: RecordedRequest) -> dict:
        assert ids_of(envelope["data"]["feedbacks"]) == hidden
        envelope["data"]["feedbacks"] = []
        return envelope

    fake.inject("mangle", **on_page(2, empty_page))
    played = scenario.play(
        "an empty page with has_more: true",
        group=PAGING,
        expected=fake.all_feedback_ids() - hidden,  # the server hid them: nothing to deliver
    )
    assert ids_of(project_pages[2]) <= set(played.ids), "the page after the empty one"


def test_has_more_on_the_last_page(scenario: FaultScenario) -> None:
    def claim_more(envelope: dict, request: RecordedRequest) -> dict:
        if envelope["data"]["feedbacks"]:
            envelope["data"]["has_more"] = True
        return envelope

    scenario.fake.inject("mangle", match=FILTER, times=1000, transform=claim_more)
    scenario.play("has_more: true on every page, the last one too", group=PAGING)


# ---------------------------------------------------------------- credentials and projects


def test_credentials_revoked_mid_run(scenario: FaultScenario, sleeps: list[float]) -> None:
    fake = scenario.fake
    # The listing, project 1's edit mark and three pages, then the key is revoked: project
    # 2's requests are refused.
    fake.inject("call", skip=5, action=lambda: setattr(fake, "revoked", True))
    played = scenario.play(
        "credentials revoked mid-run (401 from the 9th request on)",
        group=ACCESS,
        fails=CredentialsRejectedError,
        message=rf"rejected the credentials \(401\) of JWT ID '{fake.jwt_id}'",
        recover=lambda: setattr(fake, "revoked", False),
    )
    assert len(played.first.ids()) == 12 + PAGE_SIZE  # project 1, page 1 of project 2
    assert sleeps == []  # one re-signed try at once, then the clear failure


def test_credentials_revoked_mid_run_through_the_cli(scenario: FaultScenario) -> None:
    fake = scenario.fake
    fake.inject("call", skip=5, action=lambda: setattr(fake, "revoked", True))
    played = scenario.play(
        "credentials revoked mid-run, CLI",
        group=ACCESS,
        fails=CredentialsRejectedError,
        message=r"ERROR .*Usersnap rejected the credentials \(401\)",
        recover=lambda: setattr(fake, "revoked", False),
        cli=True,
    )
    assert played.first.returncode == 1
    assert played.runs[1].returncode == 0


def deleted_on_its_second_page(fake: FakeUsersnap) -> tuple[str, set[str]]:
    """Delete the second project as the tap asks for its second page."""
    project_id = list(fake.projects)[1]
    first_page = ids_of(pages(fake, project_id)[0])
    fake.inject(
        "call",
        match=f"POST /projects/{project_id}/feedbacks/filter$",
        skip=1,
        action=lambda: fake.remove_project(project_id),
    )
    return project_id, first_page


def test_project_deleted_mid_run_is_named_and_the_others_continue(
    scenario: FaultScenario,
) -> None:
    fake = scenario.fake
    project_id, first_page = deleted_on_its_second_page(fake)
    played = scenario.play(
        "project deleted mid-run (400 SITE_NOT_FOUND)",
        group=ACCESS,
        fails=ProjectRefusedError,
        message=rf"Skipped 1 Usersnap project\(s\) .*'{project_id}'; every other project",
    )
    others = fake.all_feedback_ids()
    assert set(played.first.ids()) == others | first_page, "the same run synced the others"
    # Named as it happens (a WARNING); the run's one ERROR line is its failure at the end.
    warned = [line for line in played.logs.splitlines() if line.startswith("WARNING")]
    assert any(project_id in line and "SITE_NOT_FOUND" in line for line in warned), warned
    assert not [line for line in played.logs.splitlines() if line.startswith("ERROR")]
    final = bookmarks(played.first.final_state)
    for other in fake.projects:
        assert final[other] == max(i["created_at"] for i in fake.feedback[other])


def test_project_deleted_mid_run_through_the_cli(scenario: FaultScenario) -> None:
    fake = scenario.fake
    project_id, first_page = deleted_on_its_second_page(fake)
    played = scenario.play(
        "project deleted mid-run, CLI",
        group=ACCESS,
        fails=ProjectRefusedError,
        message=rf"ERROR .*Skipped 1 Usersnap project\(s\) .*'{project_id}'",
        cli=True,
    )
    assert played.first.returncode == 1
    assert set(played.first.ids()) == fake.all_feedback_ids() | first_page
    assert f"Usersnap project '{project_id}' does not exist" in played.first.stderr


# -------------------------------------------------------------------------- data oddities

OPTIONAL_FIELDS = (
    "email",
    "priority",
    "assignee_id",
    "client",
    "custom_data",
    "screenshot",
    "screen_recording",
    "labels",
    "ordered_inputs",
    "updated_at",
    "public_link",
    "feedback_number",
    "status_type",
    "is_demo",
)


def test_null_and_missing_optional_fields(scenario: FaultScenario) -> None:
    fake = scenario.fake
    project_id = next(iter(fake.projects))
    nulls, missing = fake.feedback[project_id][:2]
    for field in OPTIONAL_FIELDS:
        nulls[field] = None
        del missing[field]
    played = scenario.play("null and missing optional fields", group=DATA)
    records = {r["feedback_id"]: r for r in played.first.records("feedback")}
    for item in (nulls, missing):
        record = records[item["feedback_id"]]
        assert all(record.get(field) is None for field in OPTIONAL_FIELDS), record
        assert record["created_at"] == item["created_at"]


def test_fields_the_schema_does_not_know(scenario: FaultScenario) -> None:
    fake = scenario.fake
    item = fake.feedback[next(iter(fake.projects))][0]
    item["sentiment"] = {"score": 0.87, "label": "positive"}
    item["client"] = {**(item["client"] or {}), "device_memory_gb": 8}
    item["custom_data"] = {"brand_new_key": [1, 2, {"deep": True}]}
    played = scenario.play("fields the schema does not know", group=DATA)
    record = next(
        r for r in played.first.records("feedback") if r["feedback_id"] == item["feedback_id"]
    )
    assert record["custom_data"] == {"brand_new_key": [1, 2, {"deep": True}]}  # free-form
    assert record["client"]["city_name"] == item["client"]["city_name"]


def test_timestamps_with_offsets_other_than_z(scenario: FaultScenario) -> None:
    fake = scenario.fake
    project_id = fake.add_project("Offsets")["project_id"]
    written_as = {  # in time order; as strings, in a different order
        "2024-06-01T10:00:00+02:00": "2024-06-01T08:00:00.000000Z",
        "2024-06-01T08:30:00Z": "2024-06-01T08:30:00.000000Z",
        "2024-06-01T04:00:00-05:00": "2024-06-01T09:00:00.000000Z",
        "2024-06-01T09:30:00.5+00:00": "2024-06-01T09:30:00.500000Z",
        "2024-06-01T15:30:00+05:45": "2024-06-01T09:45:00.000000Z",
        "2024-06-01T10:00:00.000001Z": "2024-06-01T10:00:00.000001Z",
        "2024-06-01T01:30:00-09:00": "2024-06-01T10:30:00.000000Z",
    }
    items = {fake.add_feedback(project_id, created_at=ts)["feedback_id"]: ts for ts in written_as}
    played = scenario.play("timestamps with offsets other than Z", group=DATA)
    records = [r for r in played.first.records("feedback") if r["project_id"] == project_id]
    assert [written_as[items[r["feedback_id"]]] for r in records] == list(written_as.values())
    assert all(r["created_at"] == written_as[items[r["feedback_id"]]] for r in records)
    assert bookmarks(played.first.final_state)[project_id] == "2024-06-01T10:30:00.000000Z"


def test_unicode_and_very_long_text(scenario: FaultScenario) -> None:
    fake = scenario.fake
    project_id = fake.add_project("Ünïcødé ✓ 测试 — עברית")["project_id"]
    texts = [
        "Emoji 👩🏽‍💻🇦🇹 and ZWJ, combining é (e\u0301), RTL עברית العربية, CJK 漢字かなカナ",
        "Line\nbreaks\r\n, tab\t, NUL \x00, line separator \u2028, BOM \ufeff, quotes \"'\\",
        "A broken emoji half: \ud83d (a lone surrogate, as cut at a length limit)",
        "long " + "Lorem ipsum dolor sit amet, 😀 ünïcødé. " * 5000,  # about 200 000 chars
    ]
    items = {fake.add_feedback(project_id, comment=text)["feedback_id"]: text for text in texts}
    played = scenario.play("unicode and very long text", group=DATA)
    records = {r["feedback_id"]: r for r in played.first.records("feedback")}
    for feedback_id, text in items.items():
        # Every target stores it: NUL removed, a lone surrogate replaced; the rest as sent.
        storable = text.replace("\x00", "").replace("\ud83d", "\ufffd")
        assert records[feedback_id]["ordered_inputs"][0]["text_value"] == storable
        assert records[feedback_id]["project_name"] == "Ünïcødé ✓ 测试 — עברית"


def test_items_repeated_across_pages_are_emitted_once(scenario: FaultScenario) -> None:
    fake = scenario.fake
    first_project = pages(fake, next(iter(fake.projects)))

    repeats = [
        first_project[0][-1:],  # page 2 starts with the last item of page 1 (at the bookmark)
        first_project[0][:3],  # page 3 starts with the first three items (older)
    ]

    def repeat_items(envelope: dict, request: RecordedRequest) -> dict:
        envelope["data"]["feedbacks"][:0] = repeats.pop(0)
        return envelope

    fake.inject("mangle", match=FILTER, skip=1, times=2, transform=repeat_items)
    played = scenario.play("items repeated on later pages (at the bookmark and older)", group=DATA)
    assert sorted(played.ids) == sorted(set(played.ids))
    assert "already read in this run" in played.logs


# ------------------------------------------------------------- a server that never recovers

FOREVER = 10**6


@pytest.mark.parametrize(
    ("name", "fault", "settings", "message", "waits"),
    [
        (
            "503 forever",
            {"kind": "status", "status": 503},
            {},
            r"answered 503 to POST .*; gave up after 6 tries",
            POLICY.max_tries - 1,
        ),
        (
            "connection resets forever",
            {"kind": "reset"},
            {},
            r"Connection to 127\.0\.0\.1:\d+ failed: the connection was reset by the server or "
            r"a proxy; gave up after 6 tries",
            POLICY.max_tries - 1,
        ),
        (
            "200 with an HTML page forever",
            {"kind": "raw", "body": b"<html>maintenance</html>"},
            {},
            r"body is not a JSON object .*; gave up after 6 tries",
            POLICY.max_tries - 1,
        ),
        (
            "stalls past the timeout forever",
            {"kind": "stall", "seconds": 2},
            {"request_timeout": 1},
            r"Usersnap did not answer in time \(request_timeout\); gave up after 6 tries",
            POLICY.max_tries - 1,
        ),
        (
            "429 forever, without a usable Retry-After",
            {"kind": "status", "status": 429, "headers": {"Retry-After": "soon"}},
            {},
            r"rate-limited POST .* \(429\): gave up after 21 rate-limited tries",
            POLICY.max_rate_limited,
        ),
    ],
)
def test_a_server_that_never_recovers_ends_the_run_within_bounds(  # noqa: PLR0917
    scenario: FaultScenario,
    sleeps: list[float],
    name: str,
    fault: dict[str, t.Any],
    settings: dict[str, t.Any],
    message: str,
    waits: int,
) -> None:
    fake = scenario.fake
    options = {k: v for k, v in fault.items() if k != "kind"}
    fake.inject(fault["kind"], match=FILTER, skip=4, times=FOREVER, **options)
    played = scenario.play(
        name, group=NEVER, settings=settings, fails=UsersnapError, message=message
    )
    assert tries_of_filter_request(fake, 4) == waits + 1  # bounded tries ...
    assert len(sleeps) == waits
    assert sum(sleeps) <= waits * 60  # ... and bounded waits (at most 20 minutes here)
    assert len(played.first.ids()) == 12 + PAGE_SIZE  # project 1 and a page: not lost


# ------------------------------------------------- the same faults, read ahead concurrently

READ_AHEAD = {"concurrency": 4, "capture_edits": True, "page_size": 5}
CONCURRENT = "read ahead, 4 projects at once, with edit scans"


@pytest.mark.parametrize(
    ("name", "fault"),
    [
        ("503 x5 spread over projects", {"kind": "status", "status": 503, "times": 5}),
        (
            "429 x6, Retry-After 2",
            {"kind": "status", "status": 429, "times": 6, "headers": {"Retry-After": "2"}},
        ),
        ("connection reset x4", {"kind": "reset", "times": 4}),
        (
            "HTML page with 200 x3",
            {
                "kind": "raw",
                "times": 3,
                "body": b"<html>oops</html>",
                "headers": {"Content-Type": "text/html"},
            },
        ),
    ],
)
@pytest.mark.usefixtures("read_ahead")
def test_faults_while_reading_ahead(
    scenario: FaultScenario, sleeps: list[float], name: str, fault: dict
) -> None:
    kind = fault.pop("kind")
    scenario.fake.inject(kind, match=FILTER, skip=2, **fault)
    played = scenario.play(f"{name}, read ahead", group=CONCURRENT, settings=READ_AHEAD)
    assert sleeps
    assert len(played.ids) == len(set(played.ids))


@pytest.mark.usefixtures("read_ahead")
def test_project_deleted_while_reading_ahead(scenario: FaultScenario) -> None:
    fake = scenario.fake
    project_id, _ = deleted_on_its_second_page(fake)  # its edit scan, then gone
    played = scenario.play(
        "project deleted mid-run, read ahead",
        group=CONCURRENT,
        settings=READ_AHEAD,
        fails=ProjectRefusedError,
        message=rf"Skipped 1 Usersnap project\(s\) .*'{project_id}'",
    )
    assert fake.all_feedback_ids() <= set(played.first.ids())
