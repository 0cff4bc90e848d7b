"""Sign-in links: made for listed staff, emailed through the outbox, good once for 15 minutes.

A link carries 256 random bits; the store keeps only their SHA-256, so a copy of the store
lets nobody sign in. Using a link marks it used under the store's write lock, so two clicks
racing each other sign in once. Runs in the blocking runner: every function here touches
the store or the spool.
"""

from __future__ import annotations

import secrets
import time
from collections import deque
from dataclasses import dataclass
from email.headerregistry import Address

from relay import notices
from relay.config import Library, Staff
from relay.context import Context
from relay.store.records import SignInLink

LINK_MINUTES = 15


@dataclass(frozen=True)
class LinkUse:
    """What happened when a link was presented: who it signs in, or why not."""

    email: str = ""
    library: str = ""
    refused: str = ""  # "unknown", "used" or "expired"


def staff_member(ctx: Context, email: str) -> tuple[Library, Staff] | None:
    """The first library listing this address as staff (a person may serve two)."""
    found = ctx.config.staff_libraries(email)
    return found[0] if found else None


def send_link(ctx: Context, email: str, base_url: str) -> bool:
    """Email a sign-in link if the address is listed staff; False (and nothing sent) if not."""
    member = staff_member(ctx, email)
    if member is None:
        return False
    library, staff = member
    token = secrets.token_urlsafe(32)
    expires = time.time() + LINK_MINUTES * 60
    ctx.store.record_sign_in_link(token, SignInLink(staff.email, library.id, expires))
    subject, text = ctx.templates.email(
        staff.language,
        "magic_link",
        staff_name=staff.name,
        link=f"{base_url}/signin/{token}",
        minutes=LINK_MINUTES,
        program_name=ctx.config.relay.program_name,
    )
    to = Address(staff.name, addr_spec=staff.email)
    notices.send_notice(ctx, None, to, subject, text, kind="sign-in-link")
    ctx.store.audit("sign-in-link-sent", by=staff.email, library=library.id)
    return True


def _judge(link: SignInLink | None, now: float) -> LinkUse:
    if link is None:
        return LinkUse(refused="unknown")
    if link.used:
        return LinkUse(refused="used")
    if not link.usable(now):
        return LinkUse(refused="expired")
    return LinkUse(email=link.email, library=link.library)


def check_link(ctx: Context, token: str) -> LinkUse:
    """Whether a link would sign in now, without using it up (for the confirmation page)."""
    return _judge(ctx.store.sign_in_link(token), time.time())


def use_link(ctx: Context, token: str) -> LinkUse:
    """Use a link once: the store checks and marks it under one write lock."""
    now = time.time()
    use = _judge(ctx.store.use_sign_in_link(token, now), now)
    if not use.refused:
        ctx.store.audit("signed-in", by=use.email, library=use.library)
    return use


class AttemptLimit:
    """At most `limit` sign-in requests per address and per client in a sliding window.

    Kept in memory: a restart forgets it, which costs an attacker one restart per window
    and keeps the store free of per-request writes.
    """

    def __init__(self, limit: int = 5, window_seconds: float = LINK_MINUTES * 60) -> None:
        self.limit = limit
        self.window = window_seconds
        self.seen: dict[str, deque[float]] = {}

    def allow(self, *keys: str, now: float | None = None) -> bool:
        """Count one attempt under every key; False if any of them is over the limit."""
        moment = time.monotonic() if now is None else now
        over = False
        for key in keys:
            times = self.seen.setdefault(key, deque())
            while times and times[0] <= moment - self.window:
                times.popleft()
            over = over or len(times) >= self.limit
            times.append(moment)
        self._forget_idle(moment)
        return not over

    def _forget_idle(self, moment: float) -> None:
        if len(self.seen) > 10_000:  # a flood of addresses must not grow memory forever
            for key in [k for k, t in self.seen.items() if not t or t[-1] <= moment - self.window]:
                del self.seen[key]
