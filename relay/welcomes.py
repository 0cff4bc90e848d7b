"""Welcome emails: when two participants become pals, each learns who the other is.

Each of the two gets one email in their own language from the program address: the pal's
first name (display name), library and country, the pal's masked address to write to, how
letters work (a librarian reads each one first) and the privacy notice's link; a guardian
who gets copies of letters gets a copy of it. A group (a class or a club) is welcomed
through its leader (its address), in words for a class or club leader, not for a child.
Never the pal's real address or surname: only what a delivered letter shows, and the leak
guard searches every copy for the pal's and the pal's guardian's addresses.

Once per pair: the pals a participant was welcomed to are kept with them (`welcomed`), and
each message is queued under a fixed outbox name, so a repeated call sends nothing twice.
Only when both may correspond: while one of the two waits for a guardian's consent, or is
paused or has left, neither is told (the other would write to someone who cannot receive
it yet); `pending` sends both welcomes when the consent comes or the participant is
resumed. Audited as "welcomed" with ids only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from email.headerregistry import Address

from relay import guard, letters, notices
from relay.context import Context
from relay.guard import LeakStopped
from relay.outbox import Notice, door
from relay.scrub.leakguard import CheckedMessage
from relay.store.records import ACTIVE, PAUSED, Participant

log = logging.getLogger("relay")

TEMPLATE = "welcome"


@dataclass(frozen=True)
class Welcome:
    """One welcome email as composed: to whom, and what it says."""

    to: str
    subject: str
    text: str
    copy_for: str  # the participant's name when this is their guardian's copy, "" otherwise


def words(ctx: Context, reader: Participant, pal: Participant) -> list[Welcome]:
    """The welcome(s) `reader` gets about `pal`: theirs, then their guardian's copy."""
    readers = [(reader.email, "")]
    if reader.guardian_for_copies:
        readers.append((reader.guardian, reader.name))
    library = ctx.config.library(reader.library)
    pal_library = ctx.config.library(pal.library)
    teams = _teams(ctx, reader, pal)
    found = []
    for address, copy_for in readers:
        subject, body = ctx.templates.email(
            reader.language,
            TEMPLATE,
            name=reader.name,
            copy_for=copy_for,
            library_name=library.name if library else reader.library,
            pal_name=pal.name,
            pal_library=pal_library.name if pal_library else pal.library,
            pal_country=pal_library.country if pal_library else "",
            pal_masked=pal.masked,
            program_name=ctx.config.relay.program_name,
            together_with=teams[0],
            pal_together_with=teams[1],
            group=reader.is_group,
        )
        text = f"{body.rstrip()}\n\n{notices.privacy_line(ctx, reader.language)}\n"
        found.append(Welcome(address, subject, text, copy_for))
    return found


def _teams(ctx: Context, reader: Participant, pal: Participant) -> tuple[str, str]:
    """Under `uneven = "together"`: the first name of the reader's teammate writing with
    them to this pal, and of the pal's teammate writing with the pal to the reader ("" for
    none): the teammates a letter's copy reaches (`letters.teammate_of`)."""
    mine, theirs = letters.teammate_of(ctx, reader, pal), letters.teammate_of(ctx, pal, reader)
    return (mine.name if mine else "", theirs.name if theirs else "")


def _ready(participant: Participant | None) -> bool:
    return participant is not None and participant.status == ACTIVE and participant.may_correspond


def welcome(
    ctx: Context, first: Participant, second: Participant, *, by: str = "", via: str
) -> int:
    """Blocking: welcome two new pals, each about the other, once; returns how many of the
    two were welcomed now (0 while one of them may not correspond yet)."""
    one, other = ctx.store.participant(first.id), ctx.store.participant(second.id)
    if one is None or other is None or other.id not in one.pals:
        return 0
    if not (_ready(one) and _ready(other)):
        for reader, pal in ((one, other), (other, one)):
            if pal.id not in reader.welcomed:
                _owe(ctx, reader.id, pal.id)
        return 0
    welcomed = 0
    for reader, pal in ((one, other), (other, one)):
        if pal.id not in reader.welcomed and _send(ctx, reader, pal, by=by, via=via):
            welcomed += 1
    return welcomed


def not_sent(ctx: Context, first: Participant, second: Participant) -> str:
    """Why `welcome` sends nothing to these two now, in staff's words ("" when it would)."""
    one, other = ctx.store.participant(first.id), ctx.store.participant(second.id)
    if one is None or other is None or other.id not in one.pals:
        return f"{first.id} and {second.id} are not pals"
    for who in (one, other):
        if who.status == PAUSED:
            return f"{who.id} is paused; the welcomes go when they are resumed"
        if who.status != ACTIVE:
            return f"{who.id} has left the program; the welcomes go if they are resumed"
        if not who.may_correspond:
            return f"{who.id} awaits a guardian's consent; the welcomes go when it is given"
    if other.id in one.welcomed and one.id in other.welcomed:
        return "both were welcomed to each other before"
    return ""


def _owe(ctx: Context, reader_id: str, pal_id: str) -> None:
    def owed(now: Participant) -> Participant:
        if pal_id in now.welcome_owed:
            return now
        return now.but(welcome_owed=(*now.welcome_owed, pal_id))

    ctx.store.update_participant(reader_id, owed)


def pending(ctx: Context, participant: Participant, *, by: str = "", via: str) -> int:
    """Blocking: the participant may correspond again (consent given, resumed); the welcomes
    `welcome` held back while they, or a pal, could not (`welcome_owed`, on either side).
    Pals paired without a welcome (`pair` without --welcome, pairs made before welcomes
    existed) are not welcomed now."""
    current = ctx.store.participant(participant.id)
    if current is None:
        return 0
    sent = 0
    for pal in (ctx.store.participant(pid) for pid in current.pals):
        if pal is not None and (pal.id in current.welcome_owed or current.id in pal.welcome_owed):
            sent += welcome(ctx, current, pal, by=by, via=via)
    return sent


def _sealed(welcome: Welcome, message: bytes, private: set[str]) -> CheckedMessage:
    """A welcome holds no words a patron wrote (the templates, first names, library names,
    masked addresses), so a disguised address cannot be in it: the pal's real addresses are
    looked for as they are, and the guard seals the bytes without compiling a pattern per
    address (0.3 s each on a busy machine: a class of 30 would wait a minute)."""
    said = f"{welcome.subject}\n{welcome.text}".lower()
    if any(address.lower() in said for address in private):
        raise LeakStopped("a welcome email", ["text"])
    return guard.checked(message, (), what="a welcome email")


def _send(ctx: Context, reader: Participant, pal: Participant, *, by: str, via: str) -> bool:
    private = guard.addresses_of([pal])

    def send() -> bool:
        current = ctx.store.participant(reader.id)
        if current is None or pal.id in current.welcomed:
            return False  # another process welcomed them meanwhile
        for index, welcome in enumerate(words(ctx, current, pal)):
            to = Address("" if welcome.copy_for else current.name, addr_spec=welcome.to)
            message = door.program_message(ctx, to, welcome.subject, welcome.text)
            item = f"welcome-{current.id}-{pal.id}-{index}"
            entry = door.entry(ctx, item, Notice(TEMPLATE), welcome.to)
            door.put(ctx, entry, _sealed(welcome, message, private))
        ctx.store.update_participant(
            current.id,
            lambda now: now.but(
                welcomed=(*now.welcomed, pal.id),
                welcome_owed=tuple(p for p in now.welcome_owed if p != pal.id),
            ),
        )
        return True

    # Checking, queueing and recording must not interleave with another process.
    if not ctx.store.exclusively(send):
        return False
    details = {"participants": [reader.id, pal.id], "library": reader.library, "via": via}
    details |= {"by": by} if by else {}
    ctx.store.audit("welcomed", **details)
    log.info("welcomed participant=%s pal=%s masked=%s via=%s", reader.id, pal.id, pal.masked, via)
    return True
