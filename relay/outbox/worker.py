"""The outbox worker: hands queued messages to the transport, retries, gives up, reports.

The worker knows nothing of letters, prompts or moderators: it reports each outcome to the
`Outcomes` its caller registered (`serve` registers `relay.outcomes`). A message leaves the
outbox only after the transport confirmed it, and only after `delivered` returned for it,
under the store's write lock: so a letter's "delivered" or a prompt's "sent" is recorded
before its entry is removed, and a restart after a crash in between finds the entry again
and asks `wanted` before sending it twice.

Every message is DKIM-signed in its delivery slot just before the transport takes it
(in `_send`), the last change to its bytes; the outbox keeps it unsigned, so a retry is signed
again with the key in use then.

Cost model: signing takes about 1.5 ms for a prompt-sized message (one RSA signature by
OpenSSL, parsing and hashing by dkimpy), in a thread, beside the other slots' sending. Confirmed
deliveries are finished in groups (one `delivered` call and one folder fsync for every
message confirmed while the previous group was being recorded).
Temporary failures are retried with exponential backoff and jitter; a permanent failure, or
one that lasts longer than `give_up_after_hours`, moves the entry to `failed/`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from relay.addresses import without_addresses
from relay.config import Config
from relay.context import Context
from relay.errors import DeliveryError
from relay.outbox.entries import OutboxEntry, Tries
from relay.outbox.maildir import MaildirTransport
from relay.outbox.smtp import SmtpTransport

log = logging.getLogger("relay")
T = TypeVar("T")
Blocking = Callable[..., Awaitable[Any]]
POLL_SECONDS = 1.0
READ_AHEAD = 200  # messages read from disk in one trip to a thread


@dataclass(frozen=True)
class Outcomes:
    """What the worker reports, and the one question it asks. All run in the store thread;
    `delivered` runs under the store's write lock, before the entries are removed."""

    wanted: Callable[[OutboxEntry], bool]  # still to be sent? False drops it unsent
    delivered: Callable[[Sequence[OutboxEntry]], None]
    deferred: Callable[[OutboxEntry, DeliveryError], None]
    failed: Callable[[OutboxEntry, DeliveryError], None]
    # Not to be sent now, but perhaps queued again later: dropped unsent, its name forgotten.
    held_back: Callable[[OutboxEntry], bool] = lambda _entry: False


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


def due(entries: list[OutboxEntry], now: float) -> list[OutboxEntry]:
    return [entry for entry in entries if entry.tries.next_at <= now]


def entries(ctx: Context) -> list[OutboxEntry]:
    return [OutboxEntry.from_meta(item.id, item.meta) for item in ctx.spool.outbox()]


def ready(ctx: Context, outcomes: Outcomes, now: float) -> list[OutboxEntry]:
    """Entries due now; those no longer wanted (a letter delivered before a crash let its
    entry be removed) are dropped here, unsent, and so are those held back (a letter held
    again), whose names are forgotten so that they may be queued again."""
    found: list[OutboxEntry] = []
    unwanted: list[OutboxEntry] = []
    for entry in due(entries(ctx), now):
        # An entry already recorded as sent was cut short between its record and removal.
        sent = ctx.spool.was_sent(entry.id)
        if not sent and outcomes.held_back(entry):
            ctx.spool.drop(entry.id)
            log.info("held back %s: not sent, may be queued again", entry.label)
            continue
        fresh = not sent and outcomes.wanted(entry)
        (found if fresh else unwanted).append(entry)
    for entry in unwanted:
        log.info("dropped %s: no longer to be sent", entry.label)
    ctx.spool.sent_many([entry.id for entry in unwanted])
    return found


def read_messages(ctx: Context, chunk: Sequence[OutboxEntry]) -> dict[str, bytes]:
    """The messages of a chunk of entries; one whose file is gone is left out."""
    found = {}
    for entry in chunk:
        with contextlib.suppress(FileNotFoundError):
            found[entry.id] = ctx.spool.message("outbox", entry.id)
    return found


def finish(ctx: Context, outcomes: Outcomes, done: Sequence[OutboxEntry]) -> None:
    """Record the outcome, then remove the entries, under the lock a prompt send checks."""

    def record_then_remove() -> None:
        outcomes.delivered(done)
        ctx.spool.sent_many([entry.id for entry in done])

    ctx.store.exclusively(record_then_remove)
    for entry in done:
        log.info("sent %s item=%s", entry.purpose.kind, entry.id)


def after_failure(
    ctx: Context, outcomes: Outcomes, entry: OutboxEntry, error: DeliveryError
) -> None:
    now = time.time()
    first = entry.tries.first_failure_at or now
    settings = ctx.config.delivery
    tries = Tries(entry.tries.count + 1, first, entry.tries.next_at, str(error))
    if not (error.permanent or now - first > settings.give_up_after_hours * 3600):
        delay = backoff_seconds(
            tries.count, settings.retry_first_seconds, settings.retry_max_seconds
        )
        later = entry.but(Tries(tries.count, first, now + delay, tries.last_error))
        ctx.spool.update("outbox", entry.id, later.to_meta())
        log.info(
            "deferred %s attempt=%d retry_in=%ds error=%r",
            entry.label,
            tries.count,
            delay,
            without_addresses(str(error)),
        )
        outcomes.deferred(later, error)
        return
    failed = entry.but(tries)
    ctx.spool.give_up(entry.id, failed.to_meta())
    log.warning("failed %s error=%r", entry.label, without_addresses(str(error)))
    outcomes.failed(failed, error)


class Worker:
    """The delivery loop of `serve`: `blocking` runs work in the store thread, `threads` in
    the default pool; `woken` is set by whoever just queued something."""

    def __init__(
        self,
        context: Callable[[], Context],
        outcomes: Outcomes,
        blocking: Blocking,
        threads: Blocking,
        woken: asyncio.Event,
        concurrency: int,
    ) -> None:
        self.context = context
        self.outcomes = outcomes
        self.blocking = blocking
        self.threads = threads
        self.woken = woken
        self.limit = asyncio.Semaphore(concurrency)
        self._confirmed: list[OutboxEntry] = []
        self._finishing: asyncio.Task[None] | None = None

    async def run(self) -> None:
        ctx = self.context()
        transport, made_for = make_transport(ctx.config), ctx.config.delivery
        while True:
            try:
                ctx = self.context()
                if ctx.config.delivery != made_for:  # reloaded: new smarthost settings
                    await transport.close()
                    transport, made_for = make_transport(ctx.config), ctx.config.delivery
                pending = await self.blocking(ready, ctx, self.outcomes, time.time())
                for start in range(0, len(pending), READ_AHEAD):
                    chunk = pending[start : start + READ_AHEAD]
                    # One trip to a thread reads a chunk's messages, not one trip each.
                    messages = await self.threads(read_messages, ctx, chunk)
                    await asyncio.gather(
                        *(self._one(ctx, transport, e, messages.get(e.id)) for e in chunk)
                    )
                await self._finished()
            except Exception:
                log.exception("delivery worker error; trying again shortly")
            self.woken.clear()
            # Listing the outbox stats every marker: not in a loop while a CLI command
            # beside serve is still queueing (it needs the other core).
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.woken.wait(), POLL_SECONDS)

    async def _one(
        self,
        ctx: Context,
        transport: Transport,
        entry: OutboxEntry,
        message: bytes | None,
    ) -> None:
        async with self.limit:
            try:
                confirmed = await self._send(ctx, transport, entry, message)
            except Exception as error:
                # Our own bug, not the peer's: retry later like a temporary failure.
                log.exception("delivery error %s", entry.label)
                problem = DeliveryError(f"internal error: {type(error).__name__}", permanent=False)
                with contextlib.suppress(Exception):
                    await self.blocking(after_failure, ctx, self.outcomes, entry, problem)
                return
        if not confirmed:
            return
        self._confirmed.append(entry)
        if self._finishing is None or self._finishing.done():
            self._finishing = asyncio.create_task(self._finish_confirmed(ctx))

    async def _send(
        self,
        ctx: Context,
        transport: Transport,
        entry: OutboxEntry,
        message: bytes | None,
    ) -> bool:
        """True once the transport confirmed; False when already reported otherwise."""
        if message is None:
            # Not sent: its name is not kept, so reconciling can queue the letter again.
            log.warning("outbox entry without its message dropped %s", entry.label)
            await self.blocking(ctx.spool.drop, entry.id)
            return False
        # Signed here, in this message's delivery slot, just before the transport takes it:
        # nothing changes it after signing, each try signs anew, and signing overlaps with the
        # other slots' sending. A message that cannot be signed is retried like any error of
        # ours.
        signer = ctx.dkim
        outgoing = await self.threads(signer.sign, message) if signer else message
        try:
            await transport.send(entry.sender, list(entry.to), outgoing, entry.id)
        except DeliveryError as error:
            await self.blocking(after_failure, ctx, self.outcomes, entry, error)
            return False
        return True

    async def _finish_confirmed(self, ctx: Context) -> None:
        while self._confirmed:
            group, self._confirmed = self._confirmed, []
            await self.blocking(finish, ctx, self.outcomes, group)

    async def _finished(self) -> None:
        if self._finishing is not None:
            await self._finishing
