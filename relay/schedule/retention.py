"""Retention: removing what the relay keeps once `[retention]` says it is kept no longer.

Once a day (the first scheduled run of each day in UTC, so also when `serve` starts) and on
`penpal-relay retention run`, one purge removes:

- raw originals (`spool/messages/`: the writer's real address, their mail's headers) once
  every letter made from them reached a final state `originals_days` ago; originals no
  letter came from (mail refused after intake, automatic replies) `originals_days` after
  they arrived, and staff newsletter posts `letters_months` after;
- messages the transport refused for good (`spool/failed/`, composed with a real address)
  `originals_days` after;
- the contents of letters final for `letters_months`: the scrubbed version, a moderator's
  changes and, in the archive, everything but number, libraries, status and dates
  (`Letter.reduced`), with their lookup keys; the free text of audit entries of months
  before then (a rejection's reason, a mail server's error);
- moderators' reply tokens and sign-in links once expired, daily counters after two days.

Cost: one read of the hot shards, the archive, `spool/messages/` and every lookup shard,
and writes only where something is removed; run daily, it is the only full scan the relay
makes. Each purge writes one audit entry with its counts and one INFO log line.
"""

from __future__ import annotations

import calendar
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from relay.context import Context
from relay.schedule import digests
from relay.store import Expired, now_iso
from relay.store.records import FINAL_STATES, Letter

log = logging.getLogger("relay")

COUNTERS_KEPT_DAYS = 2  # a writer's notices per day: only today's count is ever read


def months_before(moment: datetime, months: int) -> datetime:
    """The same time `months` earlier (the 31st becomes the month's last day)."""
    return _shift_months(moment, -months)


def months_after(moment: datetime, months: int) -> datetime:
    return _shift_months(moment, months)


def _shift_months(moment: datetime, months: int) -> datetime:
    year, month = divmod(moment.year * 12 + moment.month - 1 + months, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


@dataclass(frozen=True)
class Upcoming:
    """One kind of record: how many go at the next purge, and the next day more do."""

    due: int = 0
    next_day: date | None = None
    next_count: int = 0


def _upcoming(due_times: Iterable[datetime], now: datetime) -> Upcoming:
    due = 0
    later: dict[date, int] = {}
    for moment in due_times:
        if moment <= now:
            due += 1
        else:
            later[moment.date()] = later.get(moment.date(), 0) + 1
    first = min(later, default=None)
    return Upcoming(due, first, later.get(first, 0) if first else 0)


@dataclass(frozen=True)
class Plan:
    """What a purge at `now` removes, and what comes next (for `config check`)."""

    now: datetime
    originals: tuple[str, ...]
    failed: tuple[str, ...]
    letters: tuple[int, ...]
    forecast_originals: Upcoming
    forecast_letters: Upcoming
    tokens: Expired
    audit_entries: int


def _ended(letter: Letter) -> datetime | None:
    """When a letter reached its final state; None when not final (or without a date,
    which keeps it until one is known)."""
    if letter.status not in FINAL_STATES:
        return None
    try:
        moment = datetime.fromisoformat(letter.final_at)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def plan(ctx: Context, now: datetime) -> Plan:
    """Read what is kept and decide what a purge at `now` removes; changes nothing."""
    settings = ctx.config.retention
    keep_originals = timedelta(days=settings.originals_days)
    by_spool: dict[str, list[Letter]] = {}
    letters_due: dict[int, datetime] = {}
    for letter in [*ctx.store.hot_letters(), *ctx.store.archived_letters()]:
        if letter.spool_id:
            by_spool.setdefault(letter.spool_id, []).append(letter)
        ended = _ended(letter)
        if ended is not None and not letter.reduced_at:
            letters_due[letter.id] = months_after(ended, settings.letters_months)
    reduced = {i for i, moment in letters_due.items() if moment <= now}
    posts = {post.spool for post in digests.posts(ctx)}
    originals: dict[str, datetime] = {}
    for item_id, arrived in ctx.spool.kept_originals():
        made = by_spool.get(item_id)
        if made and all(letter.id in reduced for letter in made):
            originals[item_id] = now  # their letters' contents go now: the original too
        elif made and all(_ended(letter) for letter in made):
            ended = max(moment for letter in made if (moment := _ended(letter)))
            originals[item_id] = ended + keep_originals
        elif not made:
            since = datetime.fromtimestamp(arrived, UTC)
            kept = (
                months_after(since, settings.letters_months) - since
                if item_id in posts
                else keep_originals
            )
            originals[item_id] = since + kept
    failed = [
        item_id
        for item_id, at in ctx.spool.failed_entries()
        if datetime.fromtimestamp(at, UTC) + keep_originals <= now
    ]
    counters_before = now.date() - timedelta(days=COUNTERS_KEPT_DAYS)
    audit_before = months_before(now, settings.letters_months).strftime("%Y-%m")
    return Plan(
        now=now,
        originals=tuple(sorted(i for i, moment in originals.items() if moment <= now)),
        failed=tuple(failed),
        letters=tuple(sorted(reduced)),
        forecast_originals=_upcoming(originals.values(), now),
        forecast_letters=_upcoming(letters_due.values(), now),
        tokens=ctx.store.forget_expired(now.timestamp(), counters_before, dry_run=True),
        audit_entries=ctx.store.reduce_audit(audit_before, dry_run=True),
    )


@dataclass(frozen=True)
class Purged:
    """What one purge removed (or, dry run, would remove)."""

    originals: int
    letters: int
    failed: int
    grants: int
    sign_in_links: int
    counters: int
    audit_entries: int

    def fields(self) -> dict[str, int]:
        return dict(vars(self))


def purge(ctx: Context, now: datetime, *, dry_run: bool = False) -> Purged:
    """Remove everything due at `now`: one audit entry and one log line say how much."""
    found = plan(ctx, now)
    if dry_run:
        tokens = found.tokens
        return Purged(
            len(found.originals),
            len(found.letters),
            len(found.failed),
            tokens.grants,
            tokens.sign_in_links,
            tokens.counters,
            found.audit_entries,
        )
    before = ctx.store.reduce_letters(found.letters, now_iso())
    for letter in before:
        ctx.spool.remove_letter_versions(letter.spool_id, letter.recipient, letter.id)
        ctx.store.forget_letter_keys(letter, _moderators(ctx, letter))
    ctx.spool.remove_originals(found.originals)
    ctx.spool.remove_failed(found.failed)
    counters_before = now.date() - timedelta(days=COUNTERS_KEPT_DAYS)
    tokens = ctx.store.forget_expired(now.timestamp(), counters_before, dry_run=False)
    audit_before = months_before(now, ctx.config.retention.letters_months).strftime("%Y-%m")
    purged = Purged(
        originals=len(found.originals),
        letters=len(before),
        failed=len(found.failed),
        grants=tokens.grants,
        sign_in_links=tokens.sign_in_links,
        counters=tokens.counters,
        audit_entries=ctx.store.reduce_audit(audit_before, dry_run=False),
    )
    ctx.store.audit("retention-purge", **purged.fields())
    log.info(
        "retention purge %s", " ".join(f"{name}={count}" for name, count in purged.fields().items())
    )
    return purged


def _moderators(ctx: Context, letter: Letter) -> list[str]:
    """Everyone who may have been sent a notice of the letter (staff of either library, as
    the configuration lists them now)."""
    found = []
    for library_id in (letter.sender_library, letter.recipient_library):
        library = ctx.config.library(library_id)
        found += [member.email for member in library.staff] if library else []
    return found


def next_purge(ctx: Context, now: datetime) -> date:
    """The day (UTC) the scheduled purge runs next."""
    today = now.astimezone(UTC).date()
    return today + timedelta(days=1) if ctx.store.retention_ran_on() == today else today


def purge_due(ctx: Context, now: datetime) -> None:
    """The scheduled step: once a day, at the first run of the day (UTC)."""
    moment = now.astimezone(UTC)
    if ctx.store.retention_ran_on() == moment.date():
        return
    # Marked first: a purge that fails is logged once and tried again tomorrow, not every
    # minute (`retention run` tries it now).
    ctx.store.set_retention_ran_on(moment.date())
    purge(ctx, moment)
