"""What comes back to our envelope senders: bounces of letters and of notices.

A delivered letter's envelope sender is its signed, dated VERP address (`relay.verp`);
intake refuses a forged or expired one at RCPT, and it is checked again here (mail taken
over IMAP was not routed at RCPT). What came back is read by `relay.dsn`:

- a permanent failure: the letter goes to `bounced` through its lifecycle (its writer gets a
  kind note, the writer's moderators the details, without the pal's real address); the pal's
  count of returned letters goes up, their own library's moderators are told, and after
  `[delivery] pause_after_bounces` in a row letters to the pal are paused and the writer's
  library is told that too;
- a delay (`Action: delayed`, a 4.x.x status): logged and audited, nobody is told;
- a report of delivery: the pal's count starts over;
- an automatic reply (out of office, vacation) or anything unrecognised: logged and dropped.

Notices go out from `bounces@<domain>`; a permanent failure of one is logged and audited
with the masked address or the staff role it was for. Nothing here ever answers a message:
an answer to a bounce is how mail loops start.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from relay import dsn, guard, notices, participants, verp
from relay.context import Context
from relay.letters import NotNow, bounced
from relay.store.records import Letter, Participant

log = logging.getLogger("relay")


def handle_bounce(ctx: Context, raw: bytes, local: str) -> None:
    letter_id = verp.letter_of_address(ctx, local, datetime.now(UTC))
    if letter_id is None:
        log.info("bounce ignored reason=bad-or-expired-address")
        ctx.store.audit("bounce-ignored", reason="bad-or-expired-address")
        return
    letter = ctx.store.letter(letter_id)
    if letter is None or not letter.sender:  # unknown, or its writer or pal was erased
        return
    returned = dsn.read(raw)
    if returned.outcome == "failed":
        _failed(ctx, letter, returned)
    elif returned.outcome == "delayed":
        log.info("delivery delayed letter=%d status=%s", letter.id, returned.status)
        ctx.store.audit("delivery-delayed", letter=letter.id, status=returned.status)
    elif returned.outcome == "delivered":
        log.info("delivery reported letter=%d", letter.id)
        ctx.store.audit("delivery-reported", letter=letter.id)
        pal = ctx.store.participant(letter.recipient)
        if pal is not None:
            participants.mail_works(ctx, pal)
    else:
        reason = "auto-reply" if returned.outcome == "auto-reply" else "not-a-bounce"
        log.info("bounce ignored letter=%d reason=%s", letter.id, reason)
        ctx.store.audit("bounce-ignored", letter=letter.id, reason=reason)


def _failed(ctx: Context, letter: Letter, returned: dsn.Returned) -> None:
    # The reason is read by the writer's moderators: a status code, never the server's
    # text, which names the pal's real address.
    reason = f"returned by the pal's mail server ({returned.status})"
    try:
        bounced(ctx, letter.id, reason)
    except NotNow as error:  # a second bounce, or one for a letter never sent
        log.info("bounce ignored letter=%d status=%s", letter.id, error.letter.status)
        ctx.store.audit("bounce-ignored", letter=letter.id, reason=error.letter.status)
        return
    pal = ctx.store.participant(letter.recipient)
    if pal is None:
        return
    pal, paused = participants.mail_returned(ctx, pal)
    limit = ctx.config.delivery.pause_after_bounces
    log.warning(
        "mail returned participant=%s masked=%s count=%d letter=%d",
        pal.id,
        pal.masked,
        pal.bounces,
        letter.id,
    )
    ctx.store.audit(
        "mail-returned",
        participant=pal.id,
        letter=letter.id,
        count=pal.bounces,
        status=returned.status,
    )
    notices.tell_moderators(
        ctx,
        pal.library,
        "pal_mail_returned",
        f"mail-returned-{letter.id}",
        letter=letter.id,
        pal_name=pal.name,
        pal_masked=pal.masked,
        pal_email=pal.email,
        status=returned.status,
        count=pal.bounces,
        limit=limit,
        paused=paused,
    )
    if paused:
        _tell_writer_library(ctx, letter, pal)


def _tell_writer_library(ctx: Context, letter: Letter, pal: Participant) -> None:
    library = ctx.config.library(pal.library)
    notices.tell_moderators(
        ctx,
        letter.sender_library,
        "pal_paused",
        f"pal-paused-{letter.id}",
        private=guard.addresses_of([pal]),
        letter=letter.id,
        pal_name=pal.name,
        pal_masked=pal.masked,
        pal_library=library.name if library else pal.library,
        count=pal.bounces,
    )


# --- bounces of notices ---------------------------------------------------------------------


def handle_notice_bounce(ctx: Context, raw: bytes) -> None:
    """Mail to `bounces@`: a notice that could not be delivered, logged and audited."""
    returned = dsn.read(raw)
    if returned.outcome != "failed":
        log.info("notice bounce ignored reason=%s", returned.outcome)
        ctx.store.audit("notice-bounce-ignored", reason=returned.outcome)
        return
    for address in returned.recipients or ("",):
        reader = _reader(ctx, address)
        log.warning("notice not delivered to=%s status=%s", reader, returned.status)
        ctx.store.audit("notice-not-delivered", to=reader, status=returned.status)


def _reader(ctx: Context, address: str) -> str:
    """Who a real address belongs to, in words that may be logged: a staff role, a masked
    address, or "unknown"."""
    if not address:
        return "unknown"
    staff = ctx.config.staff_libraries(address)
    if staff:
        library, member = staff[0]
        role = "moderator" if member.is_moderator else "staff"
        return f"{role}:{library.id}"
    try:
        enrolled = ctx.store.by_email(address)
    except ValueError:
        enrolled = []
    if enrolled:
        return enrolled[0].masked
    return "unknown"
