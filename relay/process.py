"""Processing accepted mail: each recipient of a spooled message becomes a held letter, a
moderator's emailed decision, a guardian's answer to a consent request, or a bounce of a
delivered letter.

Runs in the store's writer thread of `serve`. Processing one spool item again after a crash
is harmless: letters are recorded once per item and recipient, notices are queued under
fixed names, and the item leaves `incoming/` only at the end.
"""

from __future__ import annotations

import logging

from relay import by_email, guardians, letters, lists, own_mail, participant_mail
from relay.bounces import handle_bounce, handle_notice_bounce
from relay.context import Context
from relay.route import (
    LetterRoute,
    OwnAddress,
    Refusal,
    Route,
    null_sender,
    recheck,
    route_letter,
)
from relay.scrub.mime import too_many_parts
from relay.spool import Incoming

log = logging.getLogger("relay")


def process_incoming(ctx: Context, item_id: str, incoming: Incoming) -> None:
    raw = ctx.spool.original(item_id)
    keep = False  # the original is kept only while something refers to it
    commands_read = False  # a message to both help@ and program@ is one command
    for rcpt in incoming.rcpt_tos:
        decision = _route(ctx, incoming, rcpt)
        if isinstance(decision, OwnAddress) and decision.kind in COMMAND_KINDS:
            if commands_read:
                continue
            commands_read = True
        if isinstance(decision, OwnAddress):
            _own_address(ctx, item_id, raw, incoming, rcpt, decision)
            keep = keep or decision.kind in KEPT_OWN_KINDS
        elif isinstance(decision, Refusal):
            # Accepted earlier, refused now (a pairing ended in between): the original stays
            # in the spool, the log says why, nothing is delivered.
            log.warning("not held spool=%s reason=%s", item_id, decision.reason)
            ctx.store.audit("not-held", spool=item_id, reason=decision.reason)
            keep = True
        else:
            _letter(ctx, item_id, incoming, raw, decision)
            keep = True
    ctx.spool.processed(item_id, keep=keep)


def _route(ctx: Context, incoming: Incoming, rcpt: str) -> Route:
    """The route intake found at RCPT, checked against the records as they are now; routed
    anew when intake kept none (IMAP, or an older marker)."""
    found = incoming.route_for(rcpt)
    if found is not None:
        return recheck(
            ctx.config, ctx.store.participant(found.sender), ctx.store.participant(found.recipient)
        )
    return route_letter(
        ctx.config,
        incoming.mail_from,
        rcpt,
        by_masked=ctx.store.by_masked,
        by_email=ctx.store.by_email,
    )


# Own addresses whose original is read again later (a newsletter post waits for its digest);
# the originals of other control mail (replies, bounces, reports) are removed once handled.
KEPT_OWN_KINDS = ("newsletter",)

# Own addresses where participants write commands (relay/participant_mail.py).
COMMAND_KINDS = ("program", "help")

# Own addresses whose mail is parsed whole (the others read no more than the header).
_PARSED = (
    "moderation",
    "consent",
    "newsletter",
    "staff",
    "bounce",
    "bounces",
    "program",
    "help",
    "confirm",
)


def _own_address(
    ctx: Context, item_id: str, raw: bytes, incoming: Incoming, rcpt: str, own: OwnAddress
) -> None:
    mail_from, verdict = incoming.mail_from, incoming.verdict
    if own.kind in _PARSED and too_many_parts(raw):
        # Too deep or too many parts to parse safely: no reply, list post or report is.
        log.warning(
            "control mail dropped spool=%s address=%s reason=too-complex", item_id, own.kind
        )
        ctx.store.audit("control-dropped", spool=item_id, address=own.kind, reason="too-complex")
        return
    if own.kind == "moderation":
        by_email.handle_reply(ctx, raw, mail_from, rcpt, verdict)
    elif own.kind == "consent":
        guardians.handle_reply(ctx, raw, mail_from, rcpt, verdict)
    elif own.kind == "bounce":
        handle_bounce(ctx, raw, own.local)
    elif own.kind == "bounces":
        handle_notice_bounce(ctx, raw)
    elif own.kind == "unsubscribe":
        lists.handle_unsubscribe(ctx, own.local)
    elif own.kind == "newsletter":
        lists.handle_newsletter(ctx, item_id, raw, mail_from, verdict)
    elif own.kind == "staff":
        lists.handle_staff_list(ctx, item_id, raw, mail_from, verdict)
    elif own.kind in ("postmaster", "abuse"):
        own_mail.forward_to_coordinators(ctx, item_id, raw, own.kind)
    elif own.kind in ("program", "help"):
        # A participant's or guardian's command; anyone else gets the once-a-day help text.
        if not participant_mail.handle_command_mail(ctx, item_id, raw, incoming):
            own_mail.answer_program_mail(ctx, item_id, raw, mail_from)
    elif own.kind == "confirm":
        participant_mail.handle_confirmation(ctx, item_id, raw, incoming, own.local)


def _letter(ctx: Context, item_id: str, incoming: Incoming, raw: bytes, route: LetterRoute) -> None:
    headers = letters.LetterHeaders.read(raw)
    if headers.automatic or null_sender(incoming.mail_from):
        # An out-of-office reply to a delivered letter is not a letter from the pal.
        log.info(
            "ignored automatic message spool=%s from=%s to=%s",
            item_id,
            route.sender.masked,
            route.recipient.masked,
        )
        ctx.store.audit("ignored-automatic", spool=item_id, sender=route.sender.id)
        return
    letters.hold(ctx, item_id, incoming, raw, route, headers)
