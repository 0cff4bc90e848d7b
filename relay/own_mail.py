"""Mail to the addresses every domain and every notice of the program give out.

- `postmaster@` and `abuse@` (RFC 5321 4.5.1, RFC 2142): reports from outside about our
  mail. Each coordinator of every library gets it, attached as it arrived; the real
  addresses of the other libraries' participants are kept out by the leak guard.
- `program@` (the From of notices) and `help@`: a participant's or guardian's one-word
  command is read by `participant_mail`; anyone else gets one short help text, at most once
  a day, never an automatic message, never a sender whose From line is not
  its envelope address (a forged sender would get our mail: backscatter).
  (`bounces@`, the envelope sender of notices, is read by `bounces.handle_notice_bounce`.)

Control mail with more parts than can be parsed safely is dropped by processing before it
gets here (`process`).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import format_datetime, getaddresses, make_msgid

from relay import compose, guard, notices
from relay.addresses import normalize
from relay.context import Context
from relay.errors import UserError
from relay.mail_reading import address_digest, envelope
from relay.outbox import Notice, door
from relay.route import is_automatic
from relay.scrub.mime import decode_header_text

log = logging.getLogger("relay")


def _headers(raw: bytes) -> Message:
    return BytesHeaderParser(policy=compat32).parsebytes(raw)


def _subject(headers: Message) -> str:
    subject = decode_header_text(headers, "Subject", [])
    return subject[:200] or "(no subject)"


def forward_to_coordinators(ctx: Context, item_id: str, raw: bytes, local: str) -> int:
    """Attach a message to postmaster@ or abuse@ to a notice for every coordinator;
    returns how many were queued."""
    config = ctx.config
    address = f"{local}@{config.relay.domain}"
    subject = _subject(_headers(raw))
    everyone = ctx.store.participants()
    queued = 0
    for library in config.libraries:
        others = guard.addresses_of(p for p in everyone if p.library != library.id)
        for member in library.coordinators:
            title, text = notices.staff_words(
                ctx, member, "postmaster_forward", address=address, subject=subject
            )
            headers = [
                (
                    "From",
                    compose.address_header(
                        Address(config.relay.program_name, addr_spec=config.program_address)
                    ),
                ),
                ("To", compose.address_header(Address(member.name, addr_spec=member.email))),
                ("Subject", compose.text_header(title)),
                ("Date", format_datetime(datetime.now(UTC))),
                ("Message-ID", make_msgid(domain=config.relay.domain)),
                ("Auto-Submitted", "auto-generated"),
            ]
            message = compose.forward_bytes(headers, text, raw)
            try:
                door.queue(
                    ctx,
                    f"forward-{item_id}-{library.id}-{address_digest(ctx.secret, member.email)}",
                    message,
                    Notice(local),
                    to=member.email,
                    private=guard.for_reader(others, member.email),
                )
            except UserError as error:  # the leak guard stopped it
                log.warning("forward not sent spool=%s library=%s: %s", item_id, library.id, error)
                continue
            queued += 1
    log.info("forwarded to coordinators spool=%s address=%s copies=%d", item_id, local, queued)
    ctx.store.audit("forwarded-to-coordinators", spool=item_id, address=local, copies=queued)
    return queued


def answer_program_mail(ctx: Context, item_id: str, raw: bytes, mail_from: str) -> bool:
    """One help text to a person who wrote to program@; True when one was queued."""
    headers = _headers(raw)
    reason = _no_answer_because(ctx, headers, mail_from)
    ctx.store.audit("program-mail", spool=item_id, answered=reason is None, reason=reason or "-")
    if reason is not None:
        log.info("program mail not answered spool=%s reason=%s", item_id, reason)
        return False
    sender = normalize(mail_from)
    config = ctx.config
    languages = list(
        dict.fromkeys(["en", *(lib.language.split("-")[0] for lib in config.libraries)])
    )
    parts = [
        ctx.templates.email(
            language,
            "program_help",
            program_name=config.relay.program_name,
            help_address=f"help@{config.relay.domain}",
        )
        for language in languages
    ]
    subject = parts[0][0]
    text = "\n\n-----\n\n".join(body for _, body in parts)
    message = door.program_message(
        ctx,
        Address("", addr_spec=sender),
        subject,
        text,
        auto="auto-replied",
        in_reply_to=str(headers.get("Message-ID", "") or "").strip() or None,
    )
    day = datetime.now(UTC).date().isoformat()
    # One name a day per sender: the outbox keeps the names of sent messages for two weeks,
    # so a second message on the same day finds the first and is not answered again.
    queued = door.queue(
        ctx,
        f"program-help-{day}-{address_digest(ctx.secret, sender)}",
        message,
        Notice("program_help"),
        to=sender,
        sender="",  # the null sender: a bounce of this answer must not come back to us
    )
    log.info("program mail answered spool=%s new=%s", item_id, queued)
    return queued


def _no_answer_because(ctx: Context, headers: Message, mail_from: str) -> str | None:
    if is_automatic(headers, mail_from):
        return "automatic"
    try:
        sender = normalize(mail_from)
    except ValueError:
        return "bad-sender"
    if sender.endswith("@" + ctx.config.relay.domain):
        return "own-domain"
    written_by = [envelope(a) for _, a in getaddresses([str(headers.get("From", "") or "")]) if a]
    if written_by != [sender]:
        return "from-line-differs"
    return None
