"""Bounces of delivered letters, found by their VERP address (`relay.verp`).

The address is signed and dated, so a forged bounce cannot mark a letter and an old
address stops working; intake refuses such an address at RCPT, and it is checked again here
(mail taken over IMAP was not routed at RCPT). A bounce after delivery is recorded in the
letter's history and the audit log, and the moderators of the writer's library are told, as
for a letter the smarthost refused.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from relay import verp
from relay.context import Context
from relay.letters import NotNow, bounced

log = logging.getLogger("relay")


def handle_bounce(ctx: Context, raw: bytes, local: str) -> None:
    letter_id = verp.letter_of_address(ctx, local, datetime.now(UTC))
    if letter_id is None:
        log.info("bounce ignored reason=bad-or-expired-address")
        ctx.store.audit("bounce-ignored", reason="bad-or-expired-address")
        return
    if ctx.store.letter(letter_id) is None:
        return
    try:
        bounced(ctx, letter_id, "returned by the pal's mail server")
    except NotNow as error:  # a second bounce, or one for a letter never sent
        log.info("bounce ignored letter=%d status=%s", letter_id, error.letter.status)
        ctx.store.audit("bounce-ignored", letter=letter_id, reason=error.letter.status)
