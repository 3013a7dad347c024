"""A page that ignores the clock, the order or the filter never moves a bookmark past data.

Each test drives the fake API into one misbehaviour (:mod:`tap_usersnap.feedback.checks`) and
asserts on what was delivered (records), what was saved (state bookmarks, counts, edit
marks) and what was said (warnings); a last run without the fault must lose nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
import typing as t
import uuid

import pytest

from fake_usersnap.protocol import next_cursor, utc_iso
from harness.singer_run import SyncResult, bookmarks, run_cli_killed, run_sync
from tap_usersnap.client import PaginationError
from tap_usersnap.feedback import RUNAWAY_PAGES

if t.TYPE_CHECKING:
    from fake_usersnap import FakeUsersnap
    from fake_usersnap.faults import RecordedRequest

FOREVER = 10**6
PAGE_SIZE = 5
FUTURE = "2099-01-01T00:00:00.000000Z"
COUNT = r"POST .*/filter/count$"
FILTER = r"POST .*/feedbacks/filter$"


def config(fake: FakeUsersnap, **overrides: t.Any) -> dict[str, t.Any]:
    return fake.config(concurrency=1, page_size=PAGE_SIZE, **overrides)


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def items_of(fake: FakeUsersnap, project_id: str) -> list[dict[str, t.Any]]:
    return sorted(fake.feedback[project_id], key=lambda i: i["created_at"])


def newest_real(fake: FakeUsersnap, project_id: str) -> str:
    return max(i["created_at"] for i in fake.feedback[project_id] if i["created_at"] < "2090")


def now_iso() -> str:
    """Now, as the API writes timestamps (the fake's own clock stays in 2024)."""
    return utc_iso(dt.datetime.now(dt.timezone.utc))


def activated(result: SyncResult) -> list[str]:
    return [m["stream"] for m in result.messages if m["type"] == "ACTIVATE_VERSION"]


def new_feedback_pass(request: RecordedRequest) -> bool:
    """The created_at pass's requests (not the edit scan's, which sort by updated_at)."""
    order = (request.body or {}).get("order_by") or {}
    return order.get("order_by_type") == "created_at"


def ignoring_the_filter(
    fake: FakeUsersnap, project_id: str, *, newest_first: bool = False
) -> t.Callable[[dict, RecordedRequest], dict]:
    """A transform answering every item of the project (no created_at filter), keyset-paged."""

    def transform(envelope: dict, request: RecordedRequest) -> dict:
        if not new_feedback_pass(request):
            return envelope
        items = sorted(fake.feedback[project_id], key=lambda i: (i["created_at"], i["feedback_id"]))
        if newest_first:
            items.reverse()
        after, limit = request.params.get("after"), int(request.params.get("limit", "50"))
        start = 0
        if after:
            start = 1 + next(n for n, i in enumerate(items) if i["feedback_id"] == after)
        chosen = items[start : start + limit]
        envelope["data"] = {
            "has_more": start + limit < len(items),
            "count": len(items),
            "feedbacks": chosen,
            "next": next_cursor(chosen[-1]["feedback_id"] if chosen else None, limit),
        }
        return envelope

    return transform


def everything_at_once(
    fake: FakeUsersnap, project_id: str
) -> t.Callable[[dict, RecordedRequest], dict]:
    """A transform answering the pass's first request with every item of the project.

    Oldest first, whatever the created_at filter asked, and no more pages (a cursor naming
    an item outside the filter would be refused by the fake itself).
    """

    def transform(envelope: dict, request: RecordedRequest) -> dict:
        if new_feedback_pass(request) and not request.params.get("after"):
            envelope["data"]["feedbacks"] = items_of(fake, project_id)
            envelope["data"]["has_more"] = False
            envelope["data"]["next"] = None
        return envelope

    return transform


# ---------------------------------------------------------------------- the clock


def test_an_item_created_in_the_future_is_emitted_but_never_bookmarked(
    fake: FakeUsersnap, caplog: pytest.LogCaptureFixture
) -> None:
    project_a = next(iter(fake.projects))
    newest = newest_real(fake, project_a)
    future = fake.add_feedback(project_a, created_at=FUTURE, updated_at=newest)
    with caplog.at_level(logging.WARNING):
        first = run_sync(config(fake), check=False)
    assert first.returncode == 0, first.error
    assert future["feedback_id"] in first.ids()
    assert set(first.ids()) == fake.all_feedback_ids()
    for state in first.states:
        assert (bookmarks(state).get(project_a) or "") < "2090"
    assert bookmarks(first.final_state)[project_a] == newest
    noted = [w for w in warnings(caplog) if w.startswith("Noted feedback")]
    assert len(noted) == 1
    assert f"(id {future['feedback_id']}) of project {project_a}" in noted[0]
    assert f"its created_at {FUTURE} is in the future" in noted[0]

    added = [fake.add_feedback(project_a)["feedback_id"] for _ in range(5)]
    second = run_sync(config(fake), first.final_state, check=False)
    assert second.returncode == 0, second.error
    assert set(added) <= set(second.ids())
    assert bookmarks(second.final_state)[project_a] == newest_real(fake, project_a)
    assert "feedback" not in activated(second)  # the future item inflates no count


def test_an_item_edited_in_the_future_never_becomes_the_edit_mark(
    fake: FakeUsersnap, caplog: pytest.LogCaptureFixture
) -> None:
    project_a = next(iter(fake.projects))
    items = items_of(fake, project_a)
    fake.update_feedback(items[3]["feedback_id"], updated_at=FUTURE)
    with caplog.at_level(logging.WARNING):
        first = run_sync(config(fake), check=False)
    assert first.returncode == 0, first.error
    assert any(
        f"(id {items[3]['feedback_id']}) of project {project_a}: its updated_at {FUTURE} is in "
        "the future" in w
        for w in warnings(caplog)
    )
    marks = [bookmarks(s, "updated_at_mark").get(project_a) for s in first.states]
    assert not any(m and m >= "2090" for m in marks)

    # The fake's clock is in 2024; an edit after the run happens now, as a real one would.
    edited = items[7]["feedback_id"]
    fake.update_feedback(edited, status_type="done", updated_at=now_iso())
    second = run_sync(config(fake), first.final_state, check=False)
    assert second.returncode == 0, second.error
    assert edited in second.ids()
    assert (
        next(r for r in second.records("feedback") if r["feedback_id"] == edited)["status_type"]
        == "done"
    )
    marks = [bookmarks(s, "updated_at_mark").get(project_a) for s in second.states]
    assert not any(m and m >= "2090" for m in marks)

    # The same from a later run: the mark then was a real edit, and stays one.
    later = items[9]["feedback_id"]
    fake.update_feedback(later, status_type="open", updated_at=now_iso())
    third = run_sync(config(fake), second.final_state, check=False)
    assert later in third.ids()
    assert items[3]["feedback_id"] in third.ids()  # the future edit is still an edit
    assert bookmarks(third.final_state, "updated_at_mark")[project_a] < "2090"


def test_an_edit_mark_never_jumps_to_a_future_edit_seen_by_a_later_scan(
    fake: FakeUsersnap,
) -> None:
    project_a = next(iter(fake.projects))
    first = run_sync(config(fake))
    mark = bookmarks(first.final_state, "updated_at_mark")[project_a]
    items = items_of(fake, project_a)
    fake.update_feedback(items[2]["feedback_id"], updated_at=FUTURE)
    second = run_sync(config(fake), first.final_state)
    assert items[2]["feedback_id"] in second.ids()  # re-emitted: it is an edit
    second_mark = bookmarks(second.final_state, "updated_at_mark")[project_a]
    assert mark <= second_mark < "2090"
    edited = fake.update_feedback(items[5]["feedback_id"], status_type="done")  # fake's clock
    assert edited["updated_at"] > second_mark
    third = run_sync(config(fake), second.final_state)
    assert items[5]["feedback_id"] in third.ids()
    assert bookmarks(third.final_state, "updated_at_mark")[project_a] == edited["updated_at"]


# ---------------------------------------------------------------------- the order


def is_feedback_of(message: dict[str, t.Any], project_id: str) -> bool:
    return (
        message["type"] == "RECORD"
        and message["stream"] == "feedback"
        and message["record"]["project_id"] == project_id
    )


def emitted_before_each_state(result: SyncResult, project_id: str) -> list[tuple[str | None, str]]:
    """``(bookmark of the project, newest created_at of its records so far)`` per STATE."""
    pairs: list[tuple[str | None, str]] = []
    newest = ""
    for message in result.messages:
        if is_feedback_of(message, project_id):
            newest = max(newest, message["record"]["created_at"])
        elif message["type"] == "STATE":
            pairs.append((bookmarks(message["value"]).get(project_id), newest))
    return pairs


def assert_every_state_resumes_safely(
    result: SyncResult, project_id: str, items: list[dict[str, t.Any]]
) -> None:
    """Every item created before a STATE's bookmark was emitted before that STATE."""
    seen: set[str] = set()
    for message in result.messages:
        if is_feedback_of(message, project_id):
            seen.add(message["record"]["feedback_id"])
        elif message["type"] == "STATE":
            bookmark = bookmarks(message["value"]).get(project_id)
            if bookmark:
                missing = {i["feedback_id"] for i in items if i["created_at"] < bookmark} - seen
                assert not missing, f"a STATE with bookmark {bookmark} skips {missing}"


def test_pages_with_their_items_reversed_hold_the_bookmark_until_the_read_ends(
    fake: FakeUsersnap, caplog: pytest.LogCaptureFixture
) -> None:
    project_a, project_b, _ = list(fake.projects)

    def reverse(envelope: dict, request: RecordedRequest) -> dict:
        if new_feedback_pass(request):
            envelope["data"]["feedbacks"].reverse()
        return envelope

    fake.inject(
        "mangle", transform=reverse, match=rf"/{project_a}/feedbacks/filter$", times=FOREVER
    )
    with caplog.at_level(logging.WARNING):
        first = run_sync(config(fake), check=False)
    assert first.returncode == 0, first.error
    disorder = [w for w in warnings(caplog) if "out of created_at order" in w]
    assert len(disorder) == 1
    assert f"project {project_a} out of created_at order" in disorder[0]
    assert set(first.ids()) == fake.all_feedback_ids()

    pairs = emitted_before_each_state(first, project_a)
    last_a = max(n for n, m in enumerate(first.messages) if is_feedback_of(m, project_a))
    states_before_end = [
        bookmarks(m["value"]).get(project_a)
        for m in first.messages[:last_a]
        if m["type"] == "STATE"
    ]
    assert states_before_end, "STATE went out while project A was read"
    assert set(states_before_end) == {None}  # held where it was: none yet
    assert all(b is None or b <= newest for b, newest in pairs)
    assert bookmarks(first.final_state)[project_a] == newest_real(fake, project_a)
    # The other projects, answered in order, keep their bookmarks as usual.
    assert bookmarks(first.final_state)[project_b] == newest_real(fake, project_b)

    added = [fake.add_feedback(pid)["feedback_id"] for pid in fake.projects]
    second = run_sync(config(fake), first.final_state, check=False)
    assert second.returncode == 0, second.error
    assert set(added) <= set(second.ids())
    assert set(first.ids()) | set(second.ids()) == fake.all_feedback_ids()
    assert "feedback" not in activated(second)


def test_a_server_answering_newest_first_loses_nothing_when_stopped_midway(
    fake: FakeUsersnap, caplog: pytest.LogCaptureFixture
) -> None:
    project_a = next(iter(fake.projects))
    items = items_of(fake, project_a)
    transform = ignoring_the_filter(fake, project_a, newest_first=True)
    fake.inject(
        "mangle", transform=transform, match=rf"/{project_a}/feedbacks/filter$", times=FOREVER
    )
    cfg = config(fake, project_ids=[project_a])
    with caplog.at_level(logging.WARNING):
        reference = run_sync(cfg, check=False)
    assert reference.returncode == 0, reference.error
    assert set(reference.ids()) == {i["feedback_id"] for i in items}
    assert_every_state_resumes_safely(reference, project_a, items)
    assert bookmarks(reference.final_state)[project_a] == items[-1]["created_at"]
    assert any(f"project {project_a} out of created_at order" in w for w in warnings(caplog))

    # Killed after the first page's records (the newest five): a held bookmark writes no
    # STATE for the project until its read ends.
    fifth = [n for n, m in enumerate(reference.messages) if is_feedback_of(m, project_a)][
        PAGE_SIZE - 1
    ]
    after = fifth
    killed = run_cli_killed(after_lines=after + 1, config=cfg)
    assert killed.returncode != 0
    assert 0 < len(killed.ids()) < len(items)
    assert_every_state_resumes_safely(killed, project_a, items)
    resumed = run_sync(cfg, killed.resume_state(None), check=False)
    assert resumed.returncode == 0, resumed.error
    assert set(killed.ids()) | set(resumed.ids()) == {i["feedback_id"] for i in items}
    assert bookmarks(resumed.final_state)[project_a] == items[-1]["created_at"]


# ---------------------------------------------------------------------- the filter


def counts(state: dict[str, t.Any]) -> dict[str, t.Any]:
    return bookmarks(state, "feedback_count")


def test_a_server_ignoring_the_created_at_filter_inflates_no_count(
    fake: FakeUsersnap, caplog: pytest.LogCaptureFixture
) -> None:
    project_a = next(iter(fake.projects))
    first = run_sync(config(fake))
    for pid in fake.projects:
        for _ in range(3):
            fake.add_feedback(pid)
    control = run_sync(config(fake), first.final_state)

    start = bookmarks(first.final_state)[project_a]
    fake.inject(
        "mangle",
        transform=everything_at_once(fake, project_a),
        match=rf"/{project_a}/feedbacks/filter$",
        times=FOREVER,
    )
    with caplog.at_level(logging.WARNING):
        faulty = run_sync(config(fake), first.final_state, check=False)
    assert faulty.returncode == 0, faulty.error
    assert any(
        f"answered 11 item(s) of project {project_a} created before {start}" in w
        for w in warnings(caplog)
    )
    assert counts(faulty.final_state) == counts(control.final_state)
    assert bookmarks(faulty.final_state) == bookmarks(control.final_state)
    assert set(control.ids()) <= set(faulty.ids())

    fake.clear_faults()
    fake.requests.clear()
    after = run_sync(config(fake), faulty.final_state)
    assert "feedback" not in activated(after)
    assert len(fake.requests_to(COUNT)) == len(fake.projects)


def test_items_before_start_date_are_not_emitted_even_if_the_server_sends_them(
    fake: FakeUsersnap, caplog: pytest.LogCaptureFixture
) -> None:
    project_a, project_b, _ = list(fake.projects)
    items = items_of(fake, project_a)
    start_date = items[6]["created_at"]
    fake.inject(
        "mangle",
        transform=everything_at_once(fake, project_a),
        match=rf"/{project_a}/feedbacks/filter$",
        times=FOREVER,
    )
    cfg = config(fake, start_date=start_date)
    with caplog.at_level(logging.WARNING):
        first = run_sync(cfg, check=False)
    assert first.returncode == 0, first.error
    emitted_a = {
        r["feedback_id"] for r in first.records("feedback") if r["project_id"] == project_a
    }
    assert emitted_a == {i["feedback_id"] for i in items[6:]}
    assert all(r["created_at"] >= start_date for r in first.records("feedback"))
    skipped = [w for w in warnings(caplog) if w.startswith("Skipped")]
    assert skipped == [
        f"Skipped 6 item(s) of project {project_a} created before the scope's start, "
        f"{start_date}: the API ignored the created_at filter"
    ]
    assert {r["project_id"] for r in first.records("feedback")} == set(fake.projects)
    assert bookmarks(first.final_state)[project_b] == newest_real(fake, project_b)
    assert counts(first.final_state)[project_a] == len(items[6:])  # to the bookmark's second

    fake.clear_faults()
    fake.requests.clear()
    second = run_sync(cfg, first.final_state)
    assert "feedback" not in activated(second)
    assert len(fake.requests_to(COUNT)) == len(fake.projects)


# ---------------------------------------------------------------------- has_more forever


def test_has_more_forever_with_fresh_items_stops_naming_the_project(
    fake: FakeUsersnap, caplog: pytest.LogCaptureFixture
) -> None:
    project_a = next(iter(fake.projects))

    def endless(envelope: dict, request: RecordedRequest) -> dict:
        if new_feedback_pass(request):
            for _ in range(PAGE_SIZE):
                fake.add_feedback(project_a)
            envelope["data"]["has_more"] = True
        return envelope

    fake.inject(
        "mangle", transform=endless, match=rf"/{project_a}/feedbacks/filter$", times=FOREVER
    )
    with caplog.at_level(logging.INFO):
        result = run_sync(config(fake), check=False)
    assert isinstance(result.error, PaginationError)
    message = str(result.error)
    assert "kept answering has_more" in message
    assert f"project {project_a}" in message
    pages = [
        r for r in fake.requests_to(rf"/{project_a}/feedbacks/filter$") if new_feedback_pass(r)
    ]
    assert RUNAWAY_PAGES < len(pages) < 40
    assert not any("100.0%" in r.getMessage() for r in caplog.records)
    # What was read is safe to resume from: the bookmark is an item that was emitted.
    bookmark = bookmarks(result.final_state)[project_a]
    assert bookmark in {r["created_at"] for r in result.records("feedback")}


@pytest.mark.parametrize(
    ("order_by", "pages"),
    [
        *(("created_at", pages) for pages in ("empty", "unusable", "repeated")),
        # Repeated items end the edit scan anyway: the first one older than its mark stops it.
        *(("updated_at", pages) for pages in ("empty", "unusable")),
    ],
)
def test_has_more_forever_with_nothing_new_stops_in_one_line(
    fake: FakeUsersnap, pages: str, order_by: str
) -> None:
    """Fresh cursors and has_more on every page, but no item to take: no page may go
    unchecked (the read asked for ever)."""
    project_a = next(iter(fake.projects))
    first = run_sync(config(fake))
    fake.filter_ignores_after = True  # any cursor answers the same page

    def endless(envelope: dict, request: RecordedRequest) -> dict:
        if ((request.body or {}).get("order_by") or {}).get("order_by_type") == order_by:
            data = envelope["data"]
            if pages == "empty":
                data["feedbacks"] = []
            elif pages == "unusable":
                data["feedbacks"] = [{"feedback_id": None, "created_at": None}] * PAGE_SIZE
            data["has_more"], data["next"] = True, {"after": str(uuid.uuid4())}
        return envelope

    fake.inject(
        "mangle", transform=endless, match=rf"/{project_a}/feedbacks/filter$", times=FOREVER
    )
    fake.requests.clear()
    result = run_sync(config(fake, capture_edits=True), first.final_state, check=False)

    assert isinstance(result.error, PaginationError)
    assert "has_more" in str(result.error)
    # Entries up to the count plus RUNAWAY_PAGES pages of them: a bound, not for ever.
    assert len(fake.requests_to(rf"/{project_a}/feedbacks/filter$")) < 150
