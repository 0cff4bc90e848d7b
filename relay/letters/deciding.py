"""A moderator's decision on a held letter: approve (perhaps with an edit), reject, not yet.

The same functions serve the command line, email replies and the dashboard (`via` says
which). Only a moderator of the writer's library decides. An approval is composed and
leak-guarded *before* it is recorded, so a letter that cannot be built is never reported
as approved; the decision is on disk before the outbox entries are written, and
`delivering.reconcile` (run continuously by `serve`) queues any approved letter whose
entries a crash lost.
"""

from __future__ import annotations

from relay import compose, notices
from relay.config import Library, Staff
from relay.context import Context
from relay.errors import NotAllowed, NotFound, UserError
from relay.faults import crash_point
from relay.letters import delivering, lifecycle
from relay.store import now_iso
from relay.store.records import Letter


def _letter(ctx: Context, letter_id: int) -> Letter:
    letter = ctx.store.letter(letter_id)
    if letter is None:
        raise NotFound(f"letter {letter_id} not found")
    return letter


def moderator_of(ctx: Context, letter: Letter, by: str) -> tuple[Library, Staff]:
    """The writer's library and the moderator deciding for it, or NotAllowed."""
    library = ctx.config.library(letter.sender_library)
    member = library.staff_member(by) if library else None
    if library is None or member is None or not member.is_moderator:
        raise NotAllowed(
            f"{by} is not a moderator of library {letter.sender_library!r}, "
            f"which decides on letter {letter.id}"
        )
    return library, member


def approve(
    ctx: Context, letter_id: int, by: str, *, via: str = "cli", edited_text: str | None = None
) -> Letter:
    """Approve a held letter; with `edited_text`, deliver that text instead (edit-then-approve)."""
    letter = _letter(ctx, letter_id)
    _library, member = moderator_of(ctx, letter, by)
    if not lifecycle.allowed(letter, "approved"):
        raise lifecycle.NotNow(letter, "approved")
    if edited_text is not None:
        ctx.spool.save_edit(letter_id, edited_text)
    decision = {
        "edited_by": member.email if edited_text is not None else letter.edited_by,
        "decided_by": member.email,
        "decided_at": now_iso(),
        "out_message_id": compose.letter_message_id(ctx.secret, letter_id, ctx.config.relay.domain),
    }
    # Built and guarded before the decision is recorded.
    entries = delivering.deliverable(ctx, letter.but(**decision))
    approved = lifecycle.apply(
        ctx,
        letter_id,
        "approved",
        moderator=member,
        via=via,
        details={"edited": edited_text is not None},
        change=lambda current: current.but(**decision),
    )
    crash_point("approve-after-decision")
    delivering.queue(ctx, entries)
    return approved


def reject(ctx: Context, letter_id: int, by: str, reason: str, *, via: str = "cli") -> Letter:
    if not reason.strip():
        raise UserError("a rejection needs a reason; it is sent to the writer")
    _library, member = moderator_of(ctx, _letter(ctx, letter_id), by)
    stamp = now_iso()
    rejected = lifecycle.apply(
        ctx,
        letter_id,
        "rejected",
        moderator=member,
        via=via,
        details={"reason": reason},
        change=lambda current: current.but(
            decided_by=member.email, decided_at=stamp, reason=reason.strip()
        ),
    )
    _tell_writer_rejected(ctx, rejected)
    return rejected


def _tell_writer_rejected(ctx: Context, letter: Letter) -> None:
    sender = ctx.store.participant(letter.sender)
    recipient = ctx.store.participant(letter.recipient)
    if sender is None or recipient is None:
        return
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
    _library, member = moderator_of(ctx, _letter(ctx, letter_id), by)
    return lifecycle.apply(ctx, letter_id, "kept-on-hold", moderator=member, via=via)
