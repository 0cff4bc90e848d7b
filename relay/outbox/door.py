"""The one door out: leak guard, envelope, outbox, in that order.

Every message the relay sends goes through `queue` (or `queue_many` for a batch, or `put`
for bytes the caller already sealed with the leak guard), so every one is searched by the
leak guard before the outbox takes it, and every outbox entry is a typed `OutboxEntry`.

Cost model: `queue` costs two file fsyncs and one folder fsync; `queue_many` writes a whole
batch with its files fsynced together and one folder fsync (see `Spool.enqueue_batch`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from email.headerregistry import Address

from relay import compose, guard
from relay.context import Context
from relay.outbox.entries import Notice, OutboxEntry, Purpose
from relay.scrub.leakguard import CheckedMessage
from relay.store import now_iso


def entry(
    ctx: Context, item_id: str, purpose: Purpose, to: str, *, sender: str | None = None
) -> OutboxEntry:
    """A new outbox entry; the envelope sender is bounces@<domain> unless given."""
    return OutboxEntry(
        id=item_id,
        purpose=purpose,
        sender=f"bounces@{ctx.config.relay.domain}" if sender is None else sender,
        to=(to,),
        queued_at=now_iso(),
    )


def queue(
    ctx: Context,
    item_id: str,
    message: bytes,
    purpose: Purpose,
    *,
    to: str,
    private: Iterable[str] = (),
    what: str | None = None,
    sender: str | None = None,
) -> bool:
    """Guard, then enqueue once under `item_id`; False when it was already queued."""
    checked = guard.checked(message, private, what=what or _what(purpose))
    return put(ctx, entry(ctx, item_id, purpose, to, sender=sender), checked)


def put(ctx: Context, outgoing: OutboxEntry, checked: CheckedMessage) -> bool:
    """Enqueue bytes the leak guard already sealed; False when the entry was already there."""
    return queue_many(ctx, [(outgoing, checked)])[0]


def queue_many(ctx: Context, batch: Sequence[tuple[OutboxEntry, CheckedMessage]]) -> list[bool]:
    """Enqueue a batch with one group commit; for each, False when it was already queued."""
    return ctx.spool.enqueue_batch([(e.id, checked, e.to_meta()) for e, checked in batch])


def _what(purpose: Purpose) -> str:
    return purpose.topic if isinstance(purpose, Notice) else purpose.kind


def program_message(
    ctx: Context,
    to: Address,
    subject: str,
    text: str,
    *,
    sender: Address | None = None,
    reply_to: Address | None = None,
    html: str | None = None,
    pictures: Sequence[compose.InlinePicture] = (),
    auto: str = "auto-generated",
    in_reply_to: str | None = None,
    message_id: str | None = None,
    date: datetime | None = None,
) -> bytes:
    """A message from the program itself (by default from program@<domain>)."""
    config = ctx.config
    return compose.compose_notice(
        sender=sender or Address(config.relay.program_name, addr_spec=config.program_address),
        to=to,
        reply_to=reply_to,
        subject=subject,
        text=text,
        html=html,
        pictures=pictures,
        domain=config.relay.domain,
        date=date or datetime.now(UTC),
        in_reply_to=in_reply_to,
        message_id=message_id,
        auto=auto,
    )
