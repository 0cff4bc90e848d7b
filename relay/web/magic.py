"""Sign-in links: made for listed staff, emailed through the outbox, good once for 15 minutes.

A link carries 256 random bits; only their SHA-256 is stored (`magic:<hash>` in the store's
lookup keys), so a copy of the store lets nobody sign in. Using a link marks it used under
the store's write lock, so two clicks racing each other sign in once. Runs in the blocking
runner: every function here touches the store or the spool.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections import deque
from dataclasses import dataclass
from email.headerregistry import Address
from typing import Any

from relay import notices
from relay.config import Library, Staff
from relay.context import Context

LINK_MINUTES = 15


@dataclass(frozen=True)
class LinkUse:
    """What happened when a link was presented: who it signs in, or why not."""

    email: str = ""
    library: str = ""
    refused: str = ""  # "unknown", "used" or "expired"


def link_key(token: str) -> str:
    """Where a link is recorded: under its hash, never the link itself."""
    return "magic:" + hashlib.sha256(token.encode()).hexdigest()


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
    record = {"email": staff.email, "library": library.id, "expires": expires, "used": False}
    ctx.store.set_key(link_key(token), record)
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


def _judge(record: Any, now: float) -> LinkUse:
    if not isinstance(record, dict):
        return LinkUse(refused="unknown")
    if record.get("used"):
        return LinkUse(refused="used")
    if float(record.get("expires", 0)) < now:
        return LinkUse(refused="expired")
    return LinkUse(email=str(record["email"]), library=str(record["library"]))


def check_link(ctx: Context, token: str) -> LinkUse:
    """Whether a link would sign in now, without using it up (for the confirmation page)."""
    return _judge(ctx.store.key(link_key(token)), time.time())


def use_link(ctx: Context, token: str) -> LinkUse:
    """Use a link once: the check and the marking happen under one write lock."""
    key = link_key(token)
    with ctx.store.writing():
        record = ctx.store.key(key)
        use = _judge(record, time.time())
        if use.refused:
            return use
        ctx.store.set_key(key, {**record, "used": True, "used_at": time.time()})
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
