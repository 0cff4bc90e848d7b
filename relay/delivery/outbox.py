"""The outbox worker: hands queued messages to the transport, retries, gives up, reports.

A message leaves the outbox only after the transport confirmed it. For a letter, the store
is told "delivered" first and the outbox entry removed second; if a crash falls between the
two, the entry is found again at start, its letter is already delivered, and it is dropped
without sending twice. Temporary failures are retried with exponential backoff and jitter;
a permanent failure, or one that lasts longer than `give_up_after_hours`, marks the letter
failed and tells the moderators of the writer's library.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from relay import letters
from relay.config import Config
from relay.context import Context
from relay.delivery.maildir import MaildirTransport
from relay.delivery.smtp import SmtpTransport
from relay.errors import DeliveryError
from relay.schedule import prompts
from relay.spool import Item
from relay.store.records import APPROVED

log = logging.getLogger("relay")
T = TypeVar("T")
Blocking = Callable[..., Awaitable[Any]]


class Transport(Protocol):
    async def send(
        self, envelope_from: str, recipients: list[str], message: bytes, item_id: str
    ) -> None: ...

    async def close(self) -> None: ...


def make_transport(config: Config) -> Transport:
    if config.delivery.transport == "smtp":
        return SmtpTransport(config.delivery)
    return MaildirTransport(config.delivery.maildir)


def backoff_seconds(attempts: int, first: float, maximum: float) -> float:
    """Exponential backoff with jitter, so a smarthost coming back is not hit all at once."""
    delay: float = min(maximum, first * 2 ** max(0, attempts - 1))
    return delay * random.uniform(0.5, 1.0)  # noqa: S311 -- jitter, not a secret


def due(items: list[Item], now: float) -> list[Item]:
    return [item for item in items if float(item.meta.get("next_attempt_at", 0)) <= now]


async def deliver(ctx: Context, transport: Transport, item: Item, blocking: Blocking) -> None:
    letter_id = item.meta.get("letter")
    if item.meta.get("kind") == "letter":
        letter = await blocking(ctx.store.letter, letter_id)
        if letter is None or letter.status != APPROVED:
            # Already delivered (crash between the store and the outbox) or withdrawn.
            await blocking(ctx.spool.sent, item.id)
            return
    message = await blocking(ctx.spool.message, "outbox", item.id)
    try:
        await transport.send(item.meta["from"], list(item.meta["to"]), message, item.id)
    except DeliveryError as error:
        await blocking(after_failure, ctx, item, error)
    else:
        await blocking(after_success, ctx, item)


def after_success(ctx: Context, item: Item) -> None:
    letter_id = item.meta.get("letter")
    if item.meta.get("kind") == "letter" and isinstance(letter_id, int):
        letters.delivered(ctx, letter_id)
    else:
        if item.meta.get("kind") == "prompt":
            # Recorded before the outbox entry goes, so a restart never sends it again.
            prompts.mark_sent(ctx, str(item.meta["month"]), str(item.meta["participant"]))
        log.info("sent %s item=%s", item.meta.get("kind"), item.id)
    ctx.spool.sent(item.id)


def after_failure(ctx: Context, item: Item, error: DeliveryError) -> None:
    meta = dict(item.meta)
    meta["attempts"] = int(meta.get("attempts", 0)) + 1
    meta.setdefault("first_failure_at", time.time())
    meta["last_error"] = str(error)
    settings = ctx.config.delivery
    too_old = time.time() - float(meta["first_failure_at"]) > settings.give_up_after_hours * 3600
    label = f"letter={meta['letter']}" if meta.get("kind") == "letter" else f"item={item.id}"
    if not (error.permanent or too_old):
        delay = backoff_seconds(
            meta["attempts"], settings.retry_first_seconds, settings.retry_max_seconds
        )
        meta["next_attempt_at"] = time.time() + delay
        ctx.spool.update("outbox", item.id, meta)
        log.info(
            "deferred %s attempt=%d retry_in=%ds error=%r",
            label,
            meta["attempts"],
            delay,
            str(error),
        )
        return
    ctx.spool.give_up(item.id, meta)
    log.warning("failed %s error=%r", label, str(error))
    if meta.get("kind") == "letter":
        letters.failed(ctx, int(meta["letter"]), str(error))
