"""Letters written some time ago, put in the store as the relay keeps them, for tests of what
the program reads from its history (quiet pairs, reports) without waiting weeks."""

from __future__ import annotations

from datetime import datetime

from relay.context import Context
from relay.store.records import Letter, Participant


def record_letter(
    ctx: Context, writer: Participant, pal: Participant, at: datetime, status: str = "delivered"
) -> int:
    """A letter from `writer` to `pal` received `at`, now in `status` (the archive keeps
    letters that are no longer held); its id."""
    when = at.isoformat(timespec="seconds")

    def build(number: int) -> Letter:
        return Letter(
            id=number,
            spool_id=f"earlier-{number}",
            sender=writer.id,
            recipient=pal.id,
            sender_masked=writer.masked,
            recipient_masked=pal.masked,
            sender_library=writer.library,
            recipient_library=pal.library,
            subject="Hello",
            received_at=when,
        )

    held = ctx.store.hold_letter(build, spool_key=f"spool:earlier-{at.timestamp()}:{pal.id}")
    if status == "delivered":
        ctx.store.save_letter(held.but(status="delivered", delivered_at=when))
    elif status != "held":
        ctx.store.save_letter(held.but(status=status))  # type: ignore[arg-type]
    return held.id
