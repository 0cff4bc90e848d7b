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
- messages set aside after failing processing three times (`spool/unprocessed/`, as
  received: the coordinators were told) `letters_months` after they arrived;
- participants who left the program `left_months` ago (0: never), erased as staff would
  (`relay.rights.erase`, via "retention": one `erased` audit entry with ids only);
- participants whose guardian's consent is still awaited ("pending": declined or never
  answered) `no_consent_months` after their enrolment or the last request to their
  guardian (the audit log's `consent-requested`; 0: never), erased the same way;
- once expired: moderators' reply tokens, participants' emailed commands waiting for
  confirmation, guardians' consent requests and staff sign-in links; daily counters after
  two days.

A letter's files and keys go before its record is reduced, so a purge interrupted by a
crash leaves the letter due, and the next purge finishes it.

Cost: one read of the hot shards, the archive, `spool/messages/` and every lookup shard,
the participant shards, and writes only where something is removed (an erasure reads the
archive again); run daily, it is the only full scan the relay makes. Each purge writes one
audit entry with its counts and one INFO log line.
"""

from __future__ import annotations

import calendar
import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any

from relay import rights
from relay.context import Context
from relay.errors import NotFound
from relay.schedule import digests
from relay.store import Expired, now_iso
from relay.store.records import FINAL_STATES, LEFT, Letter, Participant

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
    letters: tuple[Letter, ...]  # final for `letters_months`, as they are now
    set_aside: tuple[str, ...]
    participants: tuple[str, ...]  # left `left_months` ago: erased
    unconsented: tuple[str, ...]  # consent awaited for `no_consent_months`: erased
    undated: tuple[tuple[str, datetime], ...]  # left before `left_at` was kept, and when
    forecast_originals: Upcoming
    forecast_letters: Upcoming
    forecast_participants: Upcoming
    forecast_unconsented: Upcoming
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
    letters: dict[int, Letter] = {}
    for letter in [*ctx.store.hot_letters(), *ctx.store.archived_letters()]:
        if letter.spool_id:
            by_spool.setdefault(letter.spool_id, []).append(letter)
        ended = _ended(letter)
        if ended is not None and not letter.reduced_at:
            letters_due[letter.id] = months_after(ended, settings.letters_months)
            letters[letter.id] = letter
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
    set_aside_before = months_before(now, settings.letters_months).timestamp()
    set_aside = [i for i, at in ctx.spool.set_aside_entries() if at <= set_aside_before]
    # The participants and (only when needed) the audit log are read once for all below.
    people = ctx.store.participants()
    audit_log = cache(ctx.store.audit_log)
    departed = _departed(people, audit_log, now)
    leaving = _leaving(ctx, departed)
    unconsented = {
        i: moment
        for i, moment in _unconsented(ctx, people, audit_log, now).items()
        if i not in leaving
    }
    counters_before = now.date() - timedelta(days=COUNTERS_KEPT_DAYS)
    audit_before = months_before(now, settings.letters_months).strftime("%Y-%m")
    return Plan(
        now=now,
        originals=tuple(sorted(i for i, moment in originals.items() if moment <= now)),
        failed=tuple(failed),
        letters=tuple(letters[i] for i in sorted(reduced)),
        set_aside=tuple(set_aside),
        participants=tuple(sorted(i for i, moment in leaving.items() if moment <= now)),
        unconsented=tuple(sorted(i for i, moment in unconsented.items() if moment <= now)),
        undated=tuple((p.id, left) for p, left in departed if not p.left_at),
        forecast_originals=_upcoming(originals.values(), now),
        forecast_letters=_upcoming(letters_due.values(), now),
        forecast_participants=_upcoming(leaving.values(), now),
        forecast_unconsented=_upcoming(unconsented.values(), now),
        tokens=ctx.store.forget_expired(now.timestamp(), counters_before, dry_run=True),
        audit_entries=ctx.store.reduce_audit(audit_before, dry_run=True),
    )


def _departed(
    people: list[Participant], audit_log: Callable[[], list[dict[str, Any]]], now: datetime
) -> list[tuple[Participant, datetime]]:
    """Participants who left, with when. A record without `left_at` (left before it was
    kept) goes by the audit log's latest `left` entry, or else by `now`: the first purge
    records that as their `left_at` (`Plan.undated`)."""
    gone = [p for p in people if p.status == LEFT]
    audited: dict[str, str] = {}
    if any(not p.left_at for p in gone):
        for entry in audit_log():
            if entry.get("event") == "left" and isinstance(entry.get("participant"), str):
                audited[entry["participant"]] = str(entry.get("at", ""))
    return [(p, _moment(p.left_at or audited.get(p.id, ""), now)) for p in gone]


def _moment(text: str, otherwise: datetime) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return otherwise
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _leaving(ctx: Context, departed: list[tuple[Participant, datetime]]) -> dict[str, datetime]:
    """When retention erases each participant who left: `left_months` after they left
    (none when it is 0)."""
    months = ctx.config.retention.left_months
    if not months:
        return {}
    return {p.id: months_after(left, months) for p, left in departed}


def _unconsented(
    ctx: Context,
    people: list[Participant],
    audit_log: Callable[[], list[dict[str, Any]]],
    now: datetime,
) -> dict[str, datetime]:
    """When retention erases each participant whose guardian's consent is awaited:
    `no_consent_months` after the latest of their enrolment and the requests to their
    guardian (a request, or consent becoming awaited, is in the audit log); none when 0."""
    months = ctx.config.retention.no_consent_months
    waiting = {p.id: p for p in people if p.consent == "pending"}
    if not months or not waiting:
        return {}
    since = {pid: _moment(p.created_at, now) for pid, p in waiting.items()}
    for entry in audit_log():
        pid = entry.get("participant")
        if pid in since and (
            entry.get("event") == "consent-requested" or entry.get("consent") == "pending"
        ):
            since[pid] = max(since[pid], _moment(str(entry.get("at", "")), since[pid]))
    return {pid: months_after(moment, months) for pid, moment in since.items()}


def _date_departures(ctx: Context, undated: Iterable[tuple[str, datetime]]) -> None:
    """Give `left_at` to records of people who left before it was kept (the plan's list:
    one erased since is passed over)."""
    for participant_id, left in undated:
        with contextlib.suppress(NotFound):
            ctx.store.update_participant(participant_id, _dated(left))


def _dated(left: datetime) -> Callable[[Participant], Participant]:
    def change(current: Participant) -> Participant:
        if current.status != LEFT or current.left_at:
            return current
        return current.but(left_at=left.isoformat(timespec="seconds"))

    return change


@dataclass(frozen=True)
class Purged:
    """What one purge removed (or, dry run, would remove). `grants`: moderators' reply
    tokens; `commands`: participants' emailed commands never confirmed; `consent_requests`:
    guardians' consent links; `set_aside`: messages that failed processing; `participants`:
    people who left, erased; `unconsented`: people whose guardian's consent never came,
    erased."""

    originals: int
    letters: int
    failed: int
    set_aside: int
    participants: int
    unconsented: int
    grants: int
    commands: int
    consent_requests: int
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
            originals=len(found.originals),
            letters=len(found.letters),
            failed=len(found.failed),
            set_aside=len(found.set_aside),
            participants=len(found.participants),
            unconsented=len(found.unconsented),
            grants=tokens.grants,
            commands=tokens.commands,
            consent_requests=tokens.consent_requests,
            sign_in_links=tokens.sign_in_links,
            counters=tokens.counters,
            audit_entries=found.audit_entries,
        )
    # Files and keys first, the record last: after a crash between them the letter is
    # still due, and the next purge removes what is left.
    for letter in found.letters:
        ctx.spool.remove_letter_versions(letter.spool_id, letter.recipient, letter.id)
        ctx.store.forget_letter_keys(letter, _moderators(ctx, letter))
    reduced = ctx.store.reduce_letters([letter.id for letter in found.letters], now_iso())
    ctx.spool.remove_originals(found.originals)
    ctx.spool.remove_failed(found.failed)
    ctx.spool.remove_set_aside(found.set_aside)
    counters_before = now.date() - timedelta(days=COUNTERS_KEPT_DAYS)
    tokens = ctx.store.forget_expired(now.timestamp(), counters_before, dry_run=False)
    audit_before = months_before(now, ctx.config.retention.letters_months).strftime("%Y-%m")
    audit_entries = ctx.store.reduce_audit(audit_before, dry_run=False)
    _date_departures(ctx, found.undated)
    erased = 0
    for participant_id in found.participants:
        participant = ctx.store.participant(participant_id)
        if participant is not None and participant.status == LEFT:  # not back meanwhile
            rights.erase(ctx, participant, via="retention")
            erased += 1
    unconsented = 0
    for participant_id in found.unconsented:
        participant = ctx.store.participant(participant_id)
        if participant is not None and participant.consent == "pending":  # not given since
            rights.erase(ctx, participant, via="retention")
            unconsented += 1
    purged = Purged(
        originals=len(found.originals),
        letters=len(reduced),
        failed=len(found.failed),
        set_aside=len(found.set_aside),
        participants=erased,
        unconsented=unconsented,
        grants=tokens.grants,
        commands=tokens.commands,
        consent_requests=tokens.consent_requests,
        sign_in_links=tokens.sign_in_links,
        counters=tokens.counters,
        audit_entries=audit_entries,
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
