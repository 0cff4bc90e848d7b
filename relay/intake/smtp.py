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
import collections
import contextlib
import ctypes
import logging
import os
import re
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
from relay.compose import participant_of_unsubscribe
from relay.context import Context
from relay.route import OwnAddress, Refusal, Route, check_token, route_letter
from relay.spool import Draft, FoundRoute, Incoming, Waiting
from relay.store import now_iso

log = logging.getLogger("relay")

# aiosmtpd's words for a command line longer than its limits: we answer and hang up, since a
# client sending one is not speaking SMTP and may keep sending megabytes of it.
_COMMAND_TOO_LONG = "500 Command line too long"

# aiosmtpd writes some replies itself; say them in our words, with enhanced codes.
_BUILTIN = {
    "552 Error: Too much mail data": replies.TOO_BIG,
    "552 Error: message size exceeds fixed maximum message size": replies.TOO_BIG,
    "500 Line too long (see RFC5321 4.5.3.1.6)": replies.LINE_TOO_LONG,
    _COMMAND_TOO_LONG: replies.LINE_TOO_LONG,
    "553 5.1.3 Error: malformed address": replies.MALFORMED_ADDRESS,
    "500 Error: bad syntax": replies.SYNTAX_ERROR,
    "503 Error: need MAIL command": replies.NEED_MAIL,
    "503 Error: need RCPT command": replies.NEED_RCPT,
    "503 Error: nested MAIL command": replies.NESTED_MAIL,
}


# Replies after which the relay closes the connection.
_CLOSING = (_COMMAND_TOO_LONG, replies.TOO_MANY_REFUSALS)
DATA_CHUNK = 256 * 1024  # bytes of a message buffered before they are written to its file


def _peer(session: Session) -> str:
    """The client's IP address (logged and counted; it is a machine's, never a person's)."""
    return str(session.peer[0]) if session.peer else ""


# What a front server may tell with XFORWARD (Postfix's XFORWARD_README); we use ADDR and HELO.
XFORWARD_ATTRIBUTES = ("NAME", "ADDR", "PORT", "PROTO", "HELO", "IDENT", "SOURCE")
_XTEXT_ESCAPE = re.compile(r"\+([0-9A-F]{2})")


def parse_xforward(arg: str) -> dict[str, str] | None:
    """`NAME=value ...` (values in xtext, RFC 3461 4) as a dict, None when malformed.

    An IPv6 ADDR comes as `IPV6:2001:db8::1`; the prefix is dropped. `[UNAVAILABLE]` and
    `[TEMPUNAVAIL]` are kept as they are: they are no address, so SPF finds nothing to pass."""
    found: dict[str, str] = {}
    for word in arg.split():
        name, equals, value = word.partition("=")
        name = name.upper()
        if not equals or name not in XFORWARD_ATTRIBUTES or len(value) > 255:
            return None
        value = _XTEXT_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), value)
        if name == "ADDR" and value.upper().startswith("IPV6:"):
            value = value[5:]
        found[name] = value
    return found or None


class RelaySMTP(SMTP):
    """aiosmtpd's protocol, with our reply texts, a registry of open sessions, and DATA
    written to the spool as it arrives (`smtp_DATA`)."""

    sessions: set[RelaySMTP]

    def __init__(self, handler: IntakeHandler, sessions: set[RelaySMTP], **kwargs: Any) -> None:
        self.forwarded: dict[str, str] = {}  # XFORWARD attributes for the next transaction
        super().__init__(handler, **kwargs)
        self.intake = handler
        self.sessions = sessions

    def _set_rset_state(self) -> None:
        """HELO, EHLO and RSET also forget what a front server forwarded (so does DATA)."""
        super()._set_rset_state()  # type: ignore[no-untyped-call]
        self.forwarded = {}

    async def smtp_XFORWARD(self, arg: str) -> None:
        """The front server's client, for the next transaction (Postfix with
        `smtp_send_xforward_command = yes`): in mode "relay" SPF then checks the address
        the mail really came from, not the front server's. From anyone else the command
        does not exist: a client must not choose the address SPF checks."""
        session = self.session
        if session is None or not self.intake.from_front(session):
            await self.push(replies.NOT_RECOGNIZED)
            return
        if self.in_transaction:
            await self.push(replies.XFORWARD_IN_TRANSACTION)
            return
        attributes = parse_xforward(arg)
        if attributes is None:
            await self.push(replies.XFORWARD_SYNTAX)
            return
        self.forwarded.update(attributes)
        await self.push(replies.XFORWARD_OK)

    async def push(self, status: AnyStr) -> None:
        if not isinstance(status, str):
            await super().push(status)
            return
        await super().push(_BUILTIN.get(status, status))
        if status in _CLOSING and self.transport is not None:
            self.transport.close()

    async def smtp_DATA(self, arg: str) -> None:
        """DATA, written to a file in the spool line by line instead of kept in memory.

        Dot-stuffing is undone as lines arrive; beyond the size limit (control mail has a
        smaller one) the rest is read and dropped, then 552 is answered. The file is removed
        on any refusal or when the client goes away; once handed to the group commit, the
        commit owns it (it is kept if the commit succeeds, even if the client left)."""
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        envelope, session = self.envelope, self.session
        if envelope is None or session is None or not envelope.rcpt_tos:
            await self.push(replies.NEED_RCPT)
            return
        if arg:
            await self.push(replies.SYNTAX_ERROR)
            return
        try:
            draft = await self.intake.blocking(self.intake.context().spool.draft)
        except Exception:
            log.exception("could not start a message file in the spool")
            await self.push(replies.TRY_AGAIN)
            return
        handed = False
        try:
            status = await self._receive(draft, self.intake.data_limit(envelope))
            if status is None:
                handed = True
                spooled = self.intake.spool_draft(session, envelope, draft, self.forwarded)
                status = await asyncio.shield(asyncio.ensure_future(spooled))
        finally:
            if not handed:
                draft.discard()
        self.envelope = self._create_envelope()  # what aiosmtpd does after DATA
        self.forwarded = {}
        await self.push(status)

    async def _receive(self, draft: Draft, limit: int) -> str | None:
        """Read DATA into `draft`; None when the message is complete, else the refusal."""
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        buffer = bytearray()
        size = 0
        problem: str | None = None
        partial = False  # the tail of a line too long for the reader is still to come
        while True:
            try:
                line = await self._reader.readuntil(b"\r\n")
            except asyncio.LimitOverrunError as error:
                await self._reader.read(error.consumed)
                problem = problem or replies.LINE_TOO_LONG
                partial = True
                continue
            if partial:
                partial = False
                continue
            if line == b".\r\n":
                break
            size += len(line)
            if problem is None and size > limit:
                problem = replies.TOO_BIG
            if problem is not None:
                continue
            buffer += memoryview(line)[1:] if line.startswith(b".") else line
            if len(buffer) >= DATA_CHUNK:
                await self._write(draft, bytes(buffer))
                buffer.clear()
        if problem is None and buffer:
            await self._write(draft, bytes(buffer))
        return problem

    async def _write(self, draft: Draft, data: bytes) -> None:
        """Write in a thread; if the client goes away meanwhile, the write finishes before
        the draft can be discarded (its descriptor is in use until then)."""
        write = asyncio.ensure_future(self.intake.blocking(draft.write, data))
        try:
            await asyncio.shield(write)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await write
            raise

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

    def accepted(self, sizes: list[int]) -> None:
        self.waiting = self.waiting.plus(len(sizes), sum(sizes))

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
    """Collects the messages of concurrent sessions and commits them in one durable batch.

    Each body is already in the spool, written while it arrived (`Draft`); a batch fsyncs
    them and their markers together and renames them into place with one folder fsync.
    While one batch is being committed, newly arriving messages wait for the next one; each
    caller gets its spool id only once the batch holding its message is on disk. With one
    session at a time this is exactly one `accept_drafts` of one message per letter.
    """

    def __init__(
        self, context: Callable[[], Context], blocking: Blocking, backlog: Backlog
    ) -> None:
        self.context = context
        self.blocking = blocking
        self.backlog = backlog
        self.waiting: list[tuple[Draft, Incoming, asyncio.Future[str]]] = []
        self.writer: asyncio.Task[None] | None = None

    async def accept(self, draft: Draft, incoming: Incoming) -> str:
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.waiting.append((draft, incoming, future))
        if self.writer is None or self.writer.done():
            self.writer = asyncio.create_task(self._write_batches())
        return await future

    async def _write_batches(self) -> None:
        while self.waiting:
            batch, self.waiting = self.waiting[:MAX_BATCH], self.waiting[MAX_BATCH:]
            try:
                ids = await self.blocking(
                    self.context().spool.accept_drafts, [(d, inc) for d, inc, _ in batch]
                )
            except Exception as error:
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            self.backlog.accepted([draft.size for draft, _, _ in batch])
            for item_id, (_, _, future) in zip(ids, batch, strict=True):
                if not future.done():
                    future.set_result(item_id)


# Recipients a limited client may still try in one session (each answered 450 4.7.1)
# before the relay hangs up with 421 4.7.0.
LIMITED_RCPTS_BEFORE_CLOSE = 5
MAX_COUNTED_PEERS = 10_000  # beyond, peers whose refusals left the window are forgotten


class RefusalLimiter:
    """Refused recipients per client IP address, in a sliding window, in this process.

    A client refused `[smtp] max_refused_recipients` times within `refused_window_seconds`
    is limited: every further recipient is answered 450 4.7.1 (and, after a few in one
    session, the connection is closed) until its refusals age out of the window. Guessing
    masked addresses or tokens is slowed to a crawl; a sender that made a few typos is not
    affected. `exempt(ip)` is true for peers never limited (the mail servers in front of
    the relay, which carry everybody's mail)."""

    def __init__(
        self,
        context: Callable[[], Context],
        exempt: Callable[[str], bool],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.context = context
        self.exempt = exempt
        self.clock = clock
        self.refusals: dict[str, collections.deque[float]] = {}

    def _recent(self, peer: str) -> collections.deque[float]:
        window = self.context().config.smtp.refused_window_seconds
        times = self.refusals.get(peer)
        if times is None:
            return collections.deque()
        cutoff = self.clock() - window
        while times and times[0] < cutoff:
            times.popleft()
        if not times:
            del self.refusals[peer]
        return times

    def limited(self, peer: str) -> bool:
        if not peer or self.exempt(peer):
            return False
        return len(self._recent(peer)) >= self.context().config.smtp.max_refused_recipients

    def refused(self, peer: str) -> None:
        if not peer or self.exempt(peer):
            return
        if len(self.refusals) > MAX_COUNTED_PEERS:  # many clients: forget the quiet ones
            for quiet in list(self.refusals):
                self._recent(quiet)
        times = self.refusals.setdefault(peer, self._recent(peer))
        times.append(self.clock())
        if len(times) == self.context().config.smtp.max_refused_recipients:
            log.warning("client limited peer=%s refused=%d", peer, len(times))


def recipient_route(ctx: Context, mail_from: str, address: str) -> Route:
    """The route of one recipient (blocking); a token address only while its token is good.
    Asked at RCPT here, and by Postfix through the policy service (relay/intake/policy.py)."""
    decision = route_letter(
        ctx.config,
        mail_from,
        address,
        by_masked=ctx.store.by_masked,
        by_email=ctx.store.by_email,
    )
    if not isinstance(decision, OwnAddress):
        return decision
    if decision.kind == "bounce":  # a forged or expired VERP address: as nobody's
        valid = verp.address_valid(ctx, decision.local, datetime.now(UTC))
        return decision if valid else Refusal(replies.UNKNOWN_ADDRESS, "bad-bounce-address")
    return check_token(
        decision,
        grant=ctx.store.grant,
        unsubscribe_signed=lambda token: participant_of_unsubscribe(ctx.secret, token) is not None,
        now=time.time(),
        consent_request=ctx.store.consent_request,
        pending=ctx.store.pending_command,
    )


def _shown(ctx: Context, address: str) -> str:
    """A refused recipient as logged: only an address on our own domain (a foreign one may
    be a person's)."""
    return address.lower() if address.lower().endswith("@" + ctx.config.relay.domain) else "-"


async def record_refusal(
    ctx: Context,
    blocking: Blocking,
    limiter: RefusalLimiter,
    refusal: Refusal,
    address: str,
    peer: str,
    *,
    via: str = "",
) -> None:
    """What a refused recipient leaves behind, at RCPT here and in the policy service: one
    log line, one more refusal counted against the client, and the reason in the audit log
    (the reply says the same for every reason). A limited client's refusals stop before
    this, so the audit grows no faster than the limit."""
    to = _shown(ctx, address)
    log.info("refused reason=%s to=%s peer=%s%s", refusal.reason, to, peer, via and f" via={via}")
    limiter.refused(peer)
    try:
        await blocking(
            ctx.store.audit, "refused-recipient", reason=refusal.reason, to=to, peer=peer
        )
    except Exception:
        log.exception("could not audit a refused recipient")


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
        # The front servers ([authentication] front_servers) carry everybody's mail: they
        # limit their own clients (Postfix: smtpd_client_recipient_rate_limit).
        self.limiter = RefusalLimiter(
            context, lambda peer: context().config.authentication.from_front(peer)
        )
        # Recipients answered 450 4.7.1 in each limited session.
        self.slowed: weakref.WeakKeyDictionary[Session, int] = weakref.WeakKeyDictionary()
        self.backlog = Backlog(context, blocking)
        self.unforwarded_warned = False
        self.commits = GroupCommit(context, blocking, self.backlog)
        # Letter routes found at RCPT, per transaction (an envelope lives for one).
        self.routes: weakref.WeakKeyDictionary[Envelope, list[FoundRoute]] = (
            weakref.WeakKeyDictionary()
        )

    def from_front(self, session: Session) -> bool:
        return self.context().config.authentication.from_front(_peer(session))

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        """aiosmtpd's EHLO reply, with XFORWARD offered to front servers only."""
        session.host_name = hostname  # with this hook, aiosmtpd leaves it to us
        if self.from_front(session):
            responses.insert(-1, "250-XFORWARD " + " ".join(XFORWARD_ATTRIBUTES))
        return responses

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
        peer = _peer(session)
        if self.limiter.limited(peer):
            slowed = self.slowed.get(session, 0) + 1
            self.slowed[session] = slowed
            if slowed > LIMITED_RCPTS_BEFORE_CLOSE:
                return replies.TOO_MANY_REFUSALS
            return replies.RATE_LIMITED
        if len(envelope.rcpt_tos) >= ctx.config.smtp.max_recipients:
            return replies.TOO_MANY_RECIPIENTS
        if await self._backlog_full():  # filled up since this session's MAIL
            return replies.BACKLOG_FULL
        try:
            decision = await self.blocking(recipient_route, ctx, envelope.mail_from or "", address)
        except Exception:
            log.exception("lookup failed at RCPT")
            return replies.TRY_AGAIN
        if isinstance(decision, Refusal):
            await record_refusal(ctx, self.blocking, self.limiter, decision, address, peer)
            return decision.reply
        if isinstance(decision, OwnAddress):
            log.info("accepted for %s", decision.kind)
        else:  # kept with the message, so processing only checks it again
            route = FoundRoute(address, decision.sender.id, decision.recipient.id)
            self.routes.setdefault(envelope, []).append(route)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return replies.RECIPIENT_OK

    def data_limit(self, envelope: Envelope) -> int:
        """The size limit of a message: `max_message_bytes` when it carries a letter or comes
        from listed staff, else (only the relay's own addresses) `max_control_bytes`."""
        smtp = self.context().config.smtp
        if self.routes.get(envelope) or self._from_staff(envelope.mail_from or ""):
            return smtp.max_message_bytes
        return min(smtp.max_control_bytes, smtp.max_message_bytes)

    def _from_staff(self, mail_from: str) -> bool:
        try:
            address = normalize(mail_from) if mail_from not in ("", "<>") else ""
        except ValueError:
            return False
        return bool(address and self.context().config.staff_libraries(address))

    async def spool_draft(
        self, session: Session, envelope: Envelope, draft: Draft, forwarded: dict[str, str]
    ) -> str:
        """Check the sender, then commit a received message to the spool; the reply to DATA.
        The draft is removed unless it was committed. `forwarded`: what a front server said
        of its own client (XFORWARD)."""
        try:
            return await self._spool_draft(session, envelope, draft, forwarded)
        finally:
            draft.discard()

    async def _spool_draft(
        self, session: Session, envelope: Envelope, draft: Draft, forwarded: dict[str, str]
    ) -> str:
        ctx = self.context()
        incoming = Incoming(
            mail_from=envelope.mail_from or "",
            rcpt_tos=tuple(envelope.rcpt_tos),
            received_at=now_iso(),
            via="smtp",
            peer=_peer(session),
            helo=session.host_name or "",
            routes=tuple(self.routes.pop(envelope, ())),
            client=forwarded.get("ADDR", ""),
            client_helo=forwarded.get("HELO", ""),
        )
        self._warn_unforwarded(ctx, incoming)
        try:
            # The front server's verdict is in the header; the relay's own needs the body too.
            read = draft.read if ctx.config.authentication.mode == "relay" else draft.head
            checked: tuple[Incoming, str] = await self.blocking(
                lambda: verify_sender(ctx, read(), incoming)
            )
        except Exception:
            log.exception("could not verify a sender")
            return replies.TRY_AGAIN
        incoming, refusal = checked
        if refusal:
            log.info("refused reason=sender-unverified peer=%s", incoming.peer or "-")
            return refusal
        try:
            item_id = await self.commits.accept(draft, incoming)
        except Exception:
            log.exception("could not spool an incoming message")
            return replies.TRY_AGAIN
        log.info(
            "received spool=%s size=%d recipients=%d",
            item_id,
            draft.size,
            len(envelope.rcpt_tos),
        )
        self.accepted(item_id)
        return replies.QUEUED

    def _warn_unforwarded(self, ctx: Context, incoming: Incoming) -> None:
        """In mode "relay", mail from a front server without XFORWARD is checked against the
        front server's own address: SPF then fails for everybody. Said once per process."""
        if (
            self.unforwarded_warned
            or incoming.client
            or ctx.config.authentication.mode != "relay"
            or not ctx.config.authentication.from_front(incoming.peer)
        ):
            return
        self.unforwarded_warned = True
        log.warning(
            "mail from front server %s came without XFORWARD: SPF is checked against that "
            "server's own address; in Postfix set smtp_send_xforward_command = yes on the "
            "transport to the relay (docs/deploy.md)",
            incoming.peer,
        )

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
