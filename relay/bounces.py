"""Bounces of delivered letters, found by their VERP address `bounce+<letter>-<hmac>@`.

The address is signed, so a forged bounce cannot mark a letter. A bounce after delivery is
recorded in the letter's history and the audit log, and the moderators of the writer's
library are told, as for a letter the smarthost refused.
"""

from __future__ import annotations

import logging

from relay import compose
from relay.context import Context
from relay.letters import NotNow, bounced

log = logging.getLogger("relay")


def handle_bounce(ctx: Context, raw: bytes, local: str) -> None:
    number, _, _signature = local.removeprefix("bounce+").partition("-")
    if not number.isdigit():
        ctx.store.audit("bounce-ignored", reason="bad-signature")
        return
    letter_id = int(number)
    expected = compose.bounce_address(ctx.secret, letter_id, ctx.config.relay.domain)
    if expected.partition("@")[0] != local:
        log.info("bounce ignored reason=bad-signature")
        ctx.store.audit("bounce-ignored", reason="bad-signature")
        return
    if ctx.store.letter(letter_id) is None:
        return
    try:
        bounced(ctx, letter_id, "returned by the pal's mail server")
    except NotNow as error:  # a second bounce, or one for a letter never sent
        log.info("bounce ignored letter=%d status=%s", letter_id, error.letter.status)
        ctx.store.audit("bounce-ignored", letter=letter_id, reason=error.letter.status)
