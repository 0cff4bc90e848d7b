"""Holding letters and deciding on them: the same code for the CLI, email and the dashboard.

Guarantees. `hold_incoming` records each letter once per spool item and recipient, so a
crash mid-way is repaired by running it again. `approve` writes the decision to the store
before anything is queued for delivery, and `reconcile` (run at start) queues again any
approved letter whose outbox entry a crash lost; the outbox entry of a letter has a fixed
name, so it is never queued twice.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, replace
from datetime import UTC, datetime
from email.headerregistry import Address
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from typing import Any

from relay import compose, guard, notices
from relay.config import Library, Staff
from relay.context import Context
from relay.errors import NotAllowed, NotFound, UserError
from relay.outbox import GuardianCopy, LetterCopy, Notice, OutboxEntry, door
from relay.route import LetterRoute
from relay.screen import screen
from relay.scrub import ScrubbedLetter, ScrubPolicy, scrub_letter
from relay.scrub.leakguard import CheckedMessage
from relay.spool import Item, new_id
from relay.store import now_iso
from relay.store.records import APPROVED, HELD, REJECTED, Letter, Participant

log = logging.getLogger("relay")


# --- holding -------------------------------------------------------------------------------


def _threading_headers(raw: bytes) -> tuple[str, str, tuple[str, ...]]:
    try:
        headers = BytesHeaderParser(policy=default_policy).parsebytes(raw)
        message_id = str(headers.get("Message-ID", "") or "").strip()
        in_reply_to = str(headers.get("In-Reply-To", "") or "").strip()
        references = tuple(str(headers.get("References", "") or "").split())
    except Exception:  # a garbled header must not lose the letter
        return "", "", ()
    return message_id, in_reply_to.split()[0] if in_reply_to else "", references


def header_notes(raw: bytes, sender_email: str) -> tuple[str, ...]:
    """What staff should know about the From line: the relay never trusts or shows it."""
    try:
        headers = BytesHeaderParser(policy=default_policy).parsebytes(raw)
        value = headers.get("From")
        if value is None:
            return ("The message had no From line.",)
        addresses = [a.addr_spec.lower() for a in getattr(value, "addresses", ())]
    except Exception:  # garbled beyond what the parser tolerates
        return ("The From line could not be read.",)
    if not addresses:
        return ("The From line could not be read.",)
    if sender_email not in addresses:
        return ("The From line names another address than the enrolled one it came from.",)
    return ()


def scrub_policy(ctx: Context, sender: Participant) -> ScrubPolicy:
    attachments = ctx.config.attachments
    private = (sender.email, sender.guardian) if sender.guardian else (sender.email,)
    return ScrubPolicy(
        private_values=private,
        max_attachment_bytes=attachments.max_bytes,
        max_attachments=attachments.max_count,
        allowed_types=attachments.allowed_types,
    )


def flags_for(
    ctx: Context, clean: ScrubbedLetter, sender: Participant
) -> tuple[dict[str, Any], ...]:
    """Screening flags for staff, with the writer's library country for phone numbers."""
    library = ctx.config.library(sender.library)
    languages = sorted({lib.language.split("-")[0] for lib in ctx.config.libraries})
    found = screen(
        clean,
        languages=[sender.language.split("-")[0], *languages],
        default_region=library.country if library else "US",
        keywords=ctx.config.screening.keywords,
    )
    return tuple(asdict(flag) for flag in found)


def scrubbed(ctx: Context, letter: Letter) -> ScrubbedLetter:
    """The letter exactly as it will be delivered (scrubbing is pure and repeatable).

    When a moderator edited the text before approving, the edit replaces both bodies: a
    redaction made in the text must not survive in an HTML twin of it.
    """
    sender = _participant(ctx, letter.sender)
    clean = safe_scrub(ctx.spool.original(letter.spool_id), scrub_policy(ctx, sender))
    edited = ctx.spool.edit(letter.id) if letter.edited_by else None
    if edited is not None:
        return replace(clean, text=edited, html=None)
    return clean


def safe_scrub(raw: bytes, policy: ScrubPolicy) -> ScrubbedLetter:
    """Scrubbing never raises by design; should it ever, the letter is held, not lost."""
    try:
        return scrub_letter(raw, policy)
    except Exception as error:
        log.exception("scrubbing failed")
        note = f"The letter could not be read ({type(error).__name__}); nothing will be delivered."
        return ScrubbedLetter(subject="", text=None, html=None, notes=(note,))


def hold(ctx: Context, item: Item, raw: bytes, route: LetterRoute) -> Letter:
    """Record a held letter for one recipient of an accepted message, and tell moderators."""
    clean = safe_scrub(raw, scrub_policy(ctx, route.sender))
    flags = flags_for(ctx, clean, route.sender)
    message_id, in_reply_to, references = _threading_headers(raw)

    def build(letter_id: int) -> Letter:
        return Letter(
            id=letter_id,
            spool_id=item.id,
            sender=route.sender.id,
            recipient=route.recipient.id,
            sender_masked=route.sender.masked,
            recipient_masked=route.recipient.masked,
            sender_library=route.sender.library,
            recipient_library=route.recipient.library,
            subject=clean.subject,
            received_at=str(item.meta.get("received_at") or now_iso()),
            flags=flags,
            notes=(*header_notes(raw, route.sender.email), *clean.notes),
            removed=tuple({"kind": r.kind, "detail": r.detail} for r in clean.removed),
            message_id=message_id,
            in_reply_to=in_reply_to,
            references=references,
            history=({"at": now_iso(), "event": "held"},),
        )

    spool_key = f"spool:{item.id}:{route.recipient.id}"

    def first_time(letter: Letter) -> None:
        log.info(
            "held letter=%d from=%s to=%s flags=%d notes=%d",
            letter.id,
            letter.sender_masked,
            letter.recipient_masked,
            len(letter.flags),
            len(letter.notes),
        )
        ctx.store.audit("held", letter=letter.id, spool=item.id)

    letter = ctx.store.hold_letter(build, spool_key=spool_key, on_new=first_time)
    notices.notify_moderators(ctx, letter, _delivered_text(clean))
    return letter


def _delivered_text(clean: ScrubbedLetter) -> str:
    return clean.text if clean.text is not None else compose.html_to_text(clean.html or "")


# --- deciding ------------------------------------------------------------------------------


def _participant(ctx: Context, participant_id: str) -> Participant:
    participant = ctx.store.participant(participant_id)
    if participant is None:
        raise NotFound(f"participant {participant_id} not found")
    return participant


def _moderator(ctx: Context, letter: Letter, by: str) -> tuple[Library, Staff]:
    library = ctx.config.library(letter.sender_library)
    member = library.staff_member(by) if library else None
    if library is None or member is None or not member.is_moderator:
        raise NotAllowed(
            f"{by} is not a moderator of library {letter.sender_library!r}, "
            f"which decides on letter {letter.id}"
        )
    return library, member


def _decider(ctx: Context, letter_id: int, by: str) -> tuple[Library, Staff]:
    """The library and moderator deciding on a letter, or NotFound / NotAllowed."""
    letter = ctx.store.letter(letter_id)
    if letter is None:
        raise NotFound(f"letter {letter_id} not found")
    return _moderator(ctx, letter, by)


def _must_be_held(letter: Letter) -> None:
    if letter.status != HELD:
        raise UserError(f"letter {letter.id} is {letter.status}, not held")


def approve(
    ctx: Context, letter_id: int, by: str, *, via: str = "cli", edited_text: str | None = None
) -> Letter:
    """Approve a held letter; with `edited_text`, deliver that text instead (edit-then-approve)."""
    letter = ctx.store.letter(letter_id)
    if letter is None:
        raise NotFound(f"letter {letter_id} not found")
    library, member = _moderator(ctx, letter, by)
    _must_be_held(letter)
    if edited_text is not None:
        ctx.spool.save_edit(letter_id, edited_text)
    stamp = now_iso()
    approved = letter.but(
        status=APPROVED,
        edited_by=member.email if edited_text is not None else letter.edited_by,
        decided_by=member.email,
        decided_at=stamp,
        out_message_id=compose.letter_message_id(ctx.secret, letter_id, ctx.config.relay.domain),
        history=(*letter.history, {"at": stamp, "event": "approved", "by": member.name}),
    )
    # Compose before recording the decision: a letter that cannot be built is never
    # reported as approved.
    entries = deliverable(ctx, approved)

    def decide(current: Letter) -> Letter:
        _must_be_held(current)  # another moderator may have decided meanwhile
        return approved

    ctx.store.update_letter(letter_id, decide)
    ctx.store.audit(
        "approved", letter=letter_id, by=member.email, via=via, edited=edited_text is not None
    )
    log.info("approved letter=%d by=%r library=%s via=%s", letter_id, member.name, library.id, via)
    door.queue_many(ctx, entries)
    return approved


def reject(ctx: Context, letter_id: int, by: str, reason: str, *, via: str = "cli") -> Letter:
    if not reason.strip():
        raise UserError("a rejection needs a reason; it is sent to the writer")
    library, member = _decider(ctx, letter_id, by)
    stamp = now_iso()

    def decide(current: Letter) -> Letter:
        _must_be_held(current)
        return current.but(
            status=REJECTED,
            decided_by=member.email,
            decided_at=stamp,
            reason=reason.strip(),
            history=(*current.history, {"at": stamp, "event": "rejected", "by": member.name}),
        )

    rejected = ctx.store.update_letter(letter_id, decide)
    ctx.store.audit("rejected", letter=letter_id, by=member.email, via=via, reason=reason)
    log.info("rejected letter=%d by=%r library=%s via=%s", letter_id, member.name, library.id, via)
    _tell_writer_rejected(ctx, rejected)
    return rejected


def _tell_writer_rejected(ctx: Context, letter: Letter) -> None:
    sender = _participant(ctx, letter.sender)
    recipient = _participant(ctx, letter.recipient)
    notices.tell_writer(
        ctx,
        sender,
        "rejected",
        f"rejected-{letter.id}",
        pal=recipient,
        pal_name=recipient.name,
        subject=letter.subject,
        reason=letter.reason,
    )


def keep_holding(ctx: Context, letter_id: int, by: str, *, via: str = "cli") -> Letter:
    """A moderator's "not yet": recorded, the letter stays in the queue, tokens stay valid."""
    library, member = _decider(ctx, letter_id, by)
    stamp = now_iso()

    def note(current: Letter) -> Letter:
        _must_be_held(current)
        event = {"at": stamp, "event": "kept on hold", "by": member.name}
        return current.but(history=(*current.history, event))

    updated = ctx.store.update_letter(letter_id, note)
    ctx.store.audit("kept-on-hold", letter=letter_id, by=member.email, via=via)
    log.info(
        "kept-on-hold letter=%d by=%r library=%s via=%s", letter_id, member.name, library.id, via
    )
    return updated


# --- to the outbox -------------------------------------------------------------------------


def _party(ctx: Context, participant: Participant) -> compose.Party:
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


Outgoing = tuple[OutboxEntry, CheckedMessage]


def deliverable(ctx: Context, letter: Letter) -> list[Outgoing]:
    """The outbox entries (entry, sealed bytes) of an approved letter: the pal's copy first,
    then a copy for each guardian of the writer and of the pal, built from the record."""
    sender = _participant(ctx, letter.sender)
    recipient = _participant(ctx, letter.recipient)
    in_reply_to, references = _map_thread(ctx, letter)
    decided = datetime.fromisoformat(letter.decided_at) if letter.decided_at else datetime.now(UTC)
    clean = scrubbed(ctx, letter)

    private = guard.private_for_letter(ctx, letter)

    def build(reader: compose.Party, message_id: str, copy_for: str | None) -> CheckedMessage:
        message = compose.compose_letter(
            clean,
            sender=_party(ctx, sender),
            recipient=reader,
            program_name=ctx.config.relay.program_name,
            message_id=message_id,
            in_reply_to=in_reply_to,
            references=references,
            date=decided,
            templates=ctx.templates,
            copy_for=copy_for,
        ).as_bytes()
        return guard.checked(
            message, guard.for_reader(private, reader.email), what=f"letter {letter.id}"
        )

    pal = _party(ctx, recipient)
    bounce = compose.bounce_address(ctx.secret, letter.id, ctx.config.relay.domain)
    entries: list[Outgoing] = [
        (
            door.entry(
                ctx, f"letter-{letter.id}", LetterCopy(letter.id), recipient.email, sender=bounce
            ),
            build(pal, letter.out_message_id, None),
        ),
    ]
    for child in (sender, recipient):
        if child.guardian:
            reader = replace(_party(ctx, child), name="", email=child.guardian)
            copy_id = letter.out_message_id.replace("@", f".copy-{child.id}@")
            entries.append(
                (
                    door.entry(
                        ctx,
                        f"letter-{letter.id}-guardian-{child.id}",
                        GuardianCopy(letter.id),
                        child.guardian,
                    ),
                    build(reader, copy_id, child.name),
                )
            )
    return entries


def enqueue_letter(ctx: Context, letter: Letter) -> bool:
    return any(door.queue_many(ctx, deliverable(ctx, letter)))


def send_notice(
    ctx: Context,
    item_id: str | None,
    to: Address,
    subject: str,
    text: str,
    *,
    kind: str,
    letter: int | None = None,
) -> None:
    """Queue a message from the program to one person (staff or a participant)."""
    message = door.program_message(ctx, to, subject, text)
    door.queue(ctx, item_id or f"notice-{new_id()}", message, Notice(kind, letter), to=to.addr_spec)


def reconcile(ctx: Context) -> int:
    """At start: queue again every approved letter whose outbox entry was lost."""
    queued = 0
    for letter in ctx.store.approved_letters():
        if enqueue_letter(ctx, letter):
            log.info("requeued letter=%d", letter.id)
            queued += 1
    return queued
