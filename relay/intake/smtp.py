"""SMTP intake: aiosmtpd served on the running event loop.

The handler has only the hooks it needs. RCPT is where a letter is refused (unknown pal,
sender not enrolled or not paired), with a named reply. DATA answers 250 only after the
message is durably in the spool; messages arriving together on several sessions are
committed together (`GroupCommit`), so one folder fsync and one round of file fsyncs answer
them all. Anything unexpected answers 451 4.3.0 so that the sending
server retries: never a 5xx for our own fault, never a traceback or an address in a reply.

Back-pressure: while more letters (or bytes) wait in `spool/incoming/` to be held than
`[smtp] max_backlog_letters` (`max_backlog_bytes`) allow, MAIL and RCPT answer 452 4.3.1 and
the sender retries later (`Backlog`). Everything already accepted stays in the spool.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import sys
import time
import weakref
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, AnyStr

from aiosmtpd.smtp import SMTP, Envelope, Session

from relay import replies, verp
from relay.addresses import normalize
from relay.authentication import verify_sender
from relay.context import Context
from relay.route import OwnAddress, Refusal, route_letter
from relay.spool import FoundRoute, Incoming, Waiting
from relay.store import now_iso

log = logging.getLogger("relay")

# aiosmtpd writes some replies itself; say them in our words, with enhanced codes.
_BUILTIN = {
    "552 Error: Too much mail data": replies.TOO_BIG,
    "552 Error: message size exceeds fixed maximum message size": replies.TOO_BIG,
    "500 Line too long (see RFC5321 4.5.3.1.6)": replies.LINE_TOO_LONG,
    "553 5.1.3 Error: malformed address": replies.MALFORMED_ADDRESS,
    "500 Error: bad syntax": replies.SYNTAX_ERROR,
    "503 Error: need MAIL command": replies.NEED_MAIL,
    "503 Error: need RCPT command": replies.NEED_RCPT,
    "503 Error: nested MAIL command": replies.NESTED_MAIL,
}


class RelaySMTP(SMTP):
    """aiosmtpd's protocol, with our reply texts and a registry of open sessions."""

    sessions: set[RelaySMTP]

    def __init__(self, handler: IntakeHandler, sessions: set[RelaySMTP], **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.sessions = sessions

    async def push(self, status: AnyStr) -> None:
        if isinstance(status, str):
            await super().push(_BUILTIN.get(status, status))
        else:
            await super().push(status)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.sessions.add(self)
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        self.sessions.discard(self)
        super().connection_lost(error)

    @property
    def in_transaction(self) -> bool:
        envelope = self.envelope
        return envelope is not None and envelope.mail_from is not None


Blocking = Callable[..., Awaitable[Any]]

MAX_BATCH = 64
BACKLOG_RECOUNT_SECONDS = 0.5  # how stale the count of letters waiting to be held may get


class Backlog:
    """How many letters wait to be held, counted cheaply, shared by every intake process.

    Each process counts what it accepted itself as it goes and recounts the spool folder
    (which `serve` and the intake processes share) when its count is older than
    `BACKLOG_RECOUNT_SECONDS`. A full backlog is always recounted before a sender is turned
    away, so intake opens again as soon as holding has caught up.
    """

    def __init__(self, context: Callable[[], Context], blocking: Blocking) -> None:
        self.context = context
        self.blocking = blocking
        self.waiting = Waiting()
        self.counted_at = float("-inf")
        self.recount: asyncio.Task[None] | None = None

    def accepted(self, messages: list[bytes]) -> None:
        self.waiting = self.waiting.plus(len(messages), sum(len(raw) for raw in messages))

    def _over(self) -> bool:
        smtp = self.context().config.smtp
        return (
            self.waiting.letters >= smtp.max_backlog_letters
            or self.waiting.bytes >= smtp.max_backlog_bytes
        )

    async def full(self) -> bool:
        stale = time.monotonic() - self.counted_at > BACKLOG_RECOUNT_SECONDS
        if stale or self._over():
            await self._recount()
        return self._over()

    async def _recount(self) -> None:
        if self.recount is None or self.recount.done():
            self.recount = asyncio.create_task(self._count())
        await asyncio.shield(self.recount)

    async def _count(self) -> None:
        started = time.monotonic()
        self.waiting = await self.blocking(self.context().spool.waiting)
        self.counted_at = started


class GroupCommit:
    """Collects the messages of concurrent sessions and spools them in one durable batch.

    While one batch is being written, newly arriving messages wait for the next one; each
    caller gets its spool id only once the batch holding its message is on disk. With one
    session at a time this is exactly one `accept_batch` of one message per letter.
    """

    def __init__(
        self, context: Callable[[], Context], blocking: Blocking, backlog: Backlog
    ) -> None:
        self.context = context
        self.blocking = blocking
        self.backlog = backlog
        self.waiting: list[tuple[bytes, Incoming, asyncio.Future[str]]] = []
        self.writer: asyncio.Task[None] | None = None

    async def accept(self, raw: bytes, incoming: Incoming) -> str:
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.waiting.append((raw, incoming, future))
        if self.writer is None or self.writer.done():
            self.writer = asyncio.create_task(self._write_batches())
        return await future

    async def _write_batches(self) -> None:
        while self.waiting:
            batch, self.waiting = self.waiting[:MAX_BATCH], self.waiting[MAX_BATCH:]
            try:
                ids = await self.blocking(
                    self.context().spool.accept_batch, [(raw, inc) for raw, inc, _ in batch]
                )
            except Exception as error:
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            self.backlog.accepted([raw for raw, _, _ in batch])
            for item_id, (_, _, future) in zip(ids, batch, strict=True):
                if not future.done():
                    future.set_result(item_id)


class IntakeHandler:
    def __init__(
        self,
        context: Callable[[], Context],
        blocking: Blocking,
        accepted: Callable[[str], None],
    ) -> None:
        self.context = context  # the current configuration may be reloaded at any time
        self.blocking = blocking
        self.accepted = accepted
        self.backlog = Backlog(context, blocking)
        self.commits = GroupCommit(context, blocking, self.backlog)
        # Letter routes found at RCPT, per transaction (an envelope lives for one).
        self.routes: weakref.WeakKeyDictionary[Envelope, list[FoundRoute]] = (
            weakref.WeakKeyDictionary()
        )

    async def _backlog_full(self) -> bool:
        try:
            return await self.backlog.full()
        except Exception:
            log.exception("could not count the letters waiting to be held")
            return False  # never refuse mail because a count failed

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if await self._backlog_full():
            return replies.BACKLOG_FULL
        if address not in ("", "<>"):
            try:
                normalize(address)
            except ValueError:
                return replies.BAD_SENDER_SYNTAX
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return replies.SENDER_OK

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        ctx = self.context()
        if len(envelope.rcpt_tos) >= ctx.config.smtp.max_recipients:
            return replies.TOO_MANY_RECIPIENTS
        if await self._backlog_full():  # filled up since this session's MAIL
            return replies.BACKLOG_FULL
        try:
            decision = await self.blocking(
                route_letter,
                ctx.config,
                envelope.mail_from or "",
                address,
                by_masked=ctx.store.by_masked,
                by_email=ctx.store.by_email,
            )
        except Exception:
            log.exception("lookup failed at RCPT")
            return replies.TRY_AGAIN
        if isinstance(decision, OwnAddress) and decision.kind == "bounce":
            decision = await self._bounce_address(ctx, decision)
        if isinstance(decision, Refusal):
            # Only an address on our own domain is logged: a foreign one may be a person's.
            shown = (
                address.lower() if address.lower().endswith("@" + ctx.config.relay.domain) else "-"
            )
            log.info("refused reason=%s to=%s", decision.reason, shown)
            return decision.reply
        if isinstance(decision, OwnAddress):
            log.info("accepted for %s", decision.kind)
        else:  # kept with the message, so processing only checks it again
            route = FoundRoute(address, decision.sender.id, decision.recipient.id)
            self.routes.setdefault(envelope, []).append(route)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return replies.RECIPIENT_OK

    async def _bounce_address(self, ctx: Context, own: OwnAddress) -> OwnAddress | Refusal:
        """A forged or expired VERP address is refused like an address nobody has."""
        try:
            valid = await self.blocking(verp.address_valid, ctx, own.local, datetime.now(UTC))
        except Exception:
            log.exception("bounce address check failed at RCPT")
            valid = True  # processing checks it again; never refuse mail because a read failed
        return own if valid else Refusal(replies.UNKNOWN_RECIPIENT, "bad-bounce-address")

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        incoming = Incoming(
            mail_from=envelope.mail_from or "",
            rcpt_tos=tuple(envelope.rcpt_tos),
            received_at=now_iso(),
            via="smtp",
            peer=str(session.peer[0]) if session.peer else "",
            helo=session.host_name or "",
            routes=tuple(self.routes.pop(envelope, ())),
        )
        try:
            checked: tuple[Incoming, str] = await self.blocking(
                verify_sender, self.context(), raw, incoming
            )
        except Exception:
            log.exception("could not verify a sender")
            return replies.TRY_AGAIN
        incoming, refusal = checked
        if refusal:
            log.info("refused reason=sender-unverified peer=%s", incoming.peer or "-")
            return refusal
        try:
            item_id = await self.commits.accept(bytes(raw), incoming)
        except Exception:
            log.exception("could not spool an incoming message")
            return replies.TRY_AGAIN
        log.info(
            "received spool=%s size=%d recipients=%d", item_id, len(raw), len(envelope.rcpt_tos)
        )
        self.accepted(item_id)
        return replies.QUEUED

    async def handle_exception(self, error: Exception) -> str:
        log.error("SMTP session error: %s", type(error).__name__)
        return replies.TRY_AGAIN


# --- the SMTP server, as serve and the intake processes run it ----------------------------


async def listen_smtp(
    context: Callable[[], Context],
    handler: IntakeHandler,
    sessions: set[RelaySMTP],
    host: str,
    port: int,
    *,
    share_port: bool = False,
) -> asyncio.Server:
    """Listen for SMTP on (host, port); every session reads the configuration current when
    it opens (size limit, host name). `share_port`: other processes listen on it too."""

    def session() -> RelaySMTP:
        config = context().config
        return RelaySMTP(
            handler,
            sessions,
            data_size_limit=config.smtp.max_message_bytes,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname=config.relay.domain,
            ident="penpal-relay",
        )

    shared: dict[str, Any] = {"reuse_port": True} if share_port else {}
    loop = asyncio.get_running_loop()
    return await loop.create_server(session, host=host, port=port, **shared)


async def finish_sessions(sessions: set[RelaySMTP], grace: float) -> None:
    """After the listener closed: let transactions in flight finish (up to `grace` seconds),
    then tell every remaining client the relay is restarting and hang up.

    A session whose transaction was in flight may also say QUIT and hear 221 (an unasked
    421 right after its 250 would answer that QUIT instead)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    finishing = {s for s in sessions if s.in_transaction}
    while loop.time() < deadline and (
        any(s.in_transaction for s in sessions) or finishing & sessions
    ):
        await asyncio.sleep(0.05)
    for session in list(sessions):
        if session.transport is not None:
            with contextlib.suppress(Exception):
                await session.push(replies.SHUTTING_DOWN)
            session.transport.close()


# --- a second intake process -------------------------------------------------------------

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
PARENT_CHECK_SECONDS = 1.0


def end_with_parent() -> None:
    """Ask Linux to send this process SIGTERM when the process that started it dies, so an
    intake process never keeps accepting mail that no `serve` will hold (after a kill -9).

    Linux sends the signal when the parent's *thread* that started this process ends, so
    `serve` starts intake processes from its main thread. Elsewhere `watch_parent` does it.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        log.warning("intake process: cannot ask to end with its parent; watching it instead")


async def watch_parent(parent: int, stop: asyncio.Event) -> None:
    """Set `stop` once the parent process is gone (this process was handed to another)."""
    while os.getppid() == parent:
        await asyncio.sleep(PARENT_CHECK_SECONDS)
    log.warning("intake process: serve is gone; stopping")
    stop.set()


async def serve_spool_only(
    context: Callable[[], Context],
    host: str,
    port: int,
    stop: asyncio.Event,
    ready: Callable[[], None] = lambda: None,
) -> int:
    """Accept and spool mail on (host, port) beside `serve`, sharing the port (SO_REUSEPORT).

    This process only routes at RCPT and spools at DATA, with the same replies, the same
    group commit and the same back-pressure as `serve`; holding the letters stays with
    `serve`, which finds what this process spooled in `incoming/`. The kernel spreads new
    connections over every process listening on the port, so intake uses a second core.
    Returns after `stop` is set and the transactions in flight have finished.
    """
    sessions: set[RelaySMTP] = set()
    handler = IntakeHandler(context, asyncio.to_thread, lambda item_id: None)
    server = await listen_smtp(context, handler, sessions, host, port, share_port=True)
    bound: int = server.sockets[0].getsockname()[1]
    log.info("intake worker listening smtp=%s:%d", host, bound)
    ready()
    await stop.wait()
    server.close()
    await finish_sessions(sessions, context().config.smtp.shutdown_grace_seconds)
    return bound


def intake_worker_main(argv: list[str] | None = None) -> int:
    """`python -m relay.intake.smtp --config PATH --port N [--parent PID]`: one intake
    process beside serve.

    Prints "listening" once its socket is bound, then serves until SIGTERM or SIGINT, or
    until its parent (`--parent`, by default the process that started it) is gone.
    """
    parent = os.getppid()
    end_with_parent()  # first: the parent may die at any moment from now on
    import argparse

    from relay import config as config_module
    from relay.context import open_context

    parser = argparse.ArgumentParser(prog="python -m relay.intake.smtp")
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--parent", type=int, default=parent)
    args = parser.parse_args(argv)
    if args.parent != parent:
        return 1  # the parent died before this process could ask to end with it
    ctx = open_context(config_module.load(args.config))

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        watcher = asyncio.create_task(watch_parent(args.parent, stop))
        await serve_spool_only(
            lambda: ctx, ctx.config.smtp.listen.host, args.port, stop, ready=_say_listening
        )
        watcher.cancel()

    def _say_listening() -> None:
        print("listening", file=sys.stdout, flush=True)

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    raise SystemExit(intake_worker_main())
