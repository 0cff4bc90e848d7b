"""Decisions by email: a moderator replies to a held-letter notice with one word.

A reply counts only when every check passes: the token in the address exists, is unused and
unexpired, and belongs to the letter the reply answers; the reply's From is a listed
moderator of the letter's library and the person the token was sent to; and, unless
`[authentication] required = false`, the message's verdict (relay/authentication.py: the
front server's or the relay's own SPF, DKIM and DMARC results) vouches for that address.
Every decision and every refused attempt goes to the audit log. The moderator
gets a short confirmation, or an explanation when a reply was not accepted; a sender who is
not listed staff gets nothing back (no backscatter to forged addresses), and automatic mail
(out-of-office replies) is never answered.
"""

from __future__ import annotations

import logging
import time
from email.message import EmailMessage
from typing import Any

from relay import letters, notices
from relay.authresults import Verdict
from relay.config import Staff
from relay.context import Context
from relay.decisions import (
    APPROVE,
    HOLD,
    REDACT,
    REJECT,
    Command,
    first_instruction,
    parse_command,
)
from relay.errors import UserError
from relay.mail_reading import body_text, from_address, message_id
from relay.route import is_automatic
from relay.scrub import parse
from relay.store import now_iso

log = logging.getLogger("relay")


class Refused(Exception):
    """A reply that does not count; `reason` is a short code the templates explain."""

    def __init__(self, reason: str, **details: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.details = details


def handle_reply(ctx: Context, raw: bytes, envelope_from: str, rcpt: str, verdict: Verdict) -> None:
    message = parse(raw)
    token = rcpt.partition("@")[0].lower().removeprefix(notices.REPLY_PREFIX)
    sender = from_address(message)
    if is_automatic(message, envelope_from):
        ctx.store.audit("reply-ignored", reason="automatic", token=token[:8])
        log.info("moderation reply ignored reason=automatic")
        return
    member = _listed_staff(ctx, sender)
    try:
        letter_id = _check(ctx, message, token, sender, verdict)
        command = _command(ctx, message)
        _apply(ctx, letter_id, sender, command)
    except Refused as refusal:
        ctx.store.audit(
            "reply-refused",
            reason=refusal.reason,
            sender=sender or "-",
            token=token[:8],
            **refusal.details,
        )
        log.info(
            "moderation reply refused reason=%s %s",
            refusal.reason,
            " ".join(f"{k}={v}" for k, v in refusal.details.items()),
        )
        if member is not None:
            notices.tell_staff(
                ctx,
                member,
                "reply_refused",
                in_reply_to=message_id(message),
                reason=refusal.reason,
                **refusal.details,
            )
        return
    if command.action != HOLD:
        ctx.store.use_grant(token, now_iso())
    if member is not None:
        notices.tell_staff(
            ctx,
            member,
            "reply_done",
            in_reply_to=message_id(message),
            action=command.action,
            letter_id=letter_id,
            reason=command.reason,
        )


def _listed_staff(ctx: Context, address: str) -> Staff | None:
    hits = ctx.config.staff_libraries(address) if address else ()
    return hits[0][1] if hits else None


def _check(ctx: Context, message: EmailMessage, token: str, sender: str, verdict: Verdict) -> int:
    """The letter a reply may decide, or `Refused` saying why not."""
    grant = ctx.store.grant(token)
    if grant is None:
        raise Refused("unknown-token")
    letter_id = grant.letter
    if grant.used:
        raise Refused("used-token", letter=letter_id)
    if grant.expires < time.time():
        raise Refused("expired-token", letter=letter_id)
    answered = [notices.letter_of_notice_id(ctx, str(v)) for v in _thread_ids(message)]
    if any(other is not None and other != letter_id for other in answered):
        raise Refused("token-for-another-letter", letter=letter_id)
    library = ctx.config.library(grant.library)
    member = library.staff_member(sender) if library else None
    if member is None or not member.is_moderator:
        raise Refused("not-a-moderator", letter=letter_id)
    if member.email != grant.moderator:
        raise Refused("token-of-another-moderator", letter=letter_id)
    if ctx.config.authentication.required and not verdict.vouches_for(sender):
        raise Refused("unauthenticated", letter=letter_id)
    return letter_id


def _thread_ids(message: EmailMessage) -> list[str]:
    ids = []
    for name in ("In-Reply-To", "References"):
        value = message.get(name)
        if value:
            ids += str(value).split()
    return ids


def _command(ctx: Context, message: EmailMessage) -> Command:
    line = first_instruction(body_text(message))
    command = parse_command(line, ctx.templates.decision_words()) if line else None
    if command is None:
        raise Refused("no-instruction")
    if command.action == REJECT and not command.reason:
        raise Refused("reject-needs-reason")
    return command


def _apply(ctx: Context, letter_id: int, sender: str, command: Command) -> None:
    try:
        if command.action in (APPROVE, REDACT):
            letters.approve(ctx, letter_id, sender, via="email", redact=command.action == REDACT)
        elif command.action == REJECT:
            letters.reject(ctx, letter_id, sender, command.reason, via="email")
        else:
            letters.keep_holding(ctx, letter_id, sender, via="email")
    except letters.PalAway as away:
        raise Refused(
            "pal-away",
            letter=letter_id,
            who=away.away.name,
            status=away.why,
            role=away.role,
        ) from None
    except UserError as error:
        raise Refused("not-possible", letter=letter_id, problem=str(error)) from None
