"""Scheduled work: moderator reminders, monthly prompts and newsletter digests."""

from __future__ import annotations

import logging
from datetime import datetime

from relay import notices
from relay.context import Context
from relay.schedule import digests, prompts

log = logging.getLogger("relay")


def run_scheduled(ctx: Context, now: datetime) -> None:
    """Everything due at `now`; each part on its own, so one failing stops no other."""
    for name, step in (
        ("reminders", notices.send_reminders),
        ("prompts", prompts.send_due),
        ("digests", digests.send_due),
    ):
        try:
            step(ctx, now)
        except Exception:
            log.exception("scheduled %s failed; trying again at the next run", name)
