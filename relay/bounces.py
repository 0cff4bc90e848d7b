"""Bounces of delivered letters, found by their VERP address `bounce+<letter>-<hmac>@`.

The address is signed, so a forged bounce cannot mark a letter. A bounce after delivery is
recorded in the letter's history and the audit log, and the moderators of the writer's
library are told, as for a letter the smarthost refused.
"""

from __future__ import annotations

import logging

from relay import compose
from relay.context import Context
from relay.outcomes import tell_about_failure
from relay.store import now_iso
from relay.store.records import Letter

log = logging.getLogger("relay")


def handle_bounce(ctx: Context, raw: bytes, local: str) -> None:
    number, _, _signature = local.removeprefix("bounce+").partition("-")
    letter_id = int(number)
    expected = compose.bounce_address(ctx.secret, letter_id, ctx.config.relay.domain)
    if expected.partition("@")[0] != local:
        log.info("bounce ignored reason=bad-signature")
        ctx.store.audit("bounce-ignored", reason="bad-signature")
        return
    if ctx.store.letter(letter_id) is None:
        return
    stamp = now_iso()

    def bounced(letter: Letter) -> Letter:
        event = {"at": stamp, "event": "bounced"}
        return letter.but(
            last_error="returned by the pal's mail server", history=(*letter.history, event)
        )

    letter = ctx.store.update_letter(letter_id, bounced)
    ctx.store.audit("bounced", letter=letter_id)
    log.warning("bounced letter=%d to=%s", letter_id, letter.recipient_masked)
    tell_about_failure(ctx, letter, "returned by the pal's mail server")
