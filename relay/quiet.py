"""Quiet pairs: two pals between whom no letter has passed for `[matching] quiet_weeks`.

A pair is two active participants who are each other's pals and may both correspond (a
guardian's consent, where needed, is given). It is quiet when neither has written to the
other for `quiet_weeks` weeks: every letter the relay received from one to the other
counts as writing, whatever became of it (held, approved, delivered, rejected, failed or
bounced: the writer wrote); for two writing together to one pal (`writes_with`), so does a
letter between the pal and either of them. A pair counts from the latest of: when it was
last paired (the `paired` audit entry; without one, the later of the two enrolments), and
when either of the two was last resumed or had a guardian's consent given (`resumed`,
`consent-given`: from then on they may correspond again, after a pause or a program
close). So a pair made or resumed yesterday is not quiet, and a nudge from before does not
count. The one who owes a letter is the one who received the last; both, when nobody wrote
since then.

`find` is pure. `read` gathers what it needs from the store in one pass over the letters
(`Store.letter_parties`: hot shards and archive, without building `Letter`s) and one over
the audit log, never one per pair. Cost: at 1,000 pairs and 20,000 letters, 0.8 to 1.4 s
on two busy cores, four fifths of it parsing the archive's JSON lines; it grows with the
letters kept. It runs when a reminder is due (once a day per library), when the quiet
page is shown and when a pair is nudged. A letter reduced by retention
has lost who wrote it and no longer counts; retention keeps contents for months, far longer
than a pair stays quiet.

Staff act on a quiet pair with `nudge` or `rematch`. A nudge is a kind email to whoever
owes a letter, in their language; each library speaks to its own patrons, so only staff of
the library of the one who owes may nudge them (when both owe, each library nudges its
own). Each participant is nudged at most once per quiet period, counting the nudges of
their teammate's pair with the same pal (two writing together get one nudge, not two).
Audited `nudged`, with the library of the ones nudged. `rematch` (`participants.unpair`,
audited `unpaired` via "quiet" with the acting library, so `penpal-relay match` can give
both a new pal) is open to staff of either library.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.headerregistry import Address
from typing import Any

from relay import guard, notices, participants
from relay.context import Context
from relay.errors import NotFound, UserError
from relay.outbox import Notice, door
from relay.store.records import ACTIVE, LetterParties, Participant

log = logging.getLogger("relay")

Pair = frozenset[str]  # the two participant ids


@dataclass(frozen=True)
class QuietPair:
    """A quiet pair; `facing` puts the participant of the library looking at it first."""

    first: Participant
    second: Participant
    since: datetime  # the last letter either way, or the pairing when none came after it
    weeks: int  # whole weeks quiet
    owing: tuple[Participant, ...]  # who owes a letter: one, or both when nobody wrote
    last_letter: int | None  # the last letter's number, None when nobody wrote since pairing
    nudged_at: datetime | None = None  # the last nudge in this quiet period, if one was sent
    nudged: frozenset[str] = frozenset()  # who was nudged in this quiet period (pair or team)
    team_pairs: frozenset[Pair] = frozenset()  # this pair and a teammate's with the same pal

    @property
    def key(self) -> str:
        """The pair's name in the dashboard's addresses and in commands: its ids, lower first."""
        return pair_key(self.first.id, self.second.id)

    def owing_at(self, library_id: str) -> tuple[Participant, ...]:
        """Those who owe a letter and are patrons of `library_id`: the ones it may nudge."""
        return tuple(p for p in self.owing if p.library == library_id)

    def facing(self, library_id: str) -> QuietPair:
        """The same pair with the participant of `library_id` first."""
        if self.first.library == library_id or self.second.library != library_id:
            return self
        return replace(self, first=self.second, second=self.first)


def pair_key(one: str, other: str) -> str:
    ordered = sorted((one, other), key=lambda pid: (len(pid), pid))
    return "-".join(ordered)


@dataclass(frozen=True)
class Activity:
    """What the store says about every pair: when it was paired, its last letter, nudges;
    and when each participant was last resumed or had consent given."""

    paired: Mapping[Pair, datetime]
    last_letters: Mapping[Pair, tuple[datetime, int, str]]  # (received, letter, recipient)
    nudged: Mapping[Pair, tuple[tuple[datetime, frozenset[str]], ...]]  # (at, whom) each
    restarted: Mapping[str, datetime] = field(default_factory=dict)


def _when(text: object) -> datetime | None:
    try:
        at = datetime.fromisoformat(str(text))
    except ValueError:
        return None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def activity(letters: Iterable[LetterParties], audit: Iterable[Mapping[str, Any]]) -> Activity:
    """One pass over letters and one over audit entries (pure)."""
    last: dict[Pair, tuple[datetime, int, str]] = {}
    for letter in letters:
        if not letter.sender or not letter.recipient:  # reduced by retention: who is gone
            continue
        at = _when(letter.received_at)
        pair = frozenset((letter.sender, letter.recipient))
        if at is not None and (pair not in last or (at, letter.id) > last[pair][:2]):
            last[pair] = (at, letter.id, letter.recipient)
    paired: dict[Pair, datetime] = {}
    nudged: dict[Pair, tuple[tuple[datetime, frozenset[str]], ...]] = {}
    restarted: dict[str, datetime] = {}
    for entry in audit:
        event = str(entry.get("event"))
        if event not in ("paired", "nudged", *RESTARTS):
            continue
        at = _when(entry.get("at"))
        if at is None:
            continue
        if event in RESTARTS:
            pid = str(entry.get("participant", ""))
            if pid and (pid not in restarted or restarted[pid] < at):
                restarted[pid] = at
            continue
        ids = entry.get("participants")
        if not isinstance(ids, list) or len(ids) != 2:
            continue
        pair = frozenset(str(pid) for pid in ids)
        if event == "paired":
            if pair not in paired or paired[pair] < at:
                paired[pair] = at
            continue
        owing = entry.get("owing")
        whom = frozenset(str(pid) for pid in owing) if isinstance(owing, list) else pair
        nudged[pair] = (*nudged.get(pair, ()), (at, whom))
    return Activity(paired, last, nudged, restarted)


# Audit events after which a participant may correspond again: a pair counts from then.
RESTARTS = ("resumed", "consent-given")


def _corresponding(participant: Participant | None) -> bool:
    return participant is not None and participant.status == ACTIVE and participant.may_correspond


def _enrolled(participant: Participant) -> datetime:
    return _when(participant.created_at) or datetime.min.replace(tzinfo=UTC)


def find(
    everyone: Iterable[Participant], seen: Activity, now: datetime, quiet_weeks: int
) -> list[QuietPair]:
    """Every quiet pair at `now`, longest quiet first (pure)."""
    by_id = {p.id: p for p in everyone}
    found: list[QuietPair] = []
    for first in by_id.values():
        for pal_id in first.pals:
            second = by_id.get(pal_id)
            if pair_key(first.id, pal_id).split("-")[0] != first.id or second is None:
                continue  # each pair once, from its lower id
            if (
                not (_corresponding(first) and _corresponding(second))
                or first.id not in second.pals
            ):
                continue
            quiet = _quiet(first, second, seen, now, quiet_weeks, by_id)
            if quiet is not None:
                found.append(quiet)
    return sorted(found, key=lambda q: (q.since, q.first.number))


def _team(participant: Participant, pal: Participant, by_id: Mapping[str, Participant]) -> set[str]:
    """The participant, and the teammate writing together with them to `pal` (`together`)."""
    mate = by_id.get(participant.writes_with) if participant.writes_with else None
    if mate is None or mate.writes_with != participant.id or pal.id not in mate.pals:
        return {participant.id}
    return {participant.id, mate.id}


def _quiet(
    first: Participant,
    second: Participant,
    seen: Activity,
    now: datetime,
    quiet_weeks: int,
    by_id: Mapping[str, Participant],
) -> QuietPair | None:
    pair = frozenset((first.id, second.id))
    paired = seen.paired.get(pair) or max(_enrolled(first), _enrolled(second))
    for one in (first, second):  # resumed, or consent given: writing may start again
        paired = max(paired, seen.restarted.get(one.id, paired))
    # Two writing together to one pal: a letter between the pal and either is the pair's.
    ours, theirs = _team(first, second, by_id), _team(second, first, by_id)
    letters = (seen.last_letters.get(frozenset((a, b))) for a in ours for b in theirs)
    last = max((found for found in letters if found is not None), default=None)
    wrote = last is not None and last[0] >= paired
    since = last[0] if last is not None and wrote else paired
    if now - since < timedelta(weeks=quiet_weeks):
        return None
    owing: tuple[Participant, ...] = (first, second)
    if last is not None and wrote:
        owing = (first,) if last[2] in ours else (second,)
    # Nudges of this quiet period, of this pair or a teammate's pair with the same pal.
    nudges = [
        (at, whom)
        for a in ours
        for b in theirs
        for at, whom in seen.nudged.get(frozenset((a, b)), ())
        if at >= since
    ]
    return QuietPair(
        first=first,
        second=second,
        since=since,
        weeks=(now - since) // timedelta(weeks=1),
        owing=owing,
        last_letter=last[1] if last is not None and wrote else None,
        nudged_at=max((at for at, _ in nudges), default=None),
        nudged=frozenset(pid for _, whom in nudges for pid in whom),
        team_pairs=frozenset(frozenset((a, b)) for a in ours for b in theirs),
    )


def read(ctx: Context, now: datetime, *, library_id: str | None = None) -> list[QuietPair]:
    """Blocking: the quiet pairs at `now` (those with a participant of `library_id`, that
    participant first, when given)."""
    seen = activity(ctx.store.letter_parties(), ctx.store.audit_log())
    found = find(ctx.store.participants(), seen, now, ctx.config.matching.quiet_weeks)
    if library_id is None:
        return found
    return [
        q.facing(library_id) for q in found if library_id in (q.first.library, q.second.library)
    ]


def one(ctx: Context, key: str, now: datetime, library_id: str) -> QuietPair:
    """The quiet pair named `key` (`p3-p41`) with a participant of `library_id`; NotFound
    when there is none (not pals, not quiet, or not this library's)."""
    for quiet in read(ctx, now, library_id=library_id):
        if quiet.key == key.strip():
            return quiet
    raise NotFound(f"{key}: no quiet pair with a participant of {library_id}")


# --- acting on a quiet pair ----------------------------------------------------------------


class AlreadyNudged(UserError):
    """Those this library may nudge in the pair were nudged in this quiet period already:
    once is kind, twice is nagging."""

    def __init__(self, quiet: QuietPair, at: datetime) -> None:
        super().__init__(f"{quiet.key} was nudged on {at.date().isoformat()} already")
        self.at = at


class NotOurs(UserError):
    """Only the partner library's patron owes a letter: that library may nudge them."""

    def __init__(self, quiet: QuietPair, library_id: str) -> None:
        others = sorted({p.library for p in quiet.owing})
        super().__init__(
            f"{quiet.key}: only {', '.join(others)} may nudge its patron here, "
            f"not {library_id} (each library nudges its own patrons)"
        )
        self.libraries = others


def nudge(
    ctx: Context, key: str, library_id: str, *, by: str, via: str, now: datetime | None = None
) -> QuietPair:
    """Blocking: a kind email to whoever owes a letter in a quiet pair and is a patron of
    `library_id` (and to their guardian when the guardian gets copies of letters), once per
    quiet period for each of them, counting a teammate's pair with the same pal: when
    nobody is left to nudge, `AlreadyNudged`; when only the partner library's patron owes,
    `NotOurs`. Audited `nudged` with the library of the ones nudged. Returns the pair, its
    `owing` narrowed to the ones nudged."""
    at = now or datetime.now(UTC)
    quiet = one(ctx, key, at, library_id)  # the whole reading, before taking the lock
    ours = quiet.owing_at(library_id)
    if not ours:
        raise NotOurs(quiet, library_id)

    def send() -> QuietPair:
        nudges = activity((), ctx.store.audit_log()).nudged
        earlier = [
            (when, whom)
            for pair in quiet.team_pairs
            for when, whom in nudges.get(pair, ())
            if when >= quiet.since
        ]
        done = {pid for _, whom in earlier for pid in whom}
        owing = tuple(p for p in ours if p.id not in done)
        if not owing:
            raise AlreadyNudged(quiet, max(when for when, _ in earlier))
        period = quiet.since.date().isoformat()
        for person in owing:
            pal = quiet.second if person.id == quiet.first.id else quiet.first
            _send_nudge(ctx, person, pal, f"nudge-{quiet.key}-{period}-{person.id}", at)
        ctx.store.audit(
            "nudged",
            participants=[quiet.first.id, quiet.second.id],
            library=owing[0].library,
            owing=[p.id for p in owing],
            by=by,
            via=via,
        )
        log.info(
            "nudged participants=%s,%s owing=%s library=%s via=%s",
            quiet.first.id,
            quiet.second.id,
            ",".join(p.id for p in owing),
            owing[0].library,
            via,
        )
        return replace(quiet, owing=owing)

    # Checking for an earlier nudge and recording this one must not interleave (a second
    # click, the command line beside the dashboard, or the teammate's pair).
    return ctx.store.exclusively(send)


def _send_nudge(
    ctx: Context, owing: Participant, pal: Participant, item_id: str, now: datetime
) -> None:
    """The nudge to `owing`, and its copy to their guardian when they get copies."""
    readers = [(owing.name, owing.email, "")]
    if owing.guardian_for_copies:
        readers.append(("", owing.guardian, owing.name))
    for name, address, copy_for in readers:
        subject, text = ctx.templates.email(
            owing.language, "nudge", **nudge_values(ctx, owing, pal, now), copy_for=copy_for
        )
        text = f"{text.rstrip()}\n\n{notices.privacy_line(ctx, owing.language)}\n"
        message = door.program_message(ctx, Address(name, addr_spec=address), subject, text)
        door.queue(
            ctx,
            item_id + ("-guardian" if copy_for else ""),
            message,
            Notice("nudge"),
            to=address,
            private=guard.for_reader(guard.addresses_of([owing, pal]), address),
        )


def nudge_values(
    ctx: Context, owing: Participant, pal: Participant, now: datetime
) -> dict[str, Any]:
    """What the nudge template says: names, the pal's masked address, this month's topic."""
    config = ctx.config
    library = config.library(owing.library)
    pal_library = config.library(pal.library)
    partnership = next((p.id for p in config.partnerships if owing.library in p.libraries), "")
    topic = config.prompts.topic_for(f"{now.year:04d}-{now.month:02d}", partnership)
    subjects = topic.subject if topic is not None else {}
    return {
        "name": owing.name,
        "pal_name": pal.name,
        "pal_masked": pal.masked,
        "pal_library_name": pal_library.name if pal_library else pal.library,
        "library_name": library.name if library else owing.library,
        "program_name": config.relay.program_name,
        "topic": subjects.get(owing.language) or subjects.get(owing.language[:2], ""),
    }


def rematch(ctx: Context, key: str, library_id: str, *, by: str) -> QuietPair:
    """Blocking: end a quiet pair (audited `unpaired` via "quiet"), so that both may be
    matched again by `penpal-relay match`. Staff of either library may: it ends the pair
    for both."""
    quiet = one(ctx, key, datetime.now(UTC), library_id)
    participants.unpair(ctx, quiet.first, quiet.second, by=by, via="quiet")
    return quiet


def ended(ctx: Context, key: str, library_id: str) -> tuple[Participant, ...]:
    """Blocking: the two of a pair named `key` (`p3-p41`) who are no longer pals, one of
    them a patron of `library_id` (first): what the page names after a re-match. None for
    any other text, so that a link cannot make the page confirm what did not happen."""
    ids = key.split("-")
    found = [ctx.store.participant(pid) for pid in ids] if len(ids) == 2 else []
    two = tuple(p for p in found if p is not None)
    if len(two) != 2 or two[1].id in two[0].pals or library_id not in {p.library for p in two}:
        return ()
    return two if two[0].library == library_id else (two[1], two[0])
