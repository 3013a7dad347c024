"""The API contract: whether a request is one that ``openapi.json`` allows.

:class:`Contract` reads the spec (the copy beside this module, ``openapi.json``, the same
as ``shared/usersnap-api/openapi.json``) and checks one request against it:

- the path matches one of the spec's path templates under the server's ``/v0.1``, and the
  method is one the template declares;
- every query parameter is declared, given once, and valid against its schema. The spec
  declares none; a paged list (an answer whose ``data.next`` object the spec describes)
  takes the parameters that object names, ``limit`` and ``after``, with the types the
  spec gives them. ``limit`` is further held to 1..100 (:data:`CURSOR_BOUNDS`: the API's
  documented maximum page, not written in the spec);
- a declared request body is present, sent as ``application/json``, and valid against
  its schema with every ``$ref`` resolved; an object may hold only the properties the
  schema names (the spec lists them; a tap that sends others bets on a server nobody has
  seen). A route that declares no body gets none;
- a ``created_at`` filter value has the one form the spec shows (its only example,
  ``2023-03-22T00:00:00Z``): UTC, whole seconds (:data:`FILTER_TIME_BY_EXAMPLE`);
- a route that needs ``bearerAuth`` gets ``Authorization: Bearer …``, and an ``Accept``
  header, if sent, admits ``application/json`` (the only content the spec answers).

:class:`ContractLog` collects the problems of every request a fake serves while it is set
(``FakeUsersnap.contract``); the test suite sets one for every test (``tests/conftest.py``)
and fails a test whose tap sent a request the spec does not allow.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import functools
import json
import re
import threading
import typing as t
from pathlib import Path
from urllib.parse import unquote_plus, urlsplit

import jsonschema
import referencing
import referencing.jsonschema

#: The spec the fake follows (a copy of ``shared/usersnap-api/openapi.json``).
SPEC_PATH = Path(__file__).with_name("openapi.json")
#: What the spec's ``next`` object leaves unsaid about the cursor parameters.
CURSOR_BOUNDS: dict[str, dict[str, t.Any]] = {
    "limit": {"minimum": 1, "maximum": 100},
    "after": {"minLength": 1},
}
#: The form of every timestamp filter value in the spec's request examples.
FILTER_TIME_BY_EXAMPLE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
#: Filter types whose value is a timestamp.
TIME_FILTERS = frozenset({"created_at"})
_METHODS = ("get", "post", "put", "patch", "delete")


@dataclasses.dataclass(frozen=True)
class Operation:
    """One method of one path template, as the spec declares it."""

    method: str
    template: str
    pattern: re.Pattern[str]
    #: Query parameter -> the JSON schema its (converted) value must satisfy.
    query: dict[str, dict[str, t.Any]]
    #: The JSON-pointer of the request body's schema in the spec, if the spec declares one.
    body_pointer: str | None
    body_required: bool
    needs_bearer: bool


class Contract:
    """The spec's operations, ready to check requests against."""

    def __init__(self, spec: dict[str, t.Any]) -> None:
        self.spec = spec
        self.prefix = urlsplit(spec["servers"][0]["url"]).path.rstrip("/")
        closed = _closed_objects(copy.deepcopy(spec))
        resource = referencing.Resource.from_contents(
            closed, default_specification=referencing.jsonschema.DRAFT4
        )
        self._registry: referencing.Registry[t.Any] = referencing.Registry().with_resource(
            "urn:openapi", resource
        )
        self.operations = [
            self._operation(template, method, item)
            for template, item in spec["paths"].items()
            for method in _METHODS
            if method in item
        ]

    @classmethod
    @functools.cache
    def load(cls, path: Path = SPEC_PATH) -> Contract:
        """The contract of the spec file (read once per process)."""
        return cls(json.loads(path.read_text(encoding="utf-8")))

    def problems(
        self,
        method: str,
        target: str,
        body: bytes,
        headers: t.Mapping[str, str],
    ) -> list[str]:
        """What the spec does not allow in a request (``target``: path and query, as sent)."""
        split = urlsplit(target)
        if not split.path.startswith(self.prefix + "/"):
            return [f"path {split.path} is not under the API's {self.prefix}"]
        path = split.path.removeprefix(self.prefix)
        templates = [op for op in self.operations if op.pattern.match(path)]
        if not templates:
            return [f"path {path} matches no path of the spec"]
        operation = next((op for op in templates if op.method == method), None)
        if operation is None:
            declared = ", ".join(sorted(op.method for op in templates))
            return [f"{method} is not declared for {templates[0].template} ({declared})"]
        problems = self._query_problems(operation, split.query)
        problems += self._body_problems(operation, body, headers)
        problems += _header_problems(operation, headers)
        return problems

    def _operation(self, template: str, method: str, item: dict[str, t.Any]) -> Operation:
        operation = item[method]
        parameters = [
            self.resolve(p) for p in [*item.get("parameters", []), *operation.get("parameters", [])]
        ]
        query = {p["name"]: p.get("schema", {}) for p in parameters if p.get("in") == "query"}
        for name, schema in self._cursor_parameters(operation).items():
            query.setdefault(name, {**schema, **CURSOR_BOUNDS.get(name, {})})
        body_pointer, required = None, False
        if "requestBody" in operation:
            body = self.resolve(operation["requestBody"])
            required = bool(body.get("required"))
            if "application/json" in body.get("content", {}):
                escaped = template.replace("~", "~0").replace("/", "~1")
                source = operation["requestBody"].get("$ref")
                body_pointer = (
                    f"{source.removeprefix('#')}/content/application~1json/schema"
                    if source
                    else f"/paths/{escaped}/{method}/requestBody/content/application~1json/schema"
                )
        security = operation.get("security", self.spec.get("security", []))
        needs_bearer = bool(security) and all(
            "bearerAuth" in requirement for requirement in security
        )
        pattern = re.compile("^" + re.sub(r"\{[^/}]+\}", "[^/]+", template) + "$")
        return Operation(
            method.upper(), template, pattern, query, body_pointer, required, needs_bearer
        )

    def _cursor_parameters(self, operation: dict[str, t.Any]) -> dict[str, dict[str, t.Any]]:
        """The parameters a paged answer's ``data.next`` names (its ``query_string`` aside)."""
        answer = self.resolve(operation.get("responses", {}).get("200", {}))
        schema = answer.get("content", {}).get("application/json", {}).get("schema", {})
        following = (
            self.resolve(schema).get("properties", {}).get("data", {}).get("properties", {})
        ).get("next", {})
        return {
            name: self.resolve(value)
            for name, value in self.resolve(following).get("properties", {}).items()
            if name != "query_string"
        }

    def resolve(self, node: dict[str, t.Any]) -> dict[str, t.Any]:
        """``node``, or what its local ``$ref`` points to (followed until none)."""
        while isinstance(node, dict) and "$ref" in node:
            target: t.Any = self.spec
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            node = target
        return node

    def _query_problems(self, operation: Operation, query: str) -> list[str]:
        problems = []
        values: dict[str, list[str]] = {}
        for pair in query.split("&") if query else []:
            name, _, value = pair.partition("=")
            values.setdefault(unquote_plus(name), []).append(unquote_plus(value))
        for name, given in values.items():
            schema = operation.query.get(name)
            if schema is None:
                declared = ", ".join(sorted(operation.query)) or "none"
                problems.append(
                    f"query parameter {name!r} is not declared for {operation.method} "
                    f"{operation.template} (declared: {declared})"
                )
                continue
            if len(given) > 1:
                problems.append(f"query parameter {name!r} is given {len(given)} times")
            converted = _typed(given[-1], schema)
            error = jsonschema.exceptions.best_match(
                jsonschema.Draft4Validator(schema).iter_errors(converted)
            )
            if error is not None:
                problems.append(f"query parameter {name}={given[-1]!r}: {error.message}")
        return problems

    def _body_problems(
        self, operation: Operation, raw: bytes, headers: t.Mapping[str, str]
    ) -> list[str]:
        if operation.body_pointer is None:
            return [f"{operation.method} {operation.template} takes no body"] if raw else []
        if not raw:
            return ["the request body is required"] if operation.body_required else []
        kind = _header(headers, "Content-Type") or ""
        if kind.split(";")[0].strip().lower() != "application/json":
            return [f"the body is sent as {kind or 'no content type'!r}, not application/json"]
        try:
            body = json.loads(raw)
        except ValueError:
            return ["the body is not JSON"]
        validator = jsonschema.Draft4Validator(
            {"$ref": f"urn:openapi#{operation.body_pointer}"}, registry=self._registry
        )
        problems = [
            f"body at /{'/'.join(str(p) for p in error.absolute_path)}: {error.message}"
            for error in validator.iter_errors(body)
        ]
        return problems + _filter_value_problems(body)


class ContractLog:
    """The contract's problems with every request a fake served while this log was set.

    Only the tap's requests are checked (``checks``): by default, every request whose
    ``User-Agent`` is not the ``requests`` library's default, which the tests' own bare
    client (:mod:`fake_usersnap.client`) and the benchmark's plain loop send.
    """

    def __init__(
        self,
        contract: Contract | None = None,
        checks: t.Callable[[t.Mapping[str, str]], bool] | None = None,
    ) -> None:
        self.contract = contract or Contract.load()
        self._checks = checks or sent_by_a_client_under_test
        self._lock = threading.Lock()
        #: One line per problem: ``METHOD target: problem``.
        self.violations: list[str] = []
        #: How many requests were checked.
        self.checked = 0

    def check(self, method: str, target: str, body: bytes, headers: t.Mapping[str, str]) -> None:
        """Check one request as it arrived, if it is one to check; keep its problems."""
        if not self._checks(headers):
            return
        problems = self.contract.problems(method, target, body, headers)
        with self._lock:
            self.checked += 1
            self.violations.extend(f"{method} {target}: {problem}" for problem in problems)


def sent_by_a_client_under_test(headers: t.Mapping[str, str]) -> bool:
    """Every request but those of plain ``requests`` (its default ``User-Agent``)."""
    return not (_header(headers, "User-Agent") or "").startswith("python-requests/")


def _filter_value_problems(body: t.Any) -> list[str]:
    """A timestamp filter value in any form but the spec's example's."""
    conditions = body.get("query") if isinstance(body, dict) else None
    problems = []
    for position, condition in enumerate(conditions if isinstance(conditions, list) else []):
        if not isinstance(condition, dict) or condition.get("filter_type") not in TIME_FILTERS:
            continue
        value = condition.get("value")
        if not isinstance(value, str) or not FILTER_TIME_BY_EXAMPLE.match(value):
            problems.append(
                f"body at /query/{position}/value: {value!r} is not a UTC date-time in whole "
                "seconds (YYYY-MM-DDTHH:MM:SSZ, the form of the spec's example)"
            )
            continue
        try:
            dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ")
        except ValueError:
            problems.append(f"body at /query/{position}/value: {value!r} names no date-time")
    return problems


def _header_problems(operation: Operation, headers: t.Mapping[str, str]) -> list[str]:
    problems = []
    authorization = _header(headers, "Authorization") or ""
    if operation.needs_bearer and not authorization.startswith("Bearer "):
        problems.append("no Authorization: Bearer token (the spec's bearerAuth)")
    accept = _header(headers, "Accept")
    if accept is not None and not _accepts_json(accept):
        problems.append(f"Accept {accept!r} does not admit application/json, all it answers")
    return problems


def _accepts_json(accept: str) -> bool:
    for part in accept.split(","):
        kind, *options = (piece.strip().lower() for piece in part.split(";"))
        if kind in {"application/json", "application/*", "*/*"} and "q=0" not in options:
            return True
    return False


def _header(headers: t.Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    return next((v for k, v in headers.items() if k.lower() == wanted), None)


def _typed(value: str, schema: dict[str, t.Any]) -> t.Any:
    """A query value as the schema's type (an integer's digits as an int), else as sent."""
    if schema.get("type") == "integer" and re.fullmatch(r"-?\d+", value):
        return int(value)
    return value


def _closed_objects(node: t.Any) -> t.Any:
    """Every object schema that lists its properties takes no others (in place)."""
    if isinstance(node, dict):
        if node.get("type") == "object" and "properties" in node:
            node.setdefault("additionalProperties", False)
        for value in node.values():
            _closed_objects(value)
    elif isinstance(node, list):
        for value in node:
            _closed_objects(value)
    return node
