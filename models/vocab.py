"""Shared vocabulary of every floor: strict settings models, durations, review statuses, secret masking, dates."""
from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict

# --- review vocabulary: what the status, label and severity columns hold ------------------------------------

NEGATIVE_LABELS = frozenset({"neg"})
MIXED_LABEL = "mixed"  # 4-5★ with clearly negative text: a complaint too
# A complaint's way through the team: new → assigned → replied → resolved, or not_complaint (the owner's label).
REVIEW_STATUSES = ("new", "assigned", "replied", "resolved", "not_complaint")
# Review statuses that mean somebody dealt with it, even if no reply shows on the site: no reminder after these.
HANDLED_STATUSES = ("replied", "resolved", "not_complaint")
# Still waiting for the team (the inbox's default view).
OPEN_STATUSES = ("new", "assigned")
USER_ROLES = ("owner", "member")  # owners manage people; members work reviews
SEVERITIES = ("critical", "high", "normal")  # most serious first


# --- settings models ----------------------------------------------------------------------------------------


class Strict(BaseModel):
    """A config section: unknown keys rejected, values frozen, input never echoed in errors (it may be a secret)."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# Longer than any schedule, window or timeout means anything; far below what a datetime can add without overflowing.
MAX_DURATION = timedelta(days=3650)


def parse_duration(value: Any) -> Any:
    """'90s', '15m', '72h', '7d', '2w' or a number of seconds; never negative, at most MAX_DURATION (10 years)."""
    if isinstance(value, timedelta) or value is None:
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match[1]) * _DURATION_UNITS[match[2]]
    else:
        raise ValueError(f"expected a duration like 30m, 72h or 7d, got {value!r}")
    if seconds < 0:
        raise ValueError(f"must not be negative, got {value!r}")
    if not math.isfinite(seconds) or seconds > MAX_DURATION.total_seconds():
        raise ValueError(f"at most 3650d (10 years), got {value!r}")
    return timedelta(seconds=seconds)


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


# --- plugin registries ------------------------------------------------------------------------------------

Plugin = TypeVar("Plugin", bound=type)


def plugin_key(registry: dict[str, Plugin], cls: Plugin, attribute: str, family: str) -> str | None:
    """The key a plugin class registers under (its `attribute`: a spider's name, a notifier's kind), or None for an
    `abstract = True` base. Checked at import: a missing key, a duplicate or a missing docstring (the user-facing
    help) is a TypeError, never a plugin skipped silently. The caller adds the class once its own checks pass."""
    if cls.__dict__.get("abstract", False):
        return None
    setattr(cls, "abstract", False)  # noqa: B010 - a subclass of an abstract base registers unless it opts out
    key = cls.__dict__.get(attribute)
    if not key:
        raise TypeError(f"{cls.__qualname__} must set `{attribute}` or `abstract = True`")
    if key in registry:
        raise TypeError(f"{family} {attribute} {key!r} is registered twice: {registry[key].__qualname__} and "
                        f"{cls.__qualname__}")
    if not (cls.__doc__ or "").strip():
        raise TypeError(f"{cls.__qualname__} needs a docstring: it is the user-facing help for {family} {key!r}")
    return str(key)


# --- secrets ------------------------------------------------------------------------------------------------

# A URL's userinfo: `scheme://user:password@` (the password runs to the URL's last @, so that a raw @ or / in it
# leaves no piece showing) or `scheme://token@` (userinfo without a password: often a token, never shown either).
_URL_USERINFO = re.compile(r"(\b[A-Za-z][\w+.-]*://)([^\s/?#@:]*)(:\S*)?@")


def _mask_userinfo(match: re.Match[str]) -> str:
    scheme, user, password = match[1], match[2], match[3]
    if password is not None:
        return f"{scheme}{user}:***@"
    return f"{scheme}***@" if user else match[0]


def mask_secrets(text: str, *secrets: str | None) -> str:
    """`text` with the userinfo secret of every URL in it (its password, or a user name alone), and each given
    secret, replaced by ***."""
    text = _URL_USERINFO.sub(_mask_userinfo, text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


# --- dates --------------------------------------------------------------------------------------------------


def format_when(when: datetime | None, *, zone: bool = True) -> str:
    """A timestamp as people read it, in UTC: `2026-11-23 14:05 UTC` ('' for none; naive values are UTC)."""
    if when is None:
        return ""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC" if zone else "%Y-%m-%d %H:%M")


def iso_utc(when: datetime | None) -> str | None:
    """A timestamp for machines: ISO 8601 in UTC (+00:00) (None for none; naive values are UTC)."""
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat()


# --- sequences ----------------------------------------------------------------------------------------------

T = TypeVar("T")


def batched(items: Sequence[T], size: int) -> list[list[T]]:
    """`items` in order, in lists of at most `size` (itertools.batched arrives with Python 3.12)."""
    size = max(1, size)
    return [list(items[start:start + size]) for start in range(0, len(items), size)]
