"""Schedules as APScheduler triggers: crontab lines and `every:` rules, shared by config checks, the daemon and status."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

_CRON_DAYS = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}
_APS_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def _cron_day(token: str) -> int:
    if token in _CRON_DAYS:
        return _CRON_DAYS[token]
    if token.isdigit() and 0 <= int(token) <= 7:
        return int(token) % 7
    raise ValueError(f"day of week: {token!r} is not 0-7 or sun-sat")


def _weekdays(field_: str) -> str:
    """A crontab day-of-week field (0 or 7 = Sunday) as APScheduler 3 day names (its 0 is Monday)."""
    if field_ in ("*", "?"):
        return "*"
    days: set[int] = set()
    for part in field_.lower().split(","):
        span, _, step_text = part.partition("/")
        if step_text and not step_text.isdigit() or step_text == "0":
            raise ValueError(f"day of week: bad step in {part!r}")
        step = int(step_text or 1)
        if span == "*":
            first, last = 0, 6
        elif "-" in span:
            low, high = span.split("-", 1)
            first, last = _cron_day(low), _cron_day(high)
            if high == "7":  # 5-7: Friday to Sunday
                last = 7
        else:
            first = _cron_day(span)
            last = 6 if step_text else first
        if first > last:
            raise ValueError(f"day of week: {span!r} runs backwards")
        days.update(day % 7 for day in range(first, last + 1, step))
    return ",".join(_APS_DAYS[(day - 1) % 7] for day in sorted(days, key=lambda d: (d - 1) % 7))


def cron_trigger(expr: str, timezone: tzinfo = UTC) -> CronTrigger:
    """A standard 5-field crontab line as an APScheduler trigger; raises ValueError saying what is wrong.

    Closes two gaps between APScheduler 3 and cron: its day-of-week 0 is Monday (cron's is Sunday), and it fires
    only when day-of-month AND day-of-week match (cron: either), so a line restricting both is refused.
    """
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(f"expected 5 crontab fields (minute hour day month weekday), got {len(fields)} in {expr!r}")
    minute, hour, day, month, weekday = fields
    if day not in ("*", "?") and weekday not in ("*", "?"):
        raise ValueError(f"{expr!r} sets both day of month and day of week; use one of them")
    try:
        return CronTrigger(minute=minute, hour=hour, day=day, month=month, day_of_week=_weekdays(weekday),
                           timezone=timezone)
    except ValueError as exc:
        raise ValueError(f"{expr!r}: {exc}") from None


def rule_trigger(rule: Any, timezone: tzinfo) -> BaseTrigger:
    if rule.every is not None:
        # Always asked with a previous fire time, so start_date never matters; fixed so no real clock is read.
        return IntervalTrigger(seconds=rule.every.total_seconds(), start_date=datetime(2000, 1, 1, tzinfo=UTC),
                               timezone=timezone)
    return cron_trigger(rule.cron, timezone)


def describe_rule(rule: Any) -> str:
    if rule.every is not None:
        return f"every {format_duration(rule.every)}"
    return f"cron {rule.cron}"


def format_duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def fire_after(trigger: BaseTrigger, moment: datetime) -> datetime | None:
    """The trigger's first fire time strictly after `moment`."""
    fire: datetime | None = trigger.get_next_fire_time(moment, moment)
    return fire
