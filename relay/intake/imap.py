"""IMAP intake: take the program's mail from a hosted mailbox, as reliably as from SMTP.

For libraries that cannot point a domain's MX at a server of their own. Runs in a worker
thread (imapclient is blocking and not thread safe: one client, one thread), so the event
loop never waits on it.

The loop: connect, catch up by UID search, then IDLE, renewed every `idle_seconds` (at most
ten minutes). A server announces new mail (`* N EXISTS`) once, in whatever reply it is
sending at the time; a notice that came during catch-up (with a SEARCH, FETCH or MOVE reply,
or in the same packet as IDLE's "+ idling") means another catch-up at once, never a wait
for the next renewal. Every call has a socket timeout, so a dead connection raises instead of
looking like a quiet mailbox; on any error the worker reconnects with exponential backoff
and jitter.

Each message takes the SMTP path: the envelope recipient comes from `Delivered-To` /
`X-Original-To` (a mailbox has no envelope), the sender from `From`, trusted only as far as
the provider's `Authentication-Results` allows: the mailbox provider is the front, so its
topmost header with a trusted authserv-id is the message's verdict (relay/authentication.py),
kept on the spool marker. A letter its verdict does not vouch for is refused under
`patron_policy = "refuse"` and held with a flag for staff otherwise. A refused message moves to
`failed_folder` and its (authenticated) sender gets the explanation an SMTP sender would
have got. An accepted one is spooled durably first and only then moved to
`processed_folder` (MOVE, or COPY + \\Deleted + UID EXPUNGE; never a plain EXPUNGE).

Nothing is processed twice: the spool id of a message is derived from its bytes, and its
Message-ID is remembered, so a crash between spooling and MOVE, or a UIDVALIDITY change that
renumbers the folder, finds the message already spooled and only moves it. The last
processed UID per folder and its UIDVALIDITY are kept in the store to make catch-up cheap.
"""

from __future__ import annotations

import hashlib
import logging
import random
import socket
import ssl
import threading
import time
from collections.abc import Callable
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from typing import Any

from imapclient import IMAPClient
from imapclient.util import to_unicode

from relay import authentication, notices, replies
from relay.addresses import split
from relay.authresults import Verdict
from relay.config import ImapSettings
from relay.context import Context
from relay.faults import crash_point, pause_point
from relay.intake.oauth import access_token
from relay.route import LetterRoute, Refusal, Route, is_automatic, route_letter
from relay.spool import FoundRoute, Incoming
from relay.store import now_iso
from relay.store.records import ImapState

log = logging.getLogger("relay")

UNVERIFIED = Refusal(replies.SENDER_UNVERIFIED, "sender-unverified")


class Reconnect(Exception):
    """The settings changed: start a new connection with the new ones."""


def envelope_of(headers: EmailMessage, settings: ImapSettings, domain: str) -> tuple[str, str]:
    """(sender, recipient) of a message found in a mailbox; "" where there is none."""
    recipient = ""
    for name in settings.recipient_headers:
        for value in headers.get_all(name, []):
            candidate = str(value).strip().strip("<>").lower()
            if split(candidate)[1] == domain:
                recipient = candidate
                break
        if recipient:
            break
    try:
        addresses = list(headers["From"].addresses) if headers["From"] else []
    except (AttributeError, ValueError, IndexError):
        addresses = []
    sender = str(addresses[0].addr_spec).lower() if len(addresses) == 1 else ""
    return sender, recipient


def message_key(raw: bytes) -> str:
    return "imap-" + hashlib.sha256(raw).hexdigest()[:32]


class ImapIntake:
    def __init__(
        self,
        context: Callable[[], Context],
        accepted: Callable[[str], None],
        stop: threading.Event,
    ) -> None:
        self.context = context
        self.accepted = accepted
        self.stop = stop

    # --- the connection loop -------------------------------------------------------------

    def run(self) -> None:
        delay = 1.0
        while not self.stop.is_set():
            settings = self.context().config.imap
            if settings is None:
                return
            try:
                with self._connect(settings) as client:
                    log.info("imap connected host=%s folder=%s", settings.host, settings.folder)
                    delay = 1.0
                    self._session(client, settings)
            except Reconnect:
                continue
            except Exception as error:
                if self.stop.is_set():
                    return
                pause = delay * random.uniform(0.5, 1.0)  # noqa: S311 -- jitter
                log.warning(
                    "imap connection lost (%s: %s); reconnecting in %.1fs",
                    type(error).__name__,
                    error,
                    pause,
                )
                self.stop.wait(pause)
                delay = min(settings.retry_max_seconds, delay * 2)

    def _connect(self, settings: ImapSettings) -> IMAPClient:
        context = ssl.create_default_context()
        client = IMAPClient(
            settings.host,
            port=settings.port,
            ssl=settings.tls == "implicit",
            ssl_context=context if settings.tls == "implicit" else None,
            timeout=settings.timeout_seconds,
        )
        try:
            if settings.tls == "starttls":
                client.starttls(context)
            if settings.oauth2 is not None:
                client.oauth2_login(settings.username, access_token(settings.oauth2))
            else:
                secret = settings.password_file
                client.login(settings.username, secret.read_text().strip() if secret else "")
        except Exception:
            client.shutdown()
            raise
        return client

    def _session(self, client: IMAPClient, settings: ImapSettings) -> None:
        for folder in (settings.processed_folder, settings.failed_folder):
            if not client.folder_exists(folder):
                client.create_folder(folder)
        status = client.select_folder(settings.folder)
        validity = int(status[b"UIDVALIDITY"])
        while not self.stop.is_set():
            _take_new_mail_notices(client)  # the catch-up's search sees what they announced
            self._catch_up(client, settings, validity)
            if _take_new_mail_notices(client):
                continue  # announced during catch-up: IDLE will not announce it again
            self._idle(client, settings)

    # --- catching up ---------------------------------------------------------------------

    def _mailbox(self, settings: ImapSettings) -> str:
        return f"{settings.username}@{settings.host}/{settings.folder}"

    def _catch_up(self, client: IMAPClient, settings: ImapSettings, validity: int) -> None:
        ctx = self.context()
        state = ctx.store.imap_state(self._mailbox(settings))
        pause_point("imap-before-search")
        if state is not None and state.uidvalidity == validity:
            uids = [
                u for u in client.search(["UID", f"{state.last_uid + 1}:*"]) if u > state.last_uid
            ]
        else:
            if state is not None:
                log.warning(
                    "imap UIDVALIDITY changed folder=%s; checking every message by Message-ID",
                    settings.folder,
                )
            uids = client.search(["ALL"])
        pause_point("imap-after-search")
        for uid in sorted(uids):
            if self.stop.is_set():
                return
            fetched = client.fetch([uid], ["BODY.PEEK[]"]).get(uid)
            if fetched is None:
                continue  # expunged meanwhile by someone else
            raw = bytes(fetched[b"BODY[]"])
            self._take(client, settings, uid, raw)
            ctx.store.set_imap_state(self._mailbox(settings), ImapState(validity, uid))

    def _take(self, client: IMAPClient, settings: ImapSettings, uid: int, raw: bytes) -> None:
        ctx = self.context()
        headers = BytesHeaderParser(policy=default_policy).parsebytes(raw)
        sender, recipient = envelope_of(headers, settings, ctx.config.relay.domain)
        # The mailbox provider is the front: the topmost header with a trusted id counts.
        verdict = authentication.verdict(ctx.config, raw, Incoming(sender, (), "", via="imap"))
        decision = self._route(ctx, verdict, sender, recipient)
        if isinstance(decision, Refusal):
            self._refuse(ctx, client, settings, uid, headers, sender, decision)
            return
        found = (
            (FoundRoute(recipient, decision.sender.id, decision.recipient.id),)
            if isinstance(decision, LetterRoute)
            else ()
        )
        item_id = self._spool(ctx, raw, headers, sender, recipient, found, verdict)
        crash_point("imap-after-spool")
        self._move(client, uid, settings.processed_folder)
        log.info("imap took uid=%d spool=%s", uid, item_id)

    def _route(self, ctx: Context, verdict: Verdict, sender: str, recipient: str) -> Route:
        if not recipient:
            return Refusal(replies.UNKNOWN_ADDRESS, "no-recipient-header")
        decision = route_letter(
            ctx.config,
            sender,
            recipient,
            by_masked=ctx.store.by_masked,
            by_email=ctx.store.by_email,
        )
        if isinstance(decision, LetterRoute) and authentication.refusal(
            ctx.config, verdict, [decision.sender.email]
        ):
            return UNVERIFIED
        return decision

    def _spool(
        self,
        ctx: Context,
        raw: bytes,
        headers: EmailMessage,
        sender: str,
        recipient: str,
        routes: tuple[FoundRoute, ...],
        verdict: Verdict,
    ) -> str:
        """Spool once: by content, and by Message-ID when the bytes differ (a re-upload)."""
        message_id = str(headers.get("Message-ID", "") or "").strip()
        known = ctx.store.spooled_imap_message(message_id) if message_id else None
        if known is not None and ctx.spool.has(known):
            log.info("imap message already spooled spool=%s", known)
            return known
        item_id = message_key(raw)
        incoming = Incoming(
            mail_from=sender,
            rcpt_tos=(recipient,),
            received_at=now_iso(),
            via="imap",
            routes=routes,
            verdict=verdict,
        )
        if ctx.spool.accept(raw, incoming, item_id=item_id):
            self.accepted(item_id)
        else:
            log.info("imap message already spooled spool=%s", item_id)
        if message_id:
            ctx.store.record_spooled_imap_message(message_id, item_id)
        return item_id

    def _refuse(
        self,
        ctx: Context,
        client: IMAPClient,
        settings: ImapSettings,
        uid: int,
        headers: EmailMessage,
        sender: str,
        refusal: Refusal,
    ) -> None:
        self._move(client, uid, settings.failed_folder)
        ctx.store.audit("refused", via="imap", reason=refusal.reason)
        log.info("imap refused uid=%d reason=%s", uid, refusal.reason)
        if refusal is UNVERIFIED or not sender or is_automatic(headers, sender):
            return  # never answer a forged or automatic sender (no backscatter, no loops)
        notices.tell_refused_sender(
            ctx, sender, str(headers.get("Subject", "") or ""), refusal.reply
        )

    def _move(self, client: IMAPClient, uid: int, folder: str) -> None:
        if client.has_capability("MOVE"):
            client.move([uid], folder)
            return
        client.copy([uid], folder)
        client.add_flags([uid], [b"\\Deleted"])
        if client.has_capability("UIDPLUS"):
            client.uid_expunge([uid])
        # Without UIDPLUS the copy stays flagged \\Deleted: a plain EXPUNGE could remove
        # messages someone else flagged, so the mailbox owner's client expunges it.

    # --- waiting -------------------------------------------------------------------------

    def _idle(self, client: IMAPClient, settings: ImapSettings) -> None:
        """Wait in IDLE until there is news or it is time to renew; a lost connection raises."""
        client.idle()
        started = time.monotonic()
        while not self.stop.is_set() and not _read_ahead(client):
            responses: list[Any] = client.idle_check(timeout=1)
            if any(_is_bye(r) for r in responses) or _closed(client):
                # imapclient reads EOF as "no news": a closed connection must not look like a
                # quiet mailbox.
                raise ConnectionResetError("the IMAP server closed the connection")
            if any(_is_new_mail(r) for r in responses):
                break
            if time.monotonic() - started >= settings.idle_seconds:
                break  # renew: servers drop IDLE after 30 minutes, NATs sooner
            if self.context().config.imap != settings:
                raise Reconnect
        if not self.stop.is_set():
            client.idle_done()  # a silently dead connection raises here (socket timeout)


def _take_new_mail_notices(client: IMAPClient) -> bool:
    """Forget the new-mail notices that came with replies to other commands; True if any did.

    imaplib files every untagged line it reads while waiting for a tagged reply under
    `untagged_responses` (`_get_response` -> `_append_untagged`); imapclient's commands take
    out only their own (SEARCH, FETCH), and `idle_check` never looks there.
    """
    pending = client._imap.untagged_responses
    taken = [pending.pop(name, []) for name in ("EXISTS", "RECENT")]
    return any(taken)


def _read_ahead(client: IMAPClient) -> bool:
    """True when imaplib holds server lines in its read buffer that nobody has parsed yet.

    imaplib reads the socket through a buffered file, and `idle()` parses only the
    "+ idling" line; a server that announces mail which arrived just before IDLE in the
    same packet leaves that notice in the buffer, where `idle_check` (which polls the
    socket) never looks. The peek does not block: with an empty buffer it moves only what
    the socket already has into the buffer, so the caller must treat that as news as well.
    """
    sock = client.socket()
    previous = sock.gettimeout()
    sock.setblocking(False)
    try:
        return bool(client._imap.file.peek(1))
    except (BlockingIOError, ssl.SSLWantReadError):
        return False
    finally:
        sock.settimeout(previous)


def _word(response: Any, index: int) -> str:
    """One word of an untagged IDLE response such as (3, b'EXISTS') or (b'BYE', b'...')."""
    if not isinstance(response, tuple) or len(response) <= index:
        return ""
    value = response[index]
    return str(to_unicode(value)).upper() if isinstance(value, bytes | str) else ""


def _is_new_mail(response: Any) -> bool:
    return _word(response, 1) in ("EXISTS", "RECENT")


def _is_bye(response: Any) -> bool:
    return _word(response, 0) == "BYE"


def _closed(client: IMAPClient) -> bool:
    """True when the server has closed its end (a peek reads end-of-file)."""
    sock = client.socket()
    previous = sock.gettimeout()
    sock.setblocking(False)
    try:
        return bool(sock.recv(1, socket.MSG_PEEK) == b"")
    except (BlockingIOError, ssl.SSLWantReadError):
        return False
    except OSError:
        return True
    finally:
        sock.settimeout(previous)
