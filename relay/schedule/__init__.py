"""Scheduled work: moderator reminders, monthly prompts, newsletter digests, forgetting
the names of outbox entries delivered long ago (kept so a replay never sends twice), and
the daily retention purge (`run_purge`, run beside the store's writer, not in it)."""

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
    ):
        try:
            step(ctx, now)
        except Exception:
            log.exception("scheduled %s failed; trying again at the next run", name)


def run_purge(ctx: Context, now: datetime) -> None:
    """The daily retention purge. It reads the whole archive and every lookup shard, seconds
    to minutes in a large program, without the store's lock, and takes the lock only for
    each change, as a command run beside `serve` does: so `serve` runs it in a thread of
    its own, and letters are held and approved meanwhile."""
    try:
        retention.purge_due(ctx, now)
    except Exception:
        log.exception("scheduled retention purge failed; trying again at the next run")
