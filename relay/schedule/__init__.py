"""Scheduled work: moderator reminders, monthly prompts, newsletter digests, forgetting
the names of outbox entries delivered long ago (kept so a replay never sends twice), and
the daily retention purge."""

from __future__ import annotations

import logging
from datetime import datetime

from relay import notices
from relay.context import Context
from relay.schedule import digests, prompts, retention

log = logging.getLogger("relay")

SENT_NAMES_KEPT_DAYS = 14  # far longer than any crash, restart or retry can replay


def forget_sent(ctx: Context, now: datetime) -> None:
    ctx.spool.forget_sent(now.timestamp() - SENT_NAMES_KEPT_DAYS * 86400)


def run_scheduled(ctx: Context, now: datetime) -> None:
    """Everything due at `now`; each part on its own, so one failing stops no other."""
    for name, step in (
        ("reminders", notices.send_reminders),
        ("prompts", prompts.send_due),
        ("digests", digests.send_due),
        ("forgetting sent names", forget_sent),
        ("retention purge", retention.purge_due),
    ):
        try:
            step(ctx, now)
        except Exception:
            log.exception("scheduled %s failed; trying again at the next run", name)
