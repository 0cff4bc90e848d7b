"""Times as a library's staff read them: in their library's own time zone, with day and month
names in their language ("Mon 30 Nov, 09:15"); the UTC instant stays machine-readable in
each `<time datetime>`.

Stored times are ISO 8601 in UTC (`relay.store.now_iso`). The names and the order of the
parts come from the words files (`day_names`, `month_names`, `time_pattern`,
`time_pattern_year`), so a language is a few lines there, not a dependency here. The year is
shown only for a time outside the current local year.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ENGLISH_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
ENGLISH_MONTHS = (
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
)  # fmt: skip


@dataclass(frozen=True)
class Calendar:
    """Day names (Monday first), month names (January first) and the patterns that place
    them: fields {weekday}, {day}, {month}, {year}, {time}."""

    days: tuple[str, ...] = ENGLISH_DAYS
    months: tuple[str, ...] = ENGLISH_MONTHS
    pattern: str = "{weekday} {day} {month}, {time}"
    pattern_year: str = "{weekday} {day} {month} {year}, {time}"

    @classmethod
    def of(cls, words: Mapping[str, Any]) -> Calendar:
        """From a language's words; a missing or malformed entry keeps the English one."""
        pattern, pattern_year = words.get("time_pattern"), words.get("time_pattern_year")
        default = cls()
        return cls(
            days=_names(words.get("day_names"), default.days),
            months=_names(words.get("month_names"), default.months),
            pattern=pattern if isinstance(pattern, str) else default.pattern,
            pattern_year=pattern_year if isinstance(pattern_year, str) else default.pattern_year,
        )


def _names(value: object, default: tuple[str, ...]) -> tuple[str, ...]:
    if isinstance(value, list | tuple) and len(value) == len(default):
        return tuple(str(name) for name in value)
    return default


def zone_of(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")  # the configuration checks zones at load; this is a last resort


def local_day(at: str, zone: str) -> str:
    """The date (YYYY-MM-DD) of a stored instant in a zone: what "from" and "to" filters
    compare, so a letter shown on Sun 29 Nov is found on the 29th wherever UTC was then."""
    moment = Clock(zone, Calendar()).local(at)
    return moment.date().isoformat() if moment is not None else at[:10]


class Clock:
    """Shows stored instants in one time zone; `now` decides which year goes without saying."""

    def __init__(self, zone: str, calendar: Calendar, now: datetime | None = None) -> None:
        self.zone = zone_of(zone)
        self.calendar = calendar
        self.now = (now or datetime.now(UTC)).astimezone(self.zone)

    def local(self, at: str | datetime) -> datetime | None:
        """The instant in this zone; None for an empty or unreadable value."""
        if isinstance(at, datetime):
            moment = at
        else:
            try:
                moment = datetime.fromisoformat(at.strip())
            except ValueError:
                return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)  # the store writes UTC; older lines too
        return moment.astimezone(self.zone)

    def utc(self, at: str | datetime) -> str:
        """For `<time datetime>`: the instant in UTC, ISO 8601 with a Z."""
        moment = self.local(at)
        if moment is None:
            return ""
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def shown(self, at: str | datetime) -> str:
        """ "Mon 30 Nov, 09:15" in this zone and language; an unreadable value as it is."""
        moment = self.local(at)
        if moment is None:
            return str(at)
        same_year = moment.year == self.now.year
        pattern = self.calendar.pattern if same_year else self.calendar.pattern_year
        return pattern.format(
            weekday=self.calendar.days[moment.weekday()],
            day=moment.day,
            month=self.calendar.months[moment.month - 1],
            year=moment.year,
            time=f"{moment.hour:02d}:{moment.minute:02d}",
        )

    @property
    def zone_label(self) -> str:
        """The zone said once per page: "New York (EST)", "Santiago (UTC-03)", "UTC"."""
        key = self.zone.key
        if key in ("UTC", "Etc/UTC"):
            return "UTC"
        place = key.rsplit("/", 1)[-1].replace("_", " ")
        short = self.now.tzname() or ""
        if short and short[0] in "+-":
            short = f"UTC{short}"
        return f"{place} ({short})" if short else place
