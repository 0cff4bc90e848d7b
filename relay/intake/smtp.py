"""SMTP intake: aiosmtpd served on the running event loop.

The handler has only the hooks it needs. RCPT is where a letter is refused (unknown pal,
sender not enrolled or not paired), with a named reply. DATA answers 250 only after the
message is durably in the spool; messages arriving together on several sessions are
committed together (`GroupCommit`), so one folder fsync and one round of file fsyncs answer
them all. Anything unexpected answers 451 4.3.0 so that the sending
server retries: never a 5xx for our own fault, never a traceback or an address in a reply.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, AnyStr

from aiosmtpd.smtp import SMTP, Envelope, Session

from relay import replies
from relay.addresses import normalize
from relay.context import Context
from relay.route import OwnAddress, Refusal, route_letter
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


class GroupCommit:
    """Collects the messages of concurrent sessions and spools them in one durable batch.

    While one batch is being written, newly arriving messages wait for the next one; each
    caller gets its spool id only once the batch holding its message is on disk. With one
    session at a time this is exactly one `accept_batch` of one message per letter.
    """

    def __init__(self, context: Callable[[], Context], blocking: Blocking) -> None:
        self.context = context
        self.blocking = blocking
        self.waiting: list[tuple[bytes, dict[str, Any], asyncio.Future[str]]] = []
        self.writer: asyncio.Task[None] | None = None

    async def accept(self, raw: bytes, meta: dict[str, Any]) -> str:
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.waiting.append((raw, meta, future))
        if self.writer is None or self.writer.done():
            self.writer = asyncio.create_task(self._write_batches())
        return await future

    async def _write_batches(self) -> None:
        while self.waiting:
            batch, self.waiting = self.waiting[:MAX_BATCH], self.waiting[MAX_BATCH:]
            try:
                ids = await self.blocking(
                    self.context().spool.accept_batch, [(raw, meta) for raw, meta, _ in batch]
                )
            except Exception as error:
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
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
        self.commits = GroupCommit(context, blocking)

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
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
        if isinstance(decision, Refusal):
            # Only an address on our own domain is logged: a foreign one may be a person's.
            shown = (
                address.lower() if address.lower().endswith("@" + ctx.config.relay.domain) else "-"
            )
            log.info("refused reason=%s to=%s", decision.reason, shown)
            return decision.reply
        if isinstance(decision, OwnAddress):
            log.info("accepted for %s", decision.kind)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return replies.RECIPIENT_OK

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "received_at": now_iso(),
            "peer": str(session.peer[0]) if session.peer else "",
            "helo": session.host_name or "",
            "via": "smtp",
        }
        try:
            item_id = await self.commits.accept(bytes(raw), meta)
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


# --- a second intake process -------------------------------------------------------------


async def serve_spool_only(
    context: Callable[[], Context],
    host: str,
    port: int,
    stop: asyncio.Event,
    ready: Callable[[], None] = lambda: None,
) -> int:
    """Accept and spool mail on (host, port) beside `serve`, sharing the port (SO_REUSEPORT).

    This process only routes at RCPT and spools at DATA, with the same replies and the same
    group commit as `serve`; holding the letters stays with `serve`, which finds what this
    process spooled in `incoming/`. The kernel spreads new connections over every process
    listening on the port, so intake uses a second core. Returns after `stop` is set and the
    transactions in flight have finished.
    """
    loop = asyncio.get_running_loop()
    sessions: set[RelaySMTP] = set()
    handler = IntakeHandler(context, asyncio.to_thread, lambda item_id: None)
    smtp = context().config.smtp
    server = await loop.create_server(
        lambda: RelaySMTP(
            handler,
            sessions,
            data_size_limit=smtp.max_message_bytes,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname=context().config.relay.domain,
            ident="penpal-relay",
        ),
        host=host,
        port=port,
        reuse_port=True,
    )
    bound: int = server.sockets[0].getsockname()[1]
    log.info("intake worker listening smtp=%s:%d", host, bound)
    ready()
    await stop.wait()
    server.close()
    deadline = loop.time() + smtp.shutdown_grace_seconds
    while any(s.in_transaction for s in sessions) and loop.time() < deadline:
        await asyncio.sleep(0.05)
    for session in list(sessions):
        if session.transport is not None:
            session.transport.close()
    return bound


def intake_worker_main(argv: list[str] | None = None) -> int:
    """`python -m relay.intake.smtp --config PATH --port N`: one intake process beside serve.

    Prints "listening" once its socket is bound, then serves until SIGTERM or SIGINT.
    """
    import argparse
    import signal
    import sys
    from pathlib import Path

    from relay import config as config_module
    from relay.context import open_context

    parser = argparse.ArgumentParser(prog="python -m relay.intake.smtp")
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    ctx = open_context(config_module.load(args.config))

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve_spool_only(
            lambda: ctx, ctx.config.smtp.listen.host, args.port, stop, ready=_say_listening
        )

    def _say_listening() -> None:
        print("listening", file=sys.stdout, flush=True)

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    raise SystemExit(intake_worker_main())
