"""An approved letter on its way: the copies to deliver, and what came of them.

`deliverable` builds the pal's copy, one for the pal's teammate (a participant who writes
together with the pal to the writer, `Participant.writes_with`: the copy goes to the
teammate's own address only; none when the same message went to the teammate too) and one
for each guardian from the letter record and its stored scrubbed version (nothing is parsed
or scrubbed again); every copy passes the leak guard. `delivered`, `failed` and `bounced` are
what `serve` registers with the outbox worker and the bounce handler: the letter learns its
outcome here and nowhere else.

Guarantee. An outbox entry of a letter has a fixed name, so queueing it again is harmless;
`reconcile` queues every approved letter whose entries are missing (a CLI killed between
its decision and its queueing, a lost outbox file) and `serve` runs it continuously.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.headerregistry import Address
from typing import Literal

from relay import compose, guard, notices, verp
from relay.consent import NO_CONSENT_NOTES
from relay.context import Context
from relay.errors import NotFound
from relay.letters import lifecycle, versions
from relay.outbox import GuardianCopy, LetterCopy, OutboxEntry, TeammateCopy, door
from relay.scrub import ScrubbedLetter
from relay.scrub.leakguard import CheckedMessage
from relay.store import now_iso
from relay.store.records import ACTIVE, HELD, Letter, Participant

log = logging.getLogger("relay")

Outgoing = tuple[OutboxEntry, CheckedMessage]


def _participant(ctx: Context, participant_id: str) -> Participant:
    participant = ctx.store.participant(participant_id)
    if participant is None:
        raise NotFound(f"participant {participant_id} not found")
    return participant


def party(ctx: Context, participant: Participant) -> compose.Party:
    """A side of a letter as delivery composes it: name, library, masked and real address."""
    library = ctx.config.library(participant.library)
    return compose.Party(
        name=participant.name,
        library_name=library.name if library else participant.library,
        masked=participant.masked,
        email=participant.email,
        language=participant.language,
    )


def _map_thread(ctx: Context, letter: Letter) -> tuple[str | None, tuple[str, ...]]:
    """Rewrite threading ids into the ones the reader's mail client knows; drop the rest."""
    domain = ctx.config.relay.domain

    def mapped(message_id: str) -> str | None:
        own = compose.letter_of_message_id(ctx.secret, message_id, domain)
        if own is not None:
            earlier = ctx.store.letter(own)
            if earlier and earlier.sender == letter.recipient and earlier.message_id:
                return earlier.message_id  # the reader's own original
            return None
        earlier = ctx.store.letter_by_message_id(message_id)
        if earlier and earlier.sender == letter.sender and earlier.out_message_id:
            return earlier.out_message_id  # what the reader received from us
        return None

    references = tuple(
        dict.fromkeys(m for m in (mapped(r) for r in letter.references) if m is not None)
    )
    in_reply_to = mapped(letter.in_reply_to) if letter.in_reply_to else None
    return in_reply_to, references


def as_delivered(ctx: Context, letter: Letter) -> ScrubbedLetter:
    """The letter's content exactly as it will be (or was) delivered; only a note once
    retention removed it."""
    if letter.reduced_at:
        return versions.removed(letter)
    return versions.content(ctx, letter, _participant(ctx, letter.sender))


def teammate_of(ctx: Context, pal: Participant, writer: Participant) -> Participant | None:
    """Who writes together with the pal to the writer and may read letters now, or None."""
    mate = ctx.store.participant(pal.writes_with) if pal.writes_with else None
    if mate is None or mate.writes_with != pal.id or writer.id not in mate.pals:
        return None
    return mate if mate.status == ACTIVE and mate.may_correspond else None


def _teammate_copy_for(
    ctx: Context, letter: Letter, pal: Participant | None, writer: Participant | None
) -> Participant | None:
    """The pal's teammate who gets a copy of this letter: none when the writer sent the same
    message to the teammate too (one letter to both masked addresses), as that letter is
    theirs; each of the two reads it once."""
    mate = teammate_of(ctx, pal, writer) if pal and writer else None
    if mate is None or ctx.store.letter_id_for_spool(letter.spool_id, mate.id) is not None:
        return None
    return mate


def teammate_reads(ctx: Context, letter: Letter, teammate_id: str) -> bool:
    """Whether the pal's teammate still gets a copy of this letter (see `teammate_of`)."""
    writer, pal = ctx.store.participant(letter.sender), ctx.store.participant(letter.recipient)
    mate = _teammate_copy_for(ctx, letter, pal, writer)
    return mate is not None and mate.id == teammate_id


def deliverable(ctx: Context, letter: Letter) -> list[Outgoing]:
    """The outbox entries (entry, sealed bytes) of an approved letter: the pal's copy first,
    then the pal's teammate's, then a copy for each guardian of the writer, the pal and the
    teammate, built from the record."""
    sender = _participant(ctx, letter.sender)
    recipient = _participant(ctx, letter.recipient)
    teammate = _teammate_copy_for(ctx, letter, recipient, sender)
    in_reply_to, references = _map_thread(ctx, letter)
    decided = datetime.fromisoformat(letter.decided_at) if letter.decided_at else datetime.now(UTC)
    clean = versions.content(ctx, letter, sender)
    # Third parties' addresses seen in the quoted history go too, should an edit bring one back;
    # the teammate's and the pal's addresses are kept from each other's copy.
    private = (
        guard.private_for_letter(ctx, letter)
        | set(clean.history_addresses)
        | guard.addresses_of([teammate])
    )

    def build(
        reader: compose.Party, message_id: str, copy_for: str | None, **together: str
    ) -> CheckedMessage:
        message = compose.compose_letter(
            clean,
            sender=party(ctx, sender),
            recipient=reader,
            program_name=ctx.config.relay.program_name,
            message_id=message_id,
            in_reply_to=in_reply_to,
            references=references,
            date=decided,
            templates=ctx.templates,
            copy_for=copy_for,
            privacy_url=ctx.config.privacy_url(reader.language),
            **together,
        ).as_bytes()
        return guard.checked(
            message, guard.for_reader(private, reader.email), what=f"letter {letter.id}"
        )

    pal = party(ctx, recipient)
    bounce = verp.bounce_address(ctx.secret, letter.id, ctx.config.relay.domain, decided.date())
    team = {"together_with": teammate.name} if teammate else {}
    entries: list[Outgoing] = [
        (
            door.entry(
                ctx, f"letter-{letter.id}", LetterCopy(letter.id), recipient.email, sender=bounce
            ),
            build(pal, letter.out_message_id, None, **team),
        ),
    ]
    if teammate is not None:
        entries.append(
            (
                door.entry(
                    ctx,
                    f"letter-{letter.id}-teammate-{teammate.id}",
                    TeammateCopy(letter.id, teammate.id),
                    teammate.email,
                ),
                build(
                    party(ctx, teammate),
                    letter.out_message_id.replace("@", f".team-{teammate.id}@"),
                    None,
                    together_with=recipient.name,
                    written_to=recipient.name,
                ),
            )
        )
    for child in (sender, recipient, *([teammate] if teammate else [])):
        if child.guardian_for_copies:
            reader = replace(party(ctx, child), name="", email=child.guardian)
            copy_id = letter.out_message_id.replace("@", f".copy-{child.id}@")
            entries.append(
                (
                    door.entry(
                        ctx,
                        f"letter-{letter.id}-guardian-{child.id}",
                        GuardianCopy(letter.id, child.id),
                        child.guardian,
                    ),
                    build(reader, copy_id, child.name),
                )
            )
    return entries


def queue(ctx: Context, entries: list[Outgoing]) -> bool:
    """Put a letter's copies in the outbox; True when any was not there yet."""
    return any(door.queue_many(ctx, entries))


def reconcile(ctx: Context, *, settle_seconds: float = 0.0) -> int:
    """Queue the copies of every approved letter that are neither waiting in the outbox nor
    sent already. A decision younger than `settle_seconds` is left to the process making it
    (a CLI between recording its approval and queueing the copies). Cheap when nothing is
    missing: it reads the hot letter shards and looks for files; it composes only a letter
    that needs queueing."""
    settled = datetime.now(UTC) - timedelta(seconds=settle_seconds)
    queued = 0
    for letter in ctx.store.approved_letters():
        if letter.decided_at and datetime.fromisoformat(letter.decided_at) > settled:
            continue
        missing = [i for i in copy_ids(ctx, letter) if not ctx.spool.queued_or_sent(i)]
        if not missing:
            continue
        copies = [
            (entry, sealed) for entry, sealed in deliverable(ctx, letter) if entry.id in missing
        ]
        if queue(ctx, copies):
            log.info("requeued letter=%d", letter.id)
            queued += 1
    return queued


def copy_ids(ctx: Context, letter: Letter) -> list[str]:
    """The outbox names of a letter's copies (see `deliverable`), without composing them."""
    ids = [f"letter-{letter.id}"]
    writer, pal = ctx.store.participant(letter.sender), ctx.store.participant(letter.recipient)
    teammate = _teammate_copy_for(ctx, letter, pal, writer)
    if teammate is not None:
        ids.append(f"letter-{letter.id}-teammate-{teammate.id}")
    for child in (writer, pal, teammate):
        if child is not None and child.guardian_for_copies:
            ids.append(f"letter-{letter.id}-guardian-{child.id}")
    return ids


def hold_again(ctx: Context, letter: Letter) -> bool:
    """An approved letter whose writer or pal may not correspond any more (a guardian
    withdrew consent, or a new guardian has not consented yet: with the no-consent note
    staff know) or is no longer active (paused or left, by email or by staff) goes back to
    held before any of its copies is handed to the transport: the outbox drops them unsent,
    and approving it again (once consent is given, or they are resumed) queues them afresh.
    True when the letter is held (now or already)."""
    waiting = [
        (role, why)
        for role, participant_id in (("writer", letter.sender), ("pal", letter.recipient))
        if (who := ctx.store.participant(participant_id)) is not None
        and (why := _kept_because(who))
    ]
    if not waiting:
        return letter.status == HELD

    def noted(current: Letter) -> Letter:
        notes = [NO_CONSENT_NOTES[role] for role, why in waiting if why == "no-consent"]
        return current.but(notes=(*current.notes, *(n for n in notes if n not in current.notes)))

    try:
        lifecycle.apply(
            ctx,
            letter.id,
            "held-again",
            details={"not_sent": "-".join(waiting[0])},
            change=noted,
        )
    except lifecycle.NotNow as moved:
        return moved.letter.status == HELD
    return True


def _kept_because(who: Participant) -> str:
    """Why no letter may go to or from them now ("no-consent", "paused", "left"), or ""."""
    if not who.may_correspond:
        return "no-consent"
    return "" if who.status == ACTIVE else who.status


# --- outcomes ------------------------------------------------------------------------------


def delivered(ctx: Context, letter_id: int) -> Letter | None:
    """The transport confirmed the pal's copy. None when the letter has moved on already
    (a bounce outran this record); the outbox entry may then go all the same."""
    stamp = now_iso()
    try:
        return lifecycle.apply(
            ctx, letter_id, "delivered", change=lambda current: current.but(delivered_at=stamp)
        )
    except lifecycle.NotNow as late:
        log.info("delivery confirmed late letter=%d status=%s", letter_id, late.letter.status)
        return None


def failed(ctx: Context, letter_id: int, reason: str) -> Letter:
    """The transport refused the pal's copy for good (or for too long)."""
    return _not_delivered(ctx, letter_id, "failed", reason)


def bounced(ctx: Context, letter_id: int, reason: str) -> Letter:
    """The pal's mail server returned a letter it had accepted."""
    return _not_delivered(ctx, letter_id, "bounced", reason)


def _not_delivered(
    ctx: Context, letter_id: int, event: Literal["failed", "bounced"], reason: str
) -> Letter:
    letter = lifecycle.apply(
        ctx,
        letter_id,
        event,
        details={"error": reason},
        change=lambda current: current.but(last_error=reason),
    )
    tell_about_failure(ctx, letter, reason)
    return letter


def tell_about_failure(ctx: Context, letter: Letter, reason: str) -> None:
    """The writer's moderators get the details; the writer a kind note in their language."""
    writer = ctx.store.participant(letter.sender)
    pal = ctx.store.participant(letter.recipient)
    if writer is not None and pal is not None:
        notices.tell_writer(
            ctx,
            writer,
            "not_delivered",
            f"not-delivered-{letter.id}",
            pal=pal,
            pal_name=pal.name,
            subject=letter.subject,
        )
    library = ctx.config.library(letter.sender_library)
    for index, moderator in enumerate(library.moderators if library else ()):
        subject, text = ctx.templates.email(
            moderator.language,
            "delivery_failed",
            staff_name=moderator.name,
            letter_id=letter.id,
            subject=letter.subject,
            sender_masked=letter.sender_masked,
            recipient_masked=letter.recipient_masked,
            reason=reason,
            program_name=ctx.config.relay.program_name,
        )
        notices.send_notice(
            ctx,
            f"failed-{letter.id}-{index}",
            Address(moderator.name, addr_spec=moderator.email),
            subject,
            text,
            kind="failure-notice",
            letter=letter.id,
        )
