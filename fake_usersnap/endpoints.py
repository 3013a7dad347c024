"""What each route of the spec answers, read from the fake's data.

Each answer takes the fake as a :class:`~fake_usersnap.store.Store`, not as the server.
"""

from __future__ import annotations

import re
import typing as t
from urllib.parse import unquote

from fake_usersnap.protocol import (
    API_PREFIX,
    ApiError,
    next_cursor,
    page,
    parse_limit,
    refuse_unknown_params,
    site_not_found,
)
from fake_usersnap.query import NEWEST_UPDATES, Order, apply_query, conditions, order

if t.TYPE_CHECKING:
    from fake_usersnap.store import Store

#: ``(fake, path argument, query parameters, body) -> data`` of a success envelope.
Answer = t.Callable[["Store", str, dict[str, str], t.Any], dict[str, t.Any]]
#: The query parameters of a paged feedback list: those its ``next`` object names.
CURSOR = frozenset({"limit", "after"})
#: What a project the API refuses answers, by status (``FakeUsersnap.refuse_project``).
REFUSALS = {
    400: ("Site does not exist", "SITE_NOT_FOUND"),
    403: ("Access to this project is not allowed", "FORBIDDEN"),
    404: ("Not found", "NOT_FOUND"),
}


def answer(
    fake: Store, method: str, full_path: str, params: dict[str, str], body: t.Any
) -> dict[str, t.Any]:
    """The ``data`` of the success envelope, or the :class:`ApiError` to answer."""
    handler, argument = check_request(fake, method, full_path, params)
    return handler(fake, argument, params, body)


def check_request(
    fake: Store, method: str, full_path: str, params: dict[str, str]
) -> tuple[Answer, str]:
    """The route's answer and path argument, once the request may be answered at all.

    404/405 for no route; 400 for a query parameter the route does not take; the status a
    refused project answers (:attr:`Store.refused_projects`) for its feedback routes.
    """
    path = full_path.removeprefix(API_PREFIX) if full_path.startswith(API_PREFIX + "/") else None
    known = False
    for route_method, pattern, handler, allowed in ROUTES:
        found = pattern.match(path) if path is not None else None
        if found is None:
            continue
        if route_method != method:
            known = True
            continue
        # Routed on the raw path (an encoded ``/`` stays in its segment), then decoded.
        argument = unquote(found.group(1)) if found.groups() else ""
        paging = fake.projects_paging
        if handler is not list_projects or paging is None or paging.cursor != "ignored":
            refuse_unknown_params(params, allowed)
        if handler is not list_assignees and argument in fake.refused_projects:
            status = fake.refused_projects[argument]
            msg, errortype = REFUSALS[status]
            errordata = {"site_id": argument} if errortype == "SITE_NOT_FOUND" else None
            raise ApiError(status, msg, errortype, errordata)
        return handler, argument
    if known:
        raise ApiError(405, "Method not allowed", "METHOD_NOT_ALLOWED")
    raise ApiError(404, "Not found", "NOT_FOUND")


def list_projects(fake: Store, _: str, params: dict[str, str], body: t.Any) -> dict[str, t.Any]:
    """``GET /projects``: every project, in the order added, in one answer (no cursor).

    ``fake.projects_paging`` makes it page where the spec is silent
    (:class:`~fake_usersnap.protocol.ProjectsPaging`).
    """
    with fake.lock:
        items = list(fake.projects.values())
    paging = fake.projects_paging
    if paging is None:
        return {"has_more": False, "count": len(items), "projects": items}
    shown = items[: paging.shown]
    data: dict[str, t.Any] = {
        "has_more": len(shown) < len(items),
        "count": len(items) if paging.count is None else paging.count,
        "projects": shown,
    }
    if paging.cursor == "ignored" and shown:
        data["next"] = next_cursor(shown[-1]["project_id"], len(shown))
    return data


def filter_feedback(
    fake: Store, project_id: str, params: dict[str, str], body: t.Any
) -> dict[str, t.Any]:
    """``POST .../feedbacks/filter``: the body's query and order, keyset-paged."""
    query, sort = conditions(body), order(body)
    items = apply_query(_project_feedback(fake, project_id), query)
    if fake.filter_ignores_after:
        params = {k: v for k, v in params.items() if k != "after"}
    return _sorted_page(items, sort, params)


def count_filtered(
    fake: Store, project_id: str, params: dict[str, str], body: t.Any
) -> dict[str, t.Any]:
    """``POST .../feedbacks/filter/count``: how many items the same body would list."""
    query = conditions(body)  # a JSON object body is required, as for the filter itself
    items = apply_query(_project_feedback(fake, project_id), query)
    return {"total_count": len(_counted(fake, items))}


def list_feedback(
    fake: Store, project_id: str, params: dict[str, str], body: t.Any
) -> dict[str, t.Any]:
    """``GET .../feedbacks``: newest update first, as the real endpoint does."""
    return _sorted_page(_project_feedback(fake, project_id), NEWEST_UPDATES, params)


def count_feedback(
    fake: Store, project_id: str, params: dict[str, str], body: t.Any
) -> dict[str, t.Any]:
    """``GET .../feedbacks/count``: every item of the project."""
    return {"total_count": len(_counted(fake, _project_feedback(fake, project_id)))}


def _counted(fake: Store, items: list[dict[str, t.Any]]) -> list[dict[str, t.Any]]:
    """The items a count includes (see ``count_leaves_out_demo``)."""
    return [i for i in items if not i.get("is_demo")] if fake.count_leaves_out_demo else items


def list_assignees(
    fake: Store, api_key: str, params: dict[str, str], body: t.Any
) -> dict[str, t.Any]:
    """``GET /projects/{api_key}/assignees``: keyed by API key, as in the spec."""
    with fake.lock:
        if api_key not in fake.assignees:
            raise site_not_found(api_key)
        return {"users": list(fake.assignees[api_key])}


#: Each route: method, path, answer, and the query parameters it takes.
ROUTES: list[tuple[str, re.Pattern[str], Answer, frozenset[str]]] = [
    ("GET", re.compile(r"^/projects$"), list_projects, frozenset()),
    ("POST", re.compile(r"^/projects/([^/]+)/feedbacks/filter$"), filter_feedback, CURSOR),
    (
        "POST",
        re.compile(r"^/projects/([^/]+)/feedbacks/filter/count$"),
        count_filtered,
        frozenset(),
    ),
    ("GET", re.compile(r"^/projects/([^/]+)/feedbacks$"), list_feedback, CURSOR),
    ("GET", re.compile(r"^/projects/([^/]+)/feedbacks/count$"), count_feedback, frozenset()),
    ("GET", re.compile(r"^/projects/([^/]+)/assignees$"), list_assignees, frozenset()),
]


def _project_feedback(fake: Store, project_id: str) -> list[dict[str, t.Any]]:
    """A copy of a project's items (400 SITE_NOT_FOUND for a project the fake lacks)."""
    with fake.lock:
        if project_id not in fake.projects:
            raise site_not_found(project_id)
        return list(fake.feedback[project_id])


def _sorted_page(
    items: list[dict[str, t.Any]], sort: Order, params: dict[str, str]
) -> dict[str, t.Any]:
    sort.sort(items)
    return page(items, "feedbacks", "feedback_id", parse_limit(params), params.get("after"))
