"""Putting a message in the outbox: leak guard, envelope, spool, in that order.

Every message the relay sends goes through `queue`, so every one is searched by the leak
guard before the outbox takes it, and every outbox entry has the same envelope fields.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from email.headerregistry import Address
from typing import Any

from relay import compose, guard
from relay.context import Context
from relay.store import now_iso


def envelope(
    ctx: Context,
    kind: str,
    to: str,
    *,
    letter: int | None = None,
    sender: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "kind": kind,
        "letter": letter,
        "from": f"bounces@{ctx.config.relay.domain}" if sender is None else sender,
        "to": [to],
        "attempts": 0,
        "queued_at": now_iso(),
        **extra,
    }


def queue(
    ctx: Context,
    item_id: str,
    message: bytes,
    *,
    kind: str,
    to: str,
    private: Iterable[str] = (),
    what: str | None = None,
    letter: int | None = None,
    sender: str | None = None,
    **extra: Any,
) -> bool:
    """Guard, then enqueue once under `item_id`; False when it was already queued."""
    checked = guard.checked(message, private, what=what or kind)
    meta = envelope(ctx, kind, to, letter=letter, sender=sender, **extra)
    return ctx.spool.enqueue(item_id, checked, meta)


def program_message(
    ctx: Context,
    to: Address,
    subject: str,
    text: str,
    *,
    sender: Address | None = None,
    html: str | None = None,
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
        subject=subject,
        text=text,
        html=html,
        domain=config.relay.domain,
        date=date or datetime.now(UTC),
        in_reply_to=in_reply_to,
        message_id=message_id,
        auto=auto,
    ).as_bytes()
