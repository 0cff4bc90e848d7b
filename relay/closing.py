"""The end of a program year: a goodbye to each participant, and their pairs paused.

`plan` reads who of a partnership's libraries is still active and what each one's goodbye
says: their pals' names, how many of their letters reached a pal in the final report's
period (one pass over every letter kept), whether their guardian gets a copy (guardian
copies on, as for letters), and `no-consent` for someone whose guardian has not consented
(nothing is ever sent to them; they are paused all the same). A library can be in two
partnerships: someone with a pal in another partnership's library is not closed (`kept`).
`close` carries a plan out, one participant at a time: the goodbye (and the guardian's
copy, which says it is one) enters the outbox under a fixed name (`goodbye-<id>-<n>`, n:
this participant's n-th program close), then the participant is paused with
`pause_reason` "program-closed"; one audit entry `program-closed` says who (ids) and how
many, never an address.

Exactly one goodbye: a second run finds everyone paused and sends nothing; a run cut short
sends the rest, and the outbox takes each name once. A "program-closed" pause is the
library's: `resume` by email answers that the library resumes them
(`relay.participant_mail`), staff do it (`participants resume`, the dashboard). Letters
approved but not yet sent are held again by the outbox, as for every pause.

What the goodbye says is `templates/email/<lang>/goodbye.txt`; with `[program]
stay_in_touch` it adds that their library will write before the next program year to ask
whether they want to keep writing (the coordinator finds them: paused, "program-closed",
and listed by id in the audit entry).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address

from relay import guard, notices, participants, reports
from relay.config import Partnership
from relay.context import Context
from relay.outbox import Notice, door
from relay.store.records import ACTIVE, DELIVERED, Letter, Participant

log = logging.getLogger("relay")

CLOSED = "program-closed"  # the pause reason, and the audit event
NO_CONSENT = "no-consent"


@dataclass(frozen=True)
class Farewell:
    """One active participant at the end of the year, and what their goodbye says."""

    participant: Participant
    pals: tuple[str, ...]  # their names, as the welcome gives them
    letters: int  # their letters delivered to a pal
    guardian_copy: bool
    unsent: str = ""  # why no goodbye goes to them ("" when one does)


@dataclass(frozen=True)
class Closed:
    goodbyes: int  # to participants
    guardian_copies: int
    paused: int


def _active(
    ctx: Context, partnership: Partnership
) -> tuple[dict[str, Participant], list[Participant], list[Participant]]:
    """Everyone by id; the active participants of the partnership's libraries this close
    ends (no pal, or every pal in its libraries); those it keeps (a pal in another
    partnership's library: a library can be in two partnerships)."""
    everyone = {p.id: p for p in ctx.store.participants()}
    ending: list[Participant] = []
    elsewhere: list[Participant] = []
    for person in sorted(everyone.values(), key=lambda p: (p.library, p.number)):
        if person.library not in partnership.libraries or person.status != ACTIVE:
            continue
        pals = [everyone[i] for i in person.pals if i in everyone]
        here = all(pal.library in partnership.libraries for pal in pals)
        (ending if here else elsewhere).append(person)
    return everyone, ending, elsewhere


def kept(ctx: Context, partnership: Partnership) -> list[Participant]:
    """Blocking: active participants of its libraries whose pal is in another partnership."""
    return _active(ctx, partnership)[2]


def plan(
    ctx: Context,
    partnership: Partnership,
    now: datetime | None = None,
    letters: Sequence[Letter] | None = None,
) -> list[Farewell]:
    """Blocking: every active participant of the partnership's libraries whose pals are all
    in them (or who has none), by library and id; their letters counted are those delivered
    within the final report's period (the twelve months to this one), from `letters` when
    the caller read them already (`Store.all_letters`)."""
    everyone, ending, _ = _active(ctx, partnership)
    this_month = (now or datetime.now(UTC)).strftime("%Y-%m")
    first = reports.year_ending(this_month)
    delivered: Counter[str] = Counter()
    for letter in ctx.store.all_letters() if letters is None else letters:
        if letter.status != DELIVERED or not letter.sender:
            continue
        events = reports.events_of(letter)
        at = events.get("delivered") or events.get("held")  # a record without its dates
        if at is not None and first <= f"{at.year:04d}-{at.month:02d}" <= this_month:
            delivered[letter.sender] += 1
    found = []
    for person in ending:
        pals = [everyone[i] for i in person.pals if i in everyone]
        found.append(
            Farewell(
                participant=person,
                pals=tuple(pal.name for pal in pals),
                letters=delivered.get(person.id, 0),
                guardian_copy=bool(person.guardian_for_copies),
                unsent="" if person.may_correspond else NO_CONSENT,
            )
        )
    return found


def goodbye(ctx: Context, farewell: Farewell, copy_for: str = "") -> tuple[str, str]:
    """The goodbye's (subject, text) in the participant's language, with the privacy line;
    `copy_for` (the participant's name) for their guardian's copy."""
    person = farewell.participant
    library = ctx.config.library(person.library)
    subject, text = ctx.templates.email(
        person.language,
        "goodbye",
        name=person.name,
        pals=list(farewell.pals),
        letters=farewell.letters,
        stay_in_touch=ctx.config.program.stay_in_touch,
        library_name=library.name if library else person.library,
        program_name=ctx.config.relay.program_name,
        copy_for=copy_for,
    )
    return subject, f"{text.rstrip()}\n\n{notices.privacy_line(ctx, person.language)}\n"


def closes_of(ctx: Context) -> Counter[str]:
    """Blocking: how many times each participant was paused by a program close (audit)."""
    return Counter(
        str(entry.get("participant"))
        for entry in ctx.store.audit_log()
        if entry.get("event") == "paused" and entry.get("reason") == CLOSED
    )


def _item(ctx: Context, person: Participant, closes: int) -> tuple[str, str]:
    """The outbox name and Message-ID of a participant's goodbye: named after their how-many-th
    close this is, so a run again of the same close (they are not paused yet) takes the same
    name, and a later close (after they were resumed) a new one."""
    name = f"goodbye-{person.id}-{closes + 1}"
    signature = hmac.new(ctx.secret, name.encode(), hashlib.sha256).hexdigest()[:12]
    return name, f"<{name}.{signature}@{ctx.config.relay.domain}>"


def _send(ctx: Context, farewell: Farewell, closes: int) -> list[bool]:
    """Queue the goodbye, then the guardian's copy; for each, whether it was new."""
    person = farewell.participant
    pals = [ctx.store.participant(i) for i in person.pals]
    private = guard.addresses_of(pals)  # a pal's or their family's address never appears
    name, message_id = _item(ctx, person, closes)
    readers = [("", Address(person.name, addr_spec=person.email), "")]
    if farewell.guardian_copy:
        guardian = Address(person.guardian_name, addr_spec=person.guardian)
        readers.append(("-guardian", guardian, person.name))
    queued = []
    for suffix, to, copy_for in readers:
        subject, text = goodbye(ctx, farewell, copy_for)
        message = door.program_message(
            ctx, to, subject, text, message_id=message_id.replace(">", f"{suffix}>", 1)
        )
        queued.append(
            door.queue(
                ctx, name + suffix, message, Notice("goodbye"), to=to.addr_spec, private=private
            )
        )
    return queued


def close(
    ctx: Context, partnership: Partnership, farewells: list[Farewell], *, by: str, via: str
) -> Closed:
    """Blocking: send each goodbye, pause each participant, audit once (see the module)."""
    closes = closes_of(ctx)
    goodbyes = copies = paused = 0
    for farewell in farewells:
        current = ctx.store.participant(farewell.participant.id)
        if current is None or current.status != ACTIVE:
            continue  # changed since the plan: left, paused or erased
        if not farewell.unsent:
            queued = _send(ctx, farewell, closes[current.id])
            goodbyes += queued[0]
            copies += sum(queued[1:])
        participants.pause(ctx, current, by=by, via=via, reason=CLOSED)
        paused += 1
    ids = [f.participant.id for f in farewells]
    details = {"by": by} if by else {}
    ctx.store.audit(
        CLOSED,
        partnership=partnership.id,
        participants=ids,
        goodbyes=goodbyes,
        guardian_copies=copies,
        paused=paused,
        via=via,
        **details,
    )
    log.info(
        "%s partnership=%s goodbyes=%d guardian_copies=%d paused=%d via=%s",
        CLOSED,
        partnership.id,
        goodbyes,
        copies,
        paused,
        via,
    )
    return Closed(goodbyes, copies, paused)
