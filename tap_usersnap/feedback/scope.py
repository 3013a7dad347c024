"""Where the feedback stream's history starts, fixed at the first run and kept in state.

Deletes count and re-read within this lower bound, so it must not move once rows are
loaded: a raised ``start_date`` would retire every row before it, and a window that slides
(``backfill_window: 30 days`` read anew each run) would retire a day of rows every day. The
first run resolves the setting to an instant and pins it in the stream's state; later runs
keep the pinned instant and warn when the setting changed, naming how to apply it: a full
refresh, which starts again from the new setting.
"""

from __future__ import annotations

import calendar
import datetime as dt
import logging
import re
import typing as t

from tap_usersnap.feedback.state import SCOPE_SETTING, SCOPE_START, StateError
from tap_usersnap.records.timestamps import format_timestamp, is_timestamp, normalise_timestamp
from tap_usersnap.settings import BACKFILL_WINDOW_PATTERN

if t.TYPE_CHECKING:
    from tap_usersnap.settings import Settings

_WINDOW = re.compile(BACKFILL_WINDOW_PATTERN)


def setting_text(settings: Settings) -> str:
    """The scope setting as the user wrote it: what a change is detected against."""
    if settings.start_date:
        return f"start_date {settings.start_date}"
    if settings.backfill_window:
        return f"backfill_window {' '.join(settings.backfill_window.split())}"
    return "all history"


def resolve(settings: Settings, now: dt.datetime) -> str | None:
    """The instant the setting names now, in the bookmark format (None: all history)."""
    if settings.start_date:
        return normalise_timestamp(settings.start_date)
    window = _WINDOW.match(settings.backfill_window or "")
    if window is None:
        return None
    amount, unit = int(window.group(1)), window.group(2).rstrip("s")
    if unit == "month":
        return format_timestamp(_months_before(now, amount))
    days = amount * (7 if unit == "week" else 1)
    return format_timestamp(now - dt.timedelta(days=days))


def pinned_scope(
    stream_state: dict[str, t.Any],
    settings: Settings,
    *,
    now: dt.datetime,
    logger: logging.Logger,
) -> str | None:
    """The run's lower bound: the one pinned in state, else the setting's, pinned now.

    Raises:
        StateError: The pinned value is not a timestamp (the state was edited).
    """
    setting = setting_text(settings)
    if SCOPE_SETTING not in stream_state:
        scope = resolve(settings, now)
        stream_state[SCOPE_START] = scope
        stream_state[SCOPE_SETTING] = setting
        return scope
    pinned = stream_state.get(SCOPE_START)
    if pinned is not None and not is_timestamp(pinned):
        msg = (
            f"The feedback state's {SCOPE_START} {str(pinned)[:60]!r} is not an ISO 8601 "
            "timestamp: correct it or clear the state (meltano state clear <state id>)"
        )
        raise StateError(msg)
    pinned = normalise_timestamp(pinned) if pinned is not None else None
    if stream_state.get(SCOPE_SETTING) != setting:
        logger.warning(
            "The feedback scope setting changed from %s to %s: the tap keeps reading from %s, "
            "as the first run did, so that no loaded row is retired. To apply the new "
            "setting, run once with a full refresh (meltano run --full-refresh ..., or clear "
            "the state)",
            stream_state.get(SCOPE_SETTING),
            setting,
            pinned or "the beginning of history",
        )
    return pinned


def _months_before(moment: dt.datetime, months: int) -> dt.datetime:
    """The same day and time ``months`` calendar months earlier (the month's last day at most)."""
    index = moment.year * 12 + moment.month - 1 - months
    year, month = divmod(index, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)
