"""The feedback stream: every project's new and edited feedback, a bookmark per project.

Each project is read with ``POST /projects/{project_id}/feedbacks/filter``: with
``capture_edits`` an edit scan first, then new feedback from its bookmark on, oldest first.
Several projects are read at once (``concurrency``), each in order. A project's bookmark
moves past an item once its RECORD is out, so every STATE is a safe resume point, even when
an answer ignores the filter, the order or the clock (:meth:`FeedbackStream._take`). See
docs/state-and-deletes.md and docs/architecture.md.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import queue
import threading
import typing as t

from typing_extensions import override

from tap_usersnap.base import UsersnapStream
from tap_usersnap.client import (
    CursorRejectedError,
    PaginationError,
    ProjectRefusedError,
    UsersnapError,
    describe,
    envelope_data,
    needs_text_check,
    project_in_url,
    project_url,
    read_envelope,
)
from tap_usersnap.deletes import Sweeps, scope_gaps
from tap_usersnap.records import (
    FUTURE_TOLERANCE,
    MAX_KEY_LENGTH,
    clean_text,
    conform,
    cut_deep_custom_data,
    derived_fields,
    describe_item,
    format_timestamp,
    is_canonical,
    is_timestamp,
    key_problem,
    normalise_timestamp,
    now_ceiling,
    unfit_for_key,
    unusable_reason,
    whole_second,
)
from tap_usersnap.sdk_private import OwnBookmarks
from tap_usersnap.state import (
    NEW,
    REREAD,
    ProjectState,
    load_projects,
    pinned_scope,
    saved_partitions,
)

if t.TYPE_CHECKING:
    import requests
    from singer_sdk.helpers.types import Context

#: The key of the stand-in an unusable entry leaves in the read (with its created_at, if
#: any): it is counted, never emitted.
SKIPPED = "__usersnap_skipped__"
#: Another project is read at once (up to ``concurrency``) when the emitter waited this
#: long for a page: one reader keeps up with an API that answers faster.
ANOTHER_READER_AFTER_SECONDS = 0.02
#: A read is stopped past its count plus this many pages: ``has_more`` never ends.
RUNAWAY_PAGES = 10
#: Event kinds besides a read's items (``end``: the read ended), and the count request's.
EDITS, MARK, END, COUNT_KIND = "edits", "mark", "end", "count"
#: What a read hands the emitter: its project, the kind of event, and the item or value.
Event = tuple[ProjectState, str, t.Any]


class FeedbackStream(OwnBookmarks, UsersnapStream):
    """Feedback items, incrementally by ``created_at``, one bookmark per project."""

    name = "feedback"
    path = "/projects/{project_id}/feedbacks/filter"
    http_method = "POST"
    primary_keys = ("feedback_id",)
    replication_key = "created_at"
    is_sorted = True
    records_key = "feedbacks"
    cursor_key = "feedback_id"
    #: STATE at least every this many records (and at the end of the stream).
    STATE_MSG_FREQUENCY = 100
    #: This run's pinned scope, and the latest instant a timestamp may name.
    _scope_start: str | None = None
    _ceiling = ""
    #: The projects whose new feedback is read apart from their re-read (the edit scan
    #: goes with the first read of a project).
    _reads_new: frozenset[str] = frozenset()

    @override
    def get_url(self, context: Context | None) -> str:
        context = context or {}
        count = "/count" if context.get("kind") == COUNT_KIND else ""
        return project_url(self.url_base, context["project_id"], f"feedbacks/filter{count}")

    @override
    def get_url_params(
        self, context: Context | None, next_page_token: str | None
    ) -> dict[str, t.Any]:
        kind = (context or {}).get("kind")
        if kind == COUNT_KIND:
            return {}
        params: dict[str, t.Any] = {"limit": 1 if kind == MARK else self.run.settings.page_size}
        if next_page_token:
            params["after"] = next_page_token
        return params

    @override
    def prepare_request_payload(
        self, context: Context | None, next_page_token: str | None
    ) -> dict[str, t.Any]:
        """The filter: ``created_at`` bounds in whole seconds, and the order."""
        context = context or {}
        if context["kind"] in (EDITS, MARK):
            return {"order_by": {"order_by_type": "updated_at", "direction": "desc"}}
        query = [
            {"filter_type": "created_at", "operator": operator, "value": whole_second(moment)}
            for operator, moment in (("gte", context.get("from")), ("lt", context.get("before")))
            if moment
        ]
        if context["kind"] == COUNT_KIND:
            return {"query": query}
        body: dict[str, t.Any] = {"order_by": {"order_by_type": "created_at", "direction": "asc"}}
        if query:
            body["query"] = query
        return body

    @override
    def check_page(self, response: requests.Response) -> None:
        if not response.request.path_url.split("?")[0].endswith("/count"):
            super().check_page(response)
        else:
            total = envelope_data(response).get("total_count")
            if type(total) is not int or total < 0:  # true is no count; a count is never < 0
                msg = f"Usersnap answered {describe(response)} without a usable total_count"
                raise UsersnapError(msg)

    @override
    def parse_response(self, response: requests.Response) -> t.Iterator[dict[str, t.Any]]:
        """Each item checked: skipped by name if it cannot be keyed, else conformed.

        The walk for NUL characters and lone surrogates runs only for pages whose raw body
        holds such an escape.
        """
        if response.request.path_url.split("?")[0].endswith("/count"):
            yield envelope_data(response)
            return
        project = project_in_url(response.request.path_url) or ""
        check_text = needs_text_check(response)
        for item in read_envelope(response)["data"][self.records_key]:
            if not (
                type(item) is dict
                and is_canonical(item.get("created_at"))
                and type(item.get("feedback_id")) is str
                and 0 < len(item["feedback_id"]) <= MAX_KEY_LENGTH
                and not unfit_for_key(item["feedback_id"])
            ):
                problem = unusable_reason(item)
                if problem is not None:
                    self.run.report.skipped_item(describe_item(item, project), problem)
                    entry = item if isinstance(item, dict) else {}
                    created, key = entry.get("created_at"), entry.get("feedback_id")
                    stand_in = {
                        SKIPPED: normalise_timestamp(created) if is_timestamp(created) else None
                    }
                    if not key_problem(key, "feedback_id"):
                        stand_in["feedback_id"] = key  # an item with a row, maybe
                    yield stand_in
                    continue
                item["created_at"] = normalise_timestamp(item["created_at"])  # a valid other form
            if item.get("custom_data") and cut_deep_custom_data(item):
                self.run.report.altered_item(
                    describe_item(item, project),
                    "its custom_data is nested too deep for any target to store; emitted as null",
                )
            if check_text:  # before anything walks it; the rest of conforming, in _named
                for change in clean_text(item):
                    self.run.report.altered_item(describe_item(item, project), change)
            yield item

    def count(self, project_id: str, start: str | None, before: str | None = None) -> int:
        """How many items the project holds created in ``[start, before)`` (whole seconds)."""
        context = {"project_id": project_id, "kind": COUNT_KIND, "from": start, "before": before}
        return int(next(iter(self.request_records(context)))["total_count"])

    @override
    def post_process(
        self, row: dict[str, t.Any], context: Context | None = None
    ) -> dict[str, t.Any] | None:
        """Stop on a signal; items were checked as each page arrived, conformed when taken."""
        self.stop_if_signalled()
        return self.fit_flattened(row)

    @override
    def get_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        """Every project's records; a project's bookmark moves once its records are out."""
        settings, state, listing = self.run.settings, self.stream_state, self.run.listing
        if self.ABORT_AT_RECORD_COUNT is not None:  # the SDK's connection test (``--test``)
            for project_id in settings.project_ids:  # it may end before a refusal is read
                self.count(project_id, None)  # a project Usersnap refuses fails the test
        full_table = self.replication_method == "FULL_TABLE"
        self._scope_start = pinned_scope(state, settings, self.logger)
        saved = saved_partitions(state, self.logger)
        gaps = scope_gaps(
            set(saved),
            listed=listing.ids(),
            complete=listing.complete,
            wanted=settings.project_ids,
            exists=self.project_exists,
        )
        ids = list(settings.project_ids) or [p["project_id"] for p in listing.projects]
        for project_id in [p for p in ids if p in gaps.gone]:  # read, it would fail every run
            self.logger.warning(
                "project_ids names project %s, which Usersnap says no longer exists: it is "
                "not read, and its rows leave with the next sweep; remove it from project_ids",
                project_id,
            )
        ids = [p for p in ids if p not in gaps.gone] + [p for p in gaps.answering if p not in ids]
        loaded = load_projects(
            state,
            saved,
            ids,
            listing.names(),
            scope_start=self._scope_start,
            full_table=full_table,
            partition_for=lambda pid: self.get_context_state({"project_id": pid}),
            logger=self.logger,
        )
        projects = list(loaded.values())  # a project listed twice is read once
        # Each STATE holds every project's partition: one every max(100, projects) records
        # keeps the STATE a run writes within the size of its records, however many projects.
        self.STATE_MSG_FREQUENCY = max(type(self).STATE_MSG_FREQUENCY, len(projects))
        self._ceiling = now_ceiling()
        sweeps = Sweeps(
            self,
            self.count,
            settings,
            self.run.report,
            scope_start=self._scope_start,
            table_version=self.run.table_version,
        )
        self.use_table_version(sweeps.plan(projects, gaps, full_table))
        for project in projects:
            self.logger.info(
                "Reading project %s from %s (edit mark %s)%s",
                project.label,
                project.start or "the beginning",
                project.edit_mark or "none",
                "; it is read again in full" if project.reread else "",
            )
        reads = [(p, NEW) for p in projects if not p.reread_covers_new()]
        self._reads_new = frozenset(p.project_id for p, _ in reads)
        reads += [(p, REREAD) for p in projects if p.reread is not None]
        yield from self._read_all(reads, scan=settings.capture_edits and not full_table)
        late = sweeps.late(projects)
        yield from self._read_all([(p, REREAD) for p in late], scan=False)
        self.activate_version(sweeps.finish(projects))
        self.write_state()

    def _read_all(
        self, reads: list[tuple[ProjectState, str]], *, scan: bool
    ) -> t.Iterator[dict[str, t.Any]]:
        """The records of these reads; on a failure, the state reached goes out first."""
        if not reads:
            return
        try:
            for project, kind, value in self._interleave(reads, scan):
                yield from self._take(project, kind, value)
        except Exception:
            with contextlib.suppress(OSError):  # the records out so far keep their bookmarks
                self.write_state()
            raise

    def _take(self, project: ProjectState, kind: str, value: t.Any) -> t.Iterator[dict[str, t.Any]]:
        """One event of a project's read: its records out, then its bookmark or mark moved.

        An item created in the future is emitted, not bookmarked; one out of ``created_at``
        order holds the saved bookmark back until the read's end.
        """
        if kind == END:
            self._end(project, *value)
            return
        if kind == MARK:
            project.set_edit_mark(value)
            return
        if kind == EDITS:
            yield self._named(value, project)
            return
        created = value[SKIPPED] if SKIPPED in value else value["created_at"]
        verdict = "new"
        if kind == REREAD:
            if SKIPPED in value and "feedback_id" in value:
                project.unread_rows.append(value["feedback_id"])
            takes = project.project_id not in self._reads_new or NEW in project.finished
            verdict = project.place_reread(created, self._scope_start, takes=takes)
        if verdict == "new":
            verdict = self._place(project, created)
        if verdict != "drop" and SKIPPED not in value:
            yield self._named(value, project)
        if verdict != "take":
            return
        if created > self._ceiling:
            project.unbookmarked += 1
            return
        if project.ordered and created < (project.bookmark or ""):  # the newest taken
            project.ordered = False
            self.logger.warning(
                "Usersnap answered project %s out of created_at order (the tap asks oldest "
                "first): its saved bookmark stays where it was until the project is read "
                "to its end, so a run stopped before then reads it again from there",
                project.project_id,
            )
        project.took(created)
        if project.ordered:
            project.save_position()
        if project.read % self.run.settings.page_size == 0:
            self.run.report.progress(project.label, project.read, project.counted)

    def _end(self, project: ProjectState, read: str, error: Exception | None) -> None:
        """A read ended: items sent against the filter told, then its state saved or its error.

        A refused project is skipped by name; any other error is raised.
        """
        if project.outside:
            self.run.report.skipped_item(
                f"{project.outside} item(s) of project {project.project_id} created before the "
                f"scope's start, {self._scope_start}",
                "the API ignored the created_at filter",
                count=project.outside,
            )
        if project.stale:
            self.logger.warning(
                "Usersnap answered %d item(s) of project %s created before %s, which the tap "
                "did not ask for (it ignored the created_at filter): emitted again, not counted",
                project.stale,
                project.project_id,
                project.start,
            )
        project.outside = project.stale = 0
        if isinstance(error, ProjectRefusedError):
            self.run.report.refused_project(project.label, project.project_id, error)
        elif error is not None:
            raise error
        else:
            project.finished.add(read)
            if read == NEW or project.project_id not in self._reads_new:  # new feedback read
                project.finished.add(NEW)
                project.new_read_to = project.bookmark
            project.save()
            if not project.ordered:  # its bookmark was held back until now
                self.write_state()

    def _place(self, project: ProjectState, created: str | None) -> str:
        """``take`` an item (emit it, move the bookmark), ``emit`` it only, or ``drop`` it.

        Before the scope: dropped. Before the project's start: a repeat from the bookmark's
        second is dropped but counted as read; an older one (the API ignored the filter) is
        emitted again, not counted.
        """
        scope, start = self._scope_start, project.start
        if created is None:
            project.unbookmarked += 1
        elif scope and created < scope:
            if created[:19] < scope[:19]:
                project.outside += 1
            else:
                project.read += 1
        elif start and created < start:
            if created[:19] < start[:19]:
                project.stale += 1
                return "emit"
            if project.bookmark is not None:
                project.advance(created)
            else:
                project.read += 1
        else:
            return "take"
        return "drop"

    def _named(self, item: dict[str, t.Any], project: ProjectState) -> dict[str, t.Any]:
        """The record: conformed, its project's current name, the derived fields, any notes.

        Conforming runs here, in the thread that emits, not in the reader's: a reader then
        asks for its next page as soon as one arrives.
        """
        if item.get("project_id") != project.project_id:  # the project it was read from
            if item.get("project_id") is not None:
                self.run.report.altered_item(
                    describe_item(item, project.project_id),
                    "its project_id is another project's: emitted as the project it was read from",
                )
            item["project_id"] = project.project_id
        for change in conform(item, self.shape, check_text=False):
            self.run.report.altered_item(describe_item(item, project.project_id), change)
        for key, what in (("created_at", "the bookmark"), ("updated_at", "the edit mark")):
            if (item.get(key) or "") > self._ceiling:
                self.run.report.noted_item(
                    describe_item(item, project.project_id),
                    f"its {key} {item[key]} is in the future (more than "
                    f"{FUTURE_TOLERANCE.seconds // 60} minutes ahead of this machine's clock): "
                    f"emitted, but {what} does not move to it",
                )
        item["project_name"] = project.name or None
        item.update(derived_fields(item))
        return item

    def _interleave(self, reads: list[tuple[ProjectState, str]], scan: bool) -> t.Iterator[Event]:
        """The events of every read (:meth:`_events`), up to ``concurrency`` reads at once.

        One reader starts; another whenever the emitter waits for a page longer than
        :data:`ANOTHER_READER_AFTER_SECONDS` (threads only cost time while the API is fast).
        The queue between the readers and the emitter holds at most two pages a reader, so
        memory stays flat however large a project is. With ``concurrency`` 1 the reads run
        one after another in this thread: one request in flight at a time, counts included.
        """
        if self.run.settings.concurrency == 1:
            for project, read in reads:
                yield from self._events(project, read, scan)
            return
        workers = min(self.run.settings.concurrency, len(reads))
        # Events go over in chunks of a page, so the queue's locks cost little per item.
        chunk_size = self.run.settings.page_size
        arrived: queue.Queue[list[Event]] = queue.Queue(maxsize=2 * workers)
        pending, stop = collections.deque(reads), threading.Event()  # a deque pops thread-safely

        def put(chunk: list[Event]) -> bool:
            """Hand a chunk to the emitter; False once the run ended (the reader stops)."""
            while not stop.is_set():
                with contextlib.suppress(queue.Full):
                    arrived.put(chunk, timeout=0.2)
                    return True
            return False

        def work() -> None:
            while not stop.is_set():
                try:
                    project, read = pending.popleft()
                except IndexError:  # every read has its reader
                    return
                chunk: list[Event] = []
                for event in self._events(project, read, scan):
                    chunk.append(event)
                    if len(chunk) >= chunk_size:
                        if not put(chunk):
                            return
                        chunk = []
                if chunk:
                    put(chunk)

        readers = [
            threading.Thread(target=work, name=f"feedback-{n}", daemon=True) for n in range(workers)
        ]
        readers[0].start()
        started, remaining = 1, len(reads)
        try:
            while remaining:
                try:
                    chunk = arrived.get(timeout=ANOTHER_READER_AFTER_SECONDS)
                except queue.Empty:  # the API is slow: another reader, if allowed
                    self.stop_if_signalled()
                    if started < workers and pending:
                        readers[started].start()
                        started += 1
                    continue
                for event in chunk:
                    remaining -= event[1] == END
                    yield event
        finally:
            stop.set()

    def _events(self, project: ProjectState, read: str, scan: bool) -> t.Iterator[Event]:
        """One read's events in order, then ``end``: the read, and its error or None.

        A reader never raises: the emitter decides what ends the run.
        """
        error = None
        try:
            yield from self._read(project, read, scan)
        except Exception as failure:
            error = failure
        yield project, END, (read, error)

    def _read(self, project: ProjectState, read: str, scan: bool) -> t.Iterator[Event]:
        """One read's events: the edit scan's and new feedback, or the project's re-read.

        If the API refuses a page cursor (the item it names was deleted meanwhile), the
        read goes on from where it got to, once.
        """
        if scan and (read == NEW or project.project_id not in self._reads_new):
            yield from self._scan_edits(project)
        context = {"project_id": project.project_id, "kind": NEW, "from": self._from(project, read)}
        try:
            yield from self._fresh(project, read, context)
        except CursorRejectedError as error:
            context["from"] = self._from(project, read)
            self.logger.warning(
                "%s: reading project %s again from %s", error, project.project_id, context["from"]
            )
            yield from self._fresh(project, read, context)

    def _from(self, project: ProjectState, read: str) -> str | None:
        """Where a read of the project starts (or goes on) now."""
        if read == REREAD and project.reread is not None:
            return project.reread.resume_point()[0] or self._scope_start
        return project.bookmark or project.start

    def _fresh(
        self, project: ProjectState, read: str, context: dict[str, t.Any]
    ) -> t.Iterator[Event]:
        """The read's items, less any the API already gave in it (on a later page).

        The last 1000 ids are remembered, so memory stays flat however large the project.
        """
        recent: collections.OrderedDict[str, None] = collections.OrderedDict()
        for item in self._items(project, context):
            key = None if SKIPPED in item else item["feedback_id"]
            if key in recent:
                self.logger.info(
                    "Skipped feedback %s of project %s: already read in this run (the API "
                    "repeated it on a later page)",
                    key,
                    project.project_id,
                )
                continue
            if key is not None:
                recent[key] = None
                if len(recent) > 1000:  # noqa: PLR2004 - memory stays flat
                    recent.popitem(last=False)
            yield project, read, item

    def _scan_edits(self, project: ProjectState) -> t.Iterator[Event]:
        """Items edited since the mark and created before the bookmark; then the new mark.

        The new mark is the newest ``updated_at`` when the scan began (never one in the
        future), so an edit made during the run is caught next time. A first scan only
        takes the mark: one item.
        """
        since, before, scope = project.edit_mark, project.bookmark, self._scope_start
        first = since is None or before is None
        context = {"project_id": project.project_id, "kind": MARK if first else EDITS}
        mark, seen = None, set()
        for item in self._items(project, context):
            if SKIPPED in item or item["feedback_id"] in seen:
                continue
            seen.add(item["feedback_id"])
            edited = item.get("updated_at")  # conformed later, when emitted
            if not is_canonical(edited):
                edited = normalise_timestamp(edited) if is_timestamp(edited) else item["created_at"]
            if mark is None and edited <= self._ceiling:
                mark = edited
            if first:
                mark = mark or format_timestamp(dt.datetime.now(dt.timezone.utc))
                break
            if edited < str(since):
                break
            if (scope or "") <= item["created_at"] < str(before):
                yield project, EDITS, item
        if mark or project.edit_mark:
            yield project, MARK, mark or project.edit_mark

    def _items(self, project: ProjectState, context: dict[str, t.Any]) -> t.Iterator[dict]:
        """One read's entries, as the API sends them, repeats and skipped ones included."""
        for received, item in enumerate(self.request_records(context), start=1):
            if received % self.run.settings.page_size == 0:
                self._check_runaway(project, received)
            yield item

    def _check_runaway(self, project: ProjectState, received: int) -> None:
        """Stop a read that goes on far beyond what the project holds (``has_more`` forever).

        ``received``: the read's entries so far, whether taken, repeated or skipped.
        """
        limit = RUNAWAY_PAGES * self.run.settings.page_size
        if received <= limit:
            return
        if project.total is None:
            try:
                project.total = self.count(project.project_id, self._scope_start)
            except UsersnapError as error:
                self.logger.warning("Could not count project %s: %s", project.label, error)
                project.total = -1
        if project.total >= 0 and received > project.total + limit:
            msg = (
                f"Usersnap kept answering has_more for project {project.project_id}: "
                f"{received} items read where it counts {project.total}; stopped (the "
                "state keeps the last bookmark reached, so the next run goes on from there)"
            )
            raise PaginationError(msg)

    def project_exists(self, project_id: str) -> bool | None:
        """Whether Usersnap still knows a project (its count answers); None: it won't say.

        Only the spec's SITE_NOT_FOUND says a project is gone; a 403 or a 404 may be a key
        that lost access, and its rows stay.
        """
        try:
            self.count(project_id, None)
        except ProjectRefusedError as error:
            if error.gone:
                return False
            self.logger.warning(
                "Usersnap refused to say whether project %s exists: %s", project_id, error
            )
            return None
        except UsersnapError as error:
            self.logger.warning("Could not ask Usersnap about project %s: %s", project_id, error)
            return None
        return True
