"""Whether feedback was deleted in Usersnap, and whether deletions may be applied this run.

A deletion is found cheaply: the count of items created before each project's bookmark,
one request per project, against the count kept in state (fewer now: some were deleted),
or a project Usersnap confirms gone. A row leaves the warehouse only when Usersnap deleted
its item, so deletions are held back whenever the tap cannot be sure: a project listing
that stopped early, a known project missing from it that Usersnap still answers for, a
``project_ids`` narrower than the projects loaded, or a project that would lose more than
``max_delete_percent`` of its items at once.
"""

from __future__ import annotations

import typing as t

from tap_usersnap.http.errors import UsersnapError, result_or_failure

if t.TYPE_CHECKING:
    import logging

    from tap_usersnap.feedback.report import RunReport
    from tap_usersnap.feedback.requests import Parallel
    from tap_usersnap.feedback.state import ProjectState

#: A project of fewer items may lose any share of them at once (a small project emptied).
MIN_GUARDED_ITEMS = 20


def scope_gaps(
    known: set[str],
    *,
    listed: set[str],
    complete: bool,
    wanted: t.Collection[str],
    exists: t.Callable[[str], bool | None],
) -> tuple[list[str], list[str]]:
    """Known projects Usersnap confirms gone, and why no deletion may be applied this run.

    ``known`` are the projects whose rows the warehouse holds, ``listed`` those the project
    listing gave (``complete``: it was read to its end), ``wanted`` the ``project_ids``
    setting. A project missing from the listing is gone only if ``exists`` says False (its
    own endpoint answers SITE_NOT_FOUND).
    """
    held: list[str] = []
    left_out = sorted(known - set(wanted)) if wanted else []
    if left_out:
        held.append(
            f"project_ids leaves out {len(left_out)} project(s) whose rows the warehouse "
            f"holds ({', '.join(left_out)}); to retire them on purpose, run once with a "
            "full refresh (meltano run --full-refresh ...)"
        )
    if not complete:
        held.append("the project listing stopped early, so a missing project may exist")
        return [], held
    gone = []
    for project_id in sorted(known - listed - set(left_out)):
        found = exists(project_id)
        if found is False:
            gone.append(project_id)
        else:
            held.append(
                f"project {project_id} is missing from the project listing, but Usersnap "
                + ("still answers for it" if found else "did not say whether it exists")
            )
    return gone, held


def find_deletions(
    projects: dict[str, ProjectState],
    gone: t.Collection[str],
    *,
    count: t.Callable[[ProjectState], int],
    parallel: Parallel,
    report: RunReport,
    logger: logging.Logger,
) -> list[str]:
    """Why feedback must be reconciled (empty: nothing was deleted).

    Counts each project with a bookmark (the requests in ``parallel``), keeping the count as
    the project's baseline. A project that cannot be counted keeps the state's count (what
    the warehouse holds) and is not checked this run: detection never stops new items from
    loading.
    """

    def counted(project: ProjectState) -> int | UsersnapError:
        return result_or_failure(lambda: count(project))

    reasons = [f"project {pid} is gone (Usersnap answers SITE_NOT_FOUND)" for pid in sorted(gone)]
    bookmarked = [p for p in projects.values() if p.bookmark is not None]
    counts = dict(
        zip([p.project_id for p in bookmarked], parallel(counted, bookmarked), strict=True)
    )
    for project in projects.values():
        if project.bookmark is None:
            project.baseline = 0
            continue
        outcome = counts[project.project_id]
        now = outcome if isinstance(outcome, int) else None
        if isinstance(outcome, UsersnapError):
            report.detection_skipped(project.project_id, outcome)
        project.baseline = project.saved_count if now is None else now
        if now is not None and project.saved_count is not None and now < project.saved_count:
            reasons.append(
                f"project {project.project_id} holds {now} items created before its "
                f"bookmark, {project.saved_count - now} fewer than last run"
            )
    for reason in reasons:
        logger.info("Deletions to apply: %s", reason)
    return reasons


def mass_deletions(projects: t.Iterable[ProjectState], max_percent: int) -> list[str]:
    """The projects that would lose more than ``max_percent`` of their items, with numbers."""
    problems = []
    for project in projects:
        saved, now = project.saved_count, project.baseline
        if saved is None or now is None or saved < MIN_GUARDED_ITEMS or now >= saved:
            continue
        percent = 100 * (saved - now) / saved
        if percent > max_percent:
            problems.append(
                f"project {project.project_id} would lose {saved - now} of {saved} items "
                f"({percent:.0f}%, more than max_delete_percent {max_percent}%: set "
                "max_delete_percent to 100 for one run if Usersnap really deleted them)"
            )
    return problems
