"""Processing accepted mail: each recipient of a spooled message becomes a held letter, a
moderator's emailed decision, or a bounce of a delivered letter.

Runs in the store's writer thread of `serve`. Processing one spool item again after a crash
is harmless: letters are recorded once per item and recipient, notices are queued under
fixed names, and the item leaves `incoming/` only at the end.
"""

from __future__ import annotations

import logging

from relay import by_email, letters, lists
from relay.bounces import handle_bounce
from relay.context import Context
from relay.route import LetterRoute, OwnAddress, Refusal, route_letter
from relay.spool import Item

log = logging.getLogger("relay")


def process_incoming(ctx: Context, item: Item) -> None:
    raw = ctx.spool.original(item.id)
    mail_from = str(item.meta.get("mail_from") or "")
    for rcpt in item.meta.get("rcpt_tos", []):
        decision = route_letter(
            ctx.config, mail_from, rcpt, by_masked=ctx.store.by_masked, by_email=ctx.store.by_email
        )
        if isinstance(decision, OwnAddress):
            _own_address(ctx, item, raw, mail_from, rcpt, decision)
        elif isinstance(decision, Refusal):
            # Accepted earlier, refused now (a pairing ended in between): the original stays
            # in the spool, the log says why, nothing is delivered.
            log.warning("not held spool=%s reason=%s", item.id, decision.reason)
            ctx.store.audit("not-held", spool=item.id, reason=decision.reason)
        else:
            _letter(ctx, item, raw, mail_from, decision)
    ctx.spool.processed(item.id)


def _own_address(
    ctx: Context, item: Item, raw: bytes, mail_from: str, rcpt: str, own: OwnAddress
) -> None:
    if own.kind == "moderation":
        by_email.handle_reply(ctx, raw, mail_from, rcpt)
    elif own.kind == "bounce":
        handle_bounce(ctx, raw, own.local)
    elif own.kind == "unsubscribe":
        lists.handle_unsubscribe(ctx, own.local)
    elif own.kind == "newsletter":
        lists.handle_newsletter(ctx, item.id, raw, mail_from)
    elif own.kind == "staff":
        lists.handle_staff_list(ctx, item.id, raw, mail_from)


def _letter(ctx: Context, item: Item, raw: bytes, mail_from: str, route: LetterRoute) -> None:
    headers = letters.LetterHeaders.read(raw)
    if headers.automatic or not mail_from.strip("<> "):
        # An out-of-office reply to a delivered letter is not a letter from the pal.
        log.info(
            "ignored automatic message spool=%s from=%s to=%s",
            item.id,
            route.sender.masked,
            route.recipient.masked,
        )
        ctx.store.audit("ignored-automatic", spool=item.id, sender=route.sender.id)
        return
    letters.hold(ctx, item, raw, route, headers)
