"""What of a request, an answer or a feedback item may appear in a log line or an error.

One place decides it, so no message can leak what another module would keep out: a
request is named by its method and path (never its query string, body or token), a
project's ``api_key`` in the assignees path is hidden, a feedback item by its number and
id (never its content, which holds personal data), a quoted value is cut short.
"""

from __future__ import annotations

import re
import typing as t
from urllib.parse import parse_qs, urlsplit

if t.TYPE_CHECKING:
    import requests

#: Longest part of an API error message quoted in ours (it never holds feedback bodies).
MAX_QUOTED_MESSAGE = 200
#: Longest part of a bad value (an id, a timestamp, a name) quoted in a warning.
MAX_QUOTED = 40
_API_KEY_IN_PATH = re.compile(r"(/projects/)[^/]+(/assignees)$")


def loggable_path(url: str) -> str:
    """A URL's path as logs may show it: a project's api_key (in the assignees path) hidden.

    The api_key is the widget's key of a project; it stays out of logs as out of state.
    """
    return _API_KEY_IN_PATH.sub(r"\1{api_key}\2", urlsplit(url).path)


def describe_request(response: requests.Response) -> str:
    """``METHOD /path`` of the request behind a response: no query, no body, no token."""
    request = response.request
    return f"{request.method} {loggable_path(request.url or response.url or '')}"


def describe_page(response: requests.Response) -> str:
    """``METHOD /path`` and which page: the first, or the one after the cursor it names."""
    after = parse_qs(urlsplit(response.request.url or "").query).get("after")
    return f"{describe_request(response)} ({f'page after {after[-1]}' if after else 'first page'})"


def describe_item(item: t.Any, project_id: str) -> str:
    """``feedback #12 (id …) of project …``: what names an item without its content."""
    if not isinstance(item, dict):
        return f"an entry of project {project_id}"
    parts = []
    if isinstance(item.get("feedback_number"), int | str):
        parts.append(f"#{item['feedback_number']}")
    if isinstance(item.get("feedback_id"), str) and item["feedback_id"]:
        parts.append(f"(id {item['feedback_id'][:MAX_QUOTED]})")
    return " ".join(["feedback", *parts, "of project", project_id])


def describe_project(position: int, name: t.Any) -> str:
    """``project 3 ('Web shop') of the projects listing``: a project that has no id."""
    named = f" ({str(name)[:MAX_QUOTED]!r})" if isinstance(name, str) else ""
    return f"project {position}{named} of the projects listing"
