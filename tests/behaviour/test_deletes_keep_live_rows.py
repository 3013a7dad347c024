"""A row leaves the warehouse only when Usersnap deleted its item.

Each run's messages go to two model warehouses: target-postgres (retires older and unset
versions) and the SDK's own SQL sink (target-snowflake, target-redshift: older versions
only). After every run, each must hold exactly Usersnap's items, whatever the API did.
"""

from __future__ import annotations

import copy
import json
import logging
import typing as t

import pytest

from harness.singer_run import SyncResult, run_sync
from harness.warehouse import Warehouse
from tap_usersnap.deletes import ACTIVE, PENDING
from tap_usersnap.tap import TapUsersnap

if t.TYPE_CHECKING:
    from fake_usersnap import FakeUsersnap
    from fake_usersnap.faults import FaultKind

COUNT = r"POST .*/filter/count$"
FILTER = r"POST .*/filter$"
FOREVER = 10**6


class Run:
    """Runs the tap against ``fake`` into both kinds of warehouse, state carried along."""

    def __init__(self, fake: FakeUsersnap, **config: t.Any) -> None:
        self.fake = fake
        self.config = fake.config(concurrency=1, page_size=5, **config)
        self.warehouses = [Warehouse(), Warehouse(sdk_sink=True)]
        self.state: dict[str, t.Any] | None = None

    def __call__(self, catalog: dict | None = None, **config: t.Any) -> SyncResult:
        self.fake.requests.clear()
        result = run_sync({**self.config, **config}, self.state, catalog, check=False)
        for warehouse in self.warehouses:
            warehouse.apply(result.messages)
        self.state = result.final_state
        return result

    @property
    def saved(self) -> dict[str, t.Any]:
        """The state the last run ended with."""
        assert self.state is not None
        return self.state

    def assert_no_live_row_lost(self) -> None:
        """Held back: what Usersnap deleted may stay a run longer, nothing live may go."""
        for warehouse in self.warehouses:
            assert warehouse.ids("feedback", "feedback_id") >= self.fake.all_feedback_ids()
            assert warehouse.ids("projects", "project_id") >= set(self.fake.projects)

    def assert_live_rows_are_usersnaps(self) -> None:
        for warehouse in self.warehouses:
            assert warehouse.ids("feedback", "feedback_id") == self.fake.all_feedback_ids()
            assert warehouse.ids("projects", "project_id") == set(self.fake.projects)


def activated(result: SyncResult) -> list[str]:
    return [m["stream"] for m in result.messages if m["type"] == "ACTIVATE_VERSION"]


def record_messages(result: SyncResult, stream: str = "feedback") -> list[dict[str, t.Any]]:
    return [m for m in result.messages if m["type"] == "RECORD" and m["stream"] == stream]


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def items_of(fake: FakeUsersnap, project_id: str) -> list[dict[str, t.Any]]:
    return sorted(fake.feedback[project_id], key=lambda i: i["created_at"])


def test_every_record_carries_the_active_version_so_sdk_sinks_apply_deletes(
    fake: FakeUsersnap,
) -> None:
    """Full, then new items, then deletions: the SDK sink retires exactly the deleted."""
    run = Run(fake)
    first = run()
    run.assert_live_rows_are_usersnaps()
    version = run.saved["bookmarks"]["feedback"][ACTIVE]
    assert {m.get("version") for m in record_messages(first)} == {version}

    for project_id in fake.projects:
        for _ in range(4):
            fake.add_feedback(project_id)
    second = run()
    run.assert_live_rows_are_usersnaps()
    assert {m.get("version") for m in record_messages(second)} == {version}
    assert "feedback" not in activated(second)

    gone = [items_of(fake, pid)[n]["feedback_id"] for pid in fake.projects for n in (0, 5)]
    for feedback_id in gone:
        fake.delete_feedback(feedback_id)
    third = run()
    run.assert_live_rows_are_usersnaps()
    new_version = run.saved["bookmarks"]["feedback"][ACTIVE]
    assert new_version > version
    assert {m.get("version") for m in record_messages(third)} == {new_version}
    assert "feedback" in activated(third)
    for warehouse in run.warehouses:
        assert not set(gone) & warehouse.ids("feedback", "feedback_id")


def test_an_empty_page_in_the_re_read_retires_nothing_and_the_next_run_applies_it(
    fake: FakeUsersnap, caplog: pytest.LogCaptureFixture
) -> None:
    run = Run(fake)
    run()
    project_a, project_b, _ = list(fake.projects)
    fake.delete_feedback(items_of(fake, project_a)[2]["feedback_id"])
    saved = copy.deepcopy(run.saved["bookmarks"]["feedback"]["partitions"])

    def empty_page(envelope: dict, request: t.Any) -> dict:
        if request.params.get("limit") != "1":  # not the edit scan's one item
            envelope["data"]["feedbacks"], envelope["data"]["has_more"] = [], False
        return envelope

    fake.inject(
        "mangle", transform=empty_page, match=rf"/{project_b}/feedbacks/filter$", times=FOREVER
    )
    with caplog.at_level(logging.WARNING):
        second = run()
    assert second.returncode == 0
    assert "feedback" not in activated(second)
    run.assert_no_live_row_lost()
    held = [w for w in warnings(caplog) if w.startswith("Deletions not applied to feedback")]
    assert held == [
        "Deletions not applied to feedback, every row stays and the next run tries again: the "
        f"re-read of project {project_b} delivered 0 items where Usersnap counts 12; it starts "
        "again next run"
    ]
    feedback_state = run.saved["bookmarks"]["feedback"]
    keys = ("replication_key_value", "updated_at_mark")
    assert [{k: p[k] for k in keys} for p in feedback_state["partitions"]] == [
        {k: p[k] for k in keys} for p in saved
    ]  # no bookmark lost
    assert feedback_state[PENDING] > feedback_state[ACTIVE]

    fake.clear_faults()
    third = run()
    assert "feedback" in activated(third)
    run.assert_live_rows_are_usersnaps()
    assert PENDING not in run.saved["bookmarks"]["feedback"]
    fourth = run()
    assert "feedback" not in activated(fourth)
    assert len(fake.requests_to(COUNT)) == len(fake.projects)
    run.assert_live_rows_are_usersnaps()


@pytest.mark.parametrize("fault", ["empty pages", "has_more false after the first page"])
def test_a_full_refresh_whose_read_ends_early_retires_no_live_row(
    fake: FakeUsersnap, caplog: pytest.LogCaptureFixture, fault: str
) -> None:
    """No bookmark yet: a count up to where the read stopped would agree with it."""
    run = Run(fake)
    run()
    project = next(iter(fake.projects))

    def ends_early(envelope: dict, request: t.Any) -> dict:
        if request.params.get("limit") != "1":  # not the edit scan's one item
            if fault == "empty pages":
                envelope["data"]["feedbacks"] = []
            envelope["data"]["has_more"] = False
        return envelope

    fake.inject(
        "mangle", transform=ends_early, match=rf"/{project}/feedbacks/filter$", times=FOREVER
    )
    run.state = None  # a full refresh
    with caplog.at_level(logging.WARNING):
        refreshed = run()

    assert refreshed.returncode == 0
    assert "feedback" not in activated(refreshed)
    run.assert_no_live_row_lost()
    delivered = 0 if fault == "empty pages" else 5
    assert (
        "Deletions not applied to feedback, every row stays and the next run tries again: the "
        f"re-read of project {project} delivered {delivered} items where Usersnap counts 12; it "
        "starts again next run"
    ) in warnings(caplog)
    fake.clear_faults()
    run()
    run.assert_live_rows_are_usersnaps()


def test_a_re_read_cut_short_retires_nothing(
    fake: FakeUsersnap, caplog: pytest.LogCaptureFixture
) -> None:
    run = Run(fake)
    run()
    project_a = next(iter(fake.projects))
    fake.delete_feedback(items_of(fake, project_a)[0]["feedback_id"])

    def no_more(envelope: dict, request: t.Any) -> dict:
        envelope["data"]["has_more"] = False
        return envelope

    # The edit scan and the read of new feedback come first; then the re-read's first page.
    fake.inject(
        "mangle", transform=no_more, match=rf"/{project_a}/feedbacks/filter$", skip=2, times=1
    )
    with caplog.at_level(logging.WARNING):
        second = run()
    assert "feedback" not in activated(second)
    run.assert_no_live_row_lost()
    assert any(
        f"re-read of project {project_a} delivered 5 items where Usersnap counts 11" in w
        for w in warnings(caplog)
    )
    run()
    run.assert_live_rows_are_usersnaps()


def test_raising_start_date_for_a_run_then_putting_it_back_retires_nothing(
    fake: FakeUsersnap, caplog: pytest.LogCaptureFixture
) -> None:
    run = Run(fake)
    run()
    project_a = next(iter(fake.projects))
    later = items_of(fake, project_a)[6]["created_at"]
    fake.delete_feedback(items_of(fake, project_a)[8]["feedback_id"])
    with caplog.at_level(logging.WARNING):
        raised = run(start_date=later)
    assert "The feedback scope setting changed from all history to start_date" in "".join(
        warnings(caplog)
    )
    run.assert_live_rows_are_usersnaps()  # the deletion applied, within the pinned scope
    assert "feedback" in activated(raised)
    for request in fake.requests_to(COUNT):
        assert all(
            c["filter_type"] != "created_at" or c["operator"] != "gte"
            for c in request.body["query"]
        )
    run()
    run.assert_live_rows_are_usersnaps()


def test_a_project_left_out_of_the_listing_for_a_run_keeps_its_rows(
    fake: FakeUsersnap, caplog: pytest.LogCaptureFixture
) -> None:
    run = Run(fake)
    run()
    hidden = next(pid for pid, p in fake.projects.items() if fake.assignees[p["api_key"]])
    other = next(pid for pid in fake.projects if pid != hidden)
    fake.delete_feedback(items_of(fake, other)[0]["feedback_id"])

    def leave_out(envelope: dict, request: t.Any) -> dict:
        projects = envelope["data"]["projects"]
        envelope["data"]["projects"] = [p for p in projects if p["project_id"] != hidden]
        return envelope

    fake.inject("mangle", transform=leave_out, match="GET /projects$")
    with caplog.at_level(logging.WARNING):
        second = run()
    assert activated(second) == ["feedback"]  # the hidden project was read by its id
    for warehouse in run.warehouses:
        assert warehouse.ids("feedback", "feedback_id") == fake.all_feedback_ids()
        assert warehouse.ids("projects", "project_id") == set(fake.projects)
        assert hidden in {
            r["project_id"] for r in warehouse.tables["project_assignees"].rows.values()
        }
    assert any(
        f"project {hidden} is missing from the project listing, but Usersnap still answers" in w
        for w in warnings(caplog)
    )
    third = run()
    assert set(activated(third)) == {"projects", "project_assignees"}
    run.assert_live_rows_are_usersnaps()


@pytest.mark.parametrize("status", [403, 404, "SITE_NOT_FOUND in a 403's msg"])
def test_a_project_missing_from_the_listing_and_refused_is_not_taken_for_deleted(
    fake: FakeUsersnap, caplog: pytest.LogCaptureFixture, status: int | str
) -> None:
    """Only the spec's SITE_NOT_FOUND says a project is gone: a key that lost access to it
    (403), or a 404 from anything on the way, keeps its rows; so does a message that merely
    mentions it (only the errortype says it)."""
    run = Run(fake)
    run()
    hidden = next(iter(fake.projects))

    def leave_out(envelope: dict, request: t.Any) -> dict:
        projects = envelope["data"]["projects"]
        envelope["data"]["projects"] = [p for p in projects if p["project_id"] != hidden]
        return envelope

    fake.inject("mangle", transform=leave_out, match="GET /projects$", times=FOREVER)
    if isinstance(status, int):
        fake.refuse_project(hidden, status)
    else:
        body = {"status": False, "msg": f"not SITE_NOT_FOUND: {status}", "errortype": "FORBIDDEN"}
        answer = json.dumps(body).encode()
        fake.inject("status", status=403, body=answer, match=f"/{hidden}/feedbacks", times=FOREVER)
    with caplog.at_level(logging.WARNING):
        second = run()

    assert activated(second) == []
    run.assert_no_live_row_lost()
    for warehouse in run.warehouses:
        assert hidden in warehouse.ids("projects", "project_id")
    assert any(
        w.startswith(f"Usersnap refused to say whether project {hidden} exists")
        for w in warnings(caplog)
    )


@pytest.mark.parametrize(
    ("fault", "options"),
    [
        ("status", {"status": 500}),
        ("status", {"status": 404}),
        *(
            (
                "mangle",
                {
                    "transform": lambda envelope, request, n=n: {
                        **envelope,
                        "data": {"total_count": n},
                    }
                },
            )
            for n in ("many", -1, True)
        ),
    ],
    ids=["500", "404", "not an integer", "negative", "a boolean"],
)
def test_a_failing_count_skips_detection_and_new_items_still_load(
    fake: FakeUsersnap,
    sleeps: list[float],
    caplog: pytest.LogCaptureFixture,
    fault: FaultKind,
    options: dict[str, t.Any],
) -> None:
    run = Run(fake)
    run()
    project_a = next(iter(fake.projects))
    fake.delete_feedback(items_of(fake, project_a)[0]["feedback_id"])
    new = [fake.add_feedback(pid)["feedback_id"] for pid in fake.projects]
    fake.inject(fault, match=rf"/{project_a}/feedbacks/filter/count$", times=FOREVER, **options)
    with caplog.at_level(logging.WARNING):
        second = run()
    assert second.returncode == 0
    assert set(new) <= set(second.ids())
    assert "feedback" not in activated(second)
    assert any(
        w.startswith(f"Deletion detection skipped for project {project_a} this run")
        for w in warnings(caplog)
    )
    assert any("deletions not checked this run for 1 project(s)" in w for w in warnings(caplog))
    saved = {
        p["context"]["project_id"]: p for p in run.saved["bookmarks"]["feedback"]["partitions"]
    }
    # Items before the new bookmark as the warehouse holds them: the 12 of the first run
    # (the deletion was not seen), not a count dropped for want of one.
    assert saved[project_a]["feedback_count"] == 12

    fake.clear_faults()
    third = run()
    assert "feedback" in activated(third)
    run.assert_live_rows_are_usersnaps()


def test_a_full_refresh_after_a_deletion_ends_with_activate_version(fake: FakeUsersnap) -> None:
    run = Run(fake)
    run()
    fake.delete_feedback(items_of(fake, next(iter(fake.projects)))[3]["feedback_id"])
    run.state = None  # meltano run --full-refresh
    refreshed = run()
    assert set(activated(refreshed)) == {"feedback", "projects", "project_assignees"}
    run.assert_live_rows_are_usersnaps()


def test_full_table_ends_every_run_with_activate_version(fake: FakeUsersnap) -> None:
    catalog = TapUsersnap(config=fake.config()).catalog_dict
    for entry in catalog["streams"]:
        if entry["tap_stream_id"] == "feedback":
            entry["replication_method"] = "FULL_TABLE"
    run = Run(fake)
    run(catalog)
    fake.delete_feedback(items_of(fake, next(iter(fake.projects)))[3]["feedback_id"])
    second = run(catalog)
    assert "feedback" in activated(second)
    assert len(fake.requests_to(COUNT)) == 2 * len(fake.projects)  # what proves it complete
    run.assert_live_rows_are_usersnaps()


def test_the_sdk_setting_emit_activate_version_messages_is_harmless(fake: FakeUsersnap) -> None:
    result = run_sync(fake.config(emit_activate_version_messages=True))
    projects = [m for m in result.messages if m.get("stream") == "projects"]
    kinds = [m["type"] for m in projects]
    assert kinds.count("ACTIVATE_VERSION") == 1
    assert kinds[-1] == "ACTIVATE_VERSION"  # after the records, never before
    assert {m["version"] for m in projects if m["type"] in {"RECORD", "ACTIVATE_VERSION"}} == {
        projects[-1]["version"]
    }


def test_a_mass_deletion_is_held_back_unless_allowed(
    empty_fake: FakeUsersnap, caplog: pytest.LogCaptureFixture
) -> None:
    fake = empty_fake
    fake.seed(projects=2, per_project=30)
    run = Run(fake)
    run()
    project_a = next(iter(fake.projects))
    doomed = [i["feedback_id"] for i in items_of(fake, project_a)[:20]]
    for feedback_id in doomed:
        fake.delete_feedback(feedback_id)
    with caplog.at_level(logging.WARNING):
        held = run()
    assert "feedback" not in activated(held)
    assert len(fake.requests_to(FILTER)) < 10  # no re-read either
    assert any(
        f"project {project_a} would lose 20 of " in w and "max_delete_percent 50%" in w
        for w in warnings(caplog)
    )
    for warehouse in run.warehouses:
        assert set(doomed) <= warehouse.ids("feedback", "feedback_id")
    allowed = run(max_delete_percent=100)
    assert "feedback" in activated(allowed)
    run.assert_live_rows_are_usersnaps()


def test_narrowing_project_ids_retires_nothing(
    fake: FakeUsersnap, caplog: pytest.LogCaptureFixture
) -> None:
    run = Run(fake)
    run()
    kept = next(iter(fake.projects))
    fake.delete_feedback(items_of(fake, kept)[0]["feedback_id"])
    with caplog.at_level(logging.WARNING):
        narrowed = run(project_ids=[kept])
    assert activated(narrowed) == []
    for warehouse in run.warehouses:
        assert warehouse.ids("feedback", "feedback_id") >= fake.all_feedback_ids()
        assert warehouse.ids("projects", "project_id") == set(fake.projects)
    assert any("project_ids leaves out 2 project(s)" in w for w in warnings(caplog))
    run()  # the scope put back: the deletion applies
    run.assert_live_rows_are_usersnaps()


def test_a_reconciliation_with_project_ids_warns_about_shared_tables(
    fake: FakeUsersnap, caplog: pytest.LogCaptureFixture
) -> None:
    run = Run(fake, project_ids=list(fake.projects))
    run()
    fake.delete_feedback(items_of(fake, next(iter(fake.projects)))[0]["feedback_id"])
    with caplog.at_level(logging.WARNING):
        second = run()
    assert "feedback" in activated(second)
    assert any(
        w.startswith("A sweep with project_ids set") and "separate schemas" in w
        for w in warnings(caplog)
    )
    run.assert_live_rows_are_usersnaps()


def test_a_failed_first_run_resumes_under_its_version_and_is_activated(
    fake: FakeUsersnap, sleeps: list[float]
) -> None:
    run = Run(fake)
    project_b = list(fake.projects)[1]
    fake.inject(
        "status", status=503, match=rf"POST .*/{project_b}/feedbacks/filter$", times=FOREVER
    )
    failed = run()
    assert failed.returncode == 1
    version = run.saved["bookmarks"]["feedback"][PENDING]
    assert run.saved["bookmarks"]["feedback"][ACTIVE] == version
    fake.clear_faults()
    resumed = run()
    assert "feedback" in activated(resumed)
    assert {m.get("version") for m in record_messages(resumed)} == {version}
    assert len(fake.requests_to(FILTER)) < 3 * 4  # resumed from the bookmarks, not re-read
    run.assert_live_rows_are_usersnaps()


def _no_api_key(project: dict[str, t.Any], fake: FakeUsersnap) -> None:
    project.pop("api_key")


def _another_projects_api_key(project: dict[str, t.Any], fake: FakeUsersnap) -> None:
    others = [p for pid, p in fake.projects.items() if pid != project["project_id"]]
    project["api_key"] = others[0]["api_key"]


def _user_without_id(users: list[dict[str, t.Any]]) -> None:
    users[0].pop("user_id")


def _user_id_twice(users: list[dict[str, t.Any]]) -> None:
    users[1]["user_id"] = users[0]["user_id"]


def _user_not_an_object(users: list[t.Any]) -> None:
    users[0] = None


@pytest.mark.parametrize(
    ("listing_fault", "users_fault", "why"),
    [
        (_no_api_key, None, "has no api_key"),
        (_another_projects_api_key, None, "shares its api_key"),
        (None, _user_without_id, "was skipped"),
        (None, _user_id_twice, "was skipped"),
        (None, _user_not_an_object, "was skipped"),
    ],
    ids=["no api_key", "a shared api_key", "no user_id", "a user_id twice", "not an object"],
)
def test_assignees_that_cannot_all_be_read_keep_their_rows(
    fake: FakeUsersnap,
    caplog: pytest.LogCaptureFixture,
    listing_fault: t.Callable[..., None] | None,
    users_fault: t.Callable[..., None] | None,
    why: str,
) -> None:
    """An assignee the run could not read may still exist: no assignee row is retired."""
    run = Run(fake)
    run()
    busiest = max(fake.projects, key=lambda p: len(fake.assignees[fake.projects[p]["api_key"]]))
    api_key = fake.projects[busiest]["api_key"]
    rows_before = {
        key: {(r["project_id"], r["user_id"]) for r in w.tables["project_assignees"].rows.values()}
        for key, w in enumerate(run.warehouses)
    }

    def listing(envelope: dict, request: t.Any) -> dict:
        for project in envelope["data"]["projects"]:
            if project["project_id"] == busiest and listing_fault is not None:
                listing_fault(project, fake)
        return envelope

    def users(envelope: dict, request: t.Any) -> dict:
        if users_fault is not None:
            users_fault(envelope["data"]["users"])
        return envelope

    fake.inject("mangle", transform=listing, match="GET /projects$", times=FOREVER)
    fake.inject("mangle", transform=users, match=rf"/{api_key}/assignees$", times=FOREVER)
    with caplog.at_level(logging.WARNING):
        second = run()

    assert "project_assignees" not in activated(second)
    for key, warehouse in enumerate(run.warehouses):
        rows = {
            (r["project_id"], r["user_id"])
            for r in warehouse.tables["project_assignees"].rows.values()
        }
        assert rows >= rows_before[key]
    held = [
        w for w in warnings(caplog) if w.startswith("Deletions not applied to project_assignees")
    ]
    assert len(held) == 1
    assert why in held[0]


def test_an_item_a_sweep_had_to_skip_keeps_its_row(
    fake: FakeUsersnap, caplog: pytest.LogCaptureFixture
) -> None:
    """Usersnap still has an item the sweep could not use (its created_at broke): the
    sweep ends without retiring a row, naming it, rather than retire it with the deleted."""
    run = Run(fake)
    run()
    project = next(iter(fake.projects))
    items = sorted(fake.feedback[project], key=lambda i: i["created_at"])
    spoiled = items[2]["feedback_id"]

    def spoil(envelope: dict, request: t.Any) -> dict:
        for item in envelope["data"]["feedbacks"]:
            if item.get("feedback_id") == spoiled:
                item["created_at"] = "not a time"
        return envelope

    fake.inject("mangle", transform=spoil, match=FILTER, times=FOREVER)
    fake.delete_feedback(items[5]["feedback_id"])
    with caplog.at_level(logging.WARNING):
        swept = run()

    assert "feedback" not in activated(swept)
    run.assert_no_live_row_lost()
    held = [w for w in warnings(caplog) if w.startswith("Deletions not applied to feedback")]
    assert len(held) == 1, warnings(caplog)
    assert f"feedback {spoiled} of project {project} could not be read (skipped" in held[0]
    assert PENDING not in run.saved["bookmarks"]["feedback"]  # the next is due in sweep_days
