"""Every request the tap sends is one ``openapi.json`` allows.

The whole suite checks this: every fake reports each request a tap sends to the test's
:class:`~fake_usersnap.contract.ContractLog` (the autouse ``api_contract`` fixture in
``tests/conftest.py``), and a test whose tap sent a request the spec does not allow fails.
This module shows the check itself at work: a run that uses every kind of request passes
it, and requests off the spec (microseconds in a filter value, a parameter on
``GET /projects`` …) are reported, and fail the test that made them.
"""

from __future__ import annotations

import json
import textwrap
import typing as t
from pathlib import Path

import pytest
import requests

from fake_usersnap import Contract, ContractLog, FakeUsersnap, filter_time
from fake_usersnap.client import token
from fake_usersnap.contract import SPEC_PATH
from harness.singer_run import run_cli

#: Where the project keeps the spec it was given (beside the repository).
SHARED_SPEC = Path(__file__).parents[3] / "shared" / "usersnap-api" / "openapi.json"
TAP = {"User-Agent": "tap-usersnap/0.1.0", "Accept": "application/json"}
ASCENDING = {"order_by": {"order_by_type": "created_at", "direction": "asc"}}


def send(fake: FakeUsersnap, method: str, path: str, body: t.Any = None, **headers: str) -> int:
    """A request as a tap would send it (its User-Agent), with a valid token; the status."""
    response = requests.request(
        method,
        f"{fake.url}{path}",
        data=None if body is None else json.dumps(body),
        headers={
            **TAP,
            "Authorization": f"Bearer {token(fake)}",
            **({"Content-Type": "application/json"} if body is not None else {}),
            **headers,
        },
        timeout=10,
    )
    return response.status_code


def created_at(operator: str, value: str) -> dict[str, str]:
    return {"filter_type": "created_at", "operator": operator, "value": value}


@pytest.mark.skipif(not SHARED_SPEC.exists(), reason="no shared/ beside the repository")
def test_the_fakes_copy_of_the_spec_is_the_shared_one() -> None:
    assert json.loads(SPEC_PATH.read_text()) == json.loads(SHARED_SPEC.read_text())


def test_every_kind_of_request_the_tap_sends_is_one_the_spec_allows(
    fake: FakeUsersnap, api_contract: ContractLog
) -> None:
    """First run with start_date (slices, counts, assignees), then edits, deletes and news."""
    project = next(iter(fake.projects))
    start = sorted(i["created_at"] for i in fake.feedback[project])[2]
    config = fake.config(page_size=3, start_date=start, concurrency=2)
    first = run_cli(config=config)
    assert first.returncode == 0, first.stderr
    fake.update_feedback(fake.feedback[project][5]["feedback_id"], status_type="done")
    fake.delete_feedback(fake.feedback[project][7]["feedback_id"])
    fake.add_feedback(project)
    second = run_cli(config=config, state=first.final_state)
    assert second.returncode == 0, second.stderr

    kinds = {
        (r.method, r.path.replace(p, "{id}"))
        for r in fake.requests
        for p in [*fake.projects, *(v["api_key"] for v in fake.projects.values())]
        if p in r.path or r.path == "/projects"
    }
    assert kinds >= {
        ("GET", "/projects"),
        ("POST", "/projects/{id}/feedbacks/filter"),
        ("POST", "/projects/{id}/feedbacks/filter/count"),
        ("GET", "/projects/{id}/assignees"),
    }
    orders = {json.dumps(r.body.get("order_by")) for r in fake.requests_to("/filter$")}
    assert len(orders) >= 2  # new feedback oldest first, and the edit scan
    assert api_contract.checked == len(fake.requests)
    assert api_contract.violations == []


@pytest.mark.off_contract
def test_a_request_with_microseconds_in_a_filter_value_is_reported_and_refused(
    fake: FakeUsersnap, api_contract: ContractLog
) -> None:
    project = next(iter(fake.projects))
    value = "2024-01-01T00:00:00.000000Z"
    body = {**ASCENDING, "query": [created_at("gte", value)]}

    status = send(fake, "POST", f"/projects/{project}/feedbacks/filter?limit=100", body)

    assert status == 400  # the fake, as strict as the spec
    assert api_contract.violations == [
        f"POST /v0.1/projects/{project}/feedbacks/filter?limit=100: body at /query/0/value: "
        f"{value!r} is not a UTC date-time in whole seconds (YYYY-MM-DDTHH:MM:SSZ, the form of "
        "the spec's example)"
    ]
    whole = {**ASCENDING, "query": [created_at("gte", filter_time(value))]}
    assert send(fake, "POST", f"/projects/{project}/feedbacks/filter?limit=100", whole) == 200
    assert len(api_contract.violations) == 1


@pytest.mark.off_contract
def test_a_parameter_on_get_projects_is_reported_and_refused(
    fake: FakeUsersnap, api_contract: ContractLog
) -> None:
    assert send(fake, "GET", "/projects?limit=100") == 400
    assert send(fake, "GET", "/projects") == 200
    assert api_contract.violations == [
        "GET /v0.1/projects?limit=100: query parameter 'limit' is not declared for GET "
        "/projects (declared: none)"
    ]


def test_the_tests_own_bare_client_is_not_checked(
    fake: FakeUsersnap, api_contract: ContractLog
) -> None:
    from fake_usersnap.client import call  # noqa: PLC0415 - the client under comparison

    assert call(fake, "GET", "/projects", params={"limit": 1}).status_code == 400
    assert api_contract.checked == 0
    assert api_contract.violations == []


@pytest.mark.parametrize(
    ("method", "target", "body", "headers", "problem"),
    [
        ("GET", "/v0.1/projects", None, {}, None),
        (
            "POST",
            "/v0.1/projects/p/feedbacks/filter?limit=100&after=x",
            {**ASCENDING, "query": [created_at("lt", "2024-01-01T00:00:00Z")]},
            {},
            None,
        ),
        ("POST", "/v0.1/projects/p/feedbacks/filter/count", {"query": []}, {}, None),
        ("GET", "/v0.1/projects/k/assignees", None, {}, None),
        ("GET", "/v0.1/projects?after=x", None, {}, "query parameter 'after' is not declared"),
        ("GET", "/v0.1/projects/p/feedbacks/count?limit=1", None, {}, "'limit' is not declared"),
        (
            "POST",
            "/v0.1/projects/p/feedbacks/filter?limit=0",
            ASCENDING,
            {},
            "limit='0': 0 is less than the minimum of 1",
        ),
        (
            "POST",
            "/v0.1/projects/p/feedbacks/filter?limit=101",
            ASCENDING,
            {},
            "101 is greater than the maximum of 100",
        ),
        (
            "POST",
            "/v0.1/projects/p/feedbacks/filter?limit=5&limit=6",
            ASCENDING,
            {},
            "query parameter 'limit' is given 2 times",
        ),
        ("POST", "/v0.1/projects/p/feedbacks/filter", None, {}, "the request body is required"),
        (
            "POST",
            "/v0.1/projects/p/feedbacks/filter",
            {"order_by": {"order_by_type": "newest", "direction": "asc"}},
            {},
            "body at /order_by/order_by_type: 'newest' is not one of",
        ),
        (
            "POST",
            "/v0.1/projects/p/feedbacks/filter",
            {**ASCENDING, "page": 2},
            {},
            "Additional properties are not allowed ('page' was unexpected)",
        ),
        (
            "POST",
            "/v0.1/projects/p/feedbacks/filter",
            {"query": [created_at("gte", "2024-01-01T00:00:00+00:00")]},
            {},
            "is not a UTC date-time in whole seconds",
        ),
        (
            "POST",
            "/v0.1/projects/p/feedbacks/filter",
            {"query": [created_at("gte", "2024-02-30T00:00:00Z")]},
            {},
            "names no date-time",
        ),
        ("GET", "/v0.1/projects/p/feedbacks/filter", None, {}, "GET is not declared"),
        ("GET", "/v0.1/feedbacks", None, {}, "matches no path of the spec"),
        ("GET", "/v0.2/projects", None, {}, "is not under the API's /v0.1"),
        ("GET", "/v0.1/projects", None, {"Authorization": ""}, "no Authorization: Bearer"),
        ("GET", "/v0.1/projects", None, {"Accept": "text/html"}, "does not admit"),
        (
            "POST",
            "/v0.1/projects/p/feedbacks/filter",
            ASCENDING,
            {"Content-Type": "text/plain"},
            "not application/json",
        ),
        ("GET", "/v0.1/projects", {"a": 1}, {}, "takes no body"),
    ],
)
def test_the_contract_reads_the_spec(
    method: str,
    target: str,
    body: t.Any,
    headers: dict[str, str],
    problem: str | None,
) -> None:
    sent = {
        "Authorization": "Bearer x",
        "Content-Type": "application/json",
        "Accept": "application/json",
        **headers,
    }
    raw = b"" if body is None else json.dumps(body).encode()

    problems = Contract.load().problems(method, target, raw, sent)

    if problem is None:
        assert problems == []
    else:
        assert len(problems) == 1, problems
        assert problem in problems[0]


def test_a_test_whose_tap_sends_microseconds_fails(pytester: pytest.Pytester) -> None:
    """The suite's check turns a reported request into a failed test, listing it."""
    pytester.makeconftest(
        textwrap.dedent(
            """
            import pytest

            from fake_usersnap import FakeUsersnap
            from harness.contract import every_request_checked


            @pytest.fixture(autouse=True)
            def api_contract():
                with every_request_checked() as log:
                    yield log


            @pytest.fixture
            def fake():
                with FakeUsersnap() as api:
                    api.seed(projects=1, per_project=3)
                    yield api
            """
        )
    )
    pytester.makepyfile(
        textwrap.dedent(
            """
            import json

            import requests

            from fake_usersnap.client import token


            def test_sends_microseconds(fake):
                project = next(iter(fake.projects))
                body = {"query": [{"filter_type": "created_at", "operator": "gte",
                                   "value": "2024-01-01T00:00:00.000000Z"}]}
                requests.post(
                    f"{fake.url}/projects/{project}/feedbacks/filter/count",
                    data=json.dumps(body),
                    headers={"User-Agent": "tap-usersnap/0.1.0",
                             "Authorization": f"Bearer {token(fake)}",
                             "Content-Type": "application/json"},
                    timeout=10,
                )
            """
        )
    )

    result = pytester.runpytest("-p", "no:cacheprovider")

    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*requests the API spec does not allow:",
            "*POST /v0.1/projects/*/feedbacks/filter/count: body at /query/0/value: "
            "'2024-01-01T00:00:00.000000Z' is not a UTC date-time in whole seconds*",
        ]
    )
