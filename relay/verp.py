"""Signed VERP addresses: the envelope sender of a delivered letter, and reading it back.

`bounce+<letter>-<expiry>-<signature>@<domain>`: the letter's number, the last day a bounce
is taken (days since 1970-01-01 in base 36) and an HMAC over both, so that nobody can mark a
letter bounced by writing to a guessed address, and an address that leaked (quoted by an
autoresponder, say) stops working. Bounces come within days (a sending server gives up
after five at most); `VALID_DAYS` leaves room for slow ones.

Before expiry days, the address was `bounce+<letter>-<signature>`, signed without a date. A
bounce to such an address is taken only while the letter's approval is less than
`VALID_DAYS` old: the same window the new addresses have, so the old form adds nothing an
attacker could use, and it stops working by itself a month after the change.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable
from datetime import date, datetime, timedelta

from relay.context import Context

VALID_DAYS = 30
EPOCH = date(1970, 1, 1)
_SIGNED = re.compile(r"^bounce\+(\d{1,12})-([0-9a-z]{1,6})-([0-9a-f]{16})$")
_LEGACY = re.compile(r"^bounce\+(\d{1,12})-([0-9a-f]{12})$")


def _sign(secret: bytes, text: str, length: int) -> str:
    return hmac.new(secret, text.encode(), hashlib.sha256).hexdigest()[:length]


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while True:
        number, rest = divmod(number, 36)
        text = digits[rest] + text
        if number == 0:
            return text


def bounce_address(secret: bytes, letter_id: int, domain: str, approved: date) -> str:
    """The envelope sender for a letter approved on `approved`: the same address each time
    the letter is composed again, valid `VALID_DAYS` from that day."""
    expiry = _base36((approved + timedelta(days=VALID_DAYS) - EPOCH).days)
    signature = _sign(secret, f"bounce-{letter_id}-{expiry}", 16)
    return f"bounce+{letter_id}-{expiry}-{signature}@{domain}"


def letter_of(
    secret: bytes, local: str, today: date, approved_on: Callable[[int], date | None]
) -> int | None:
    """The letter a bounce address names, or None when it is forged, expired or unknown.
    `approved_on` is only asked about the older, undated form."""
    signed = _SIGNED.match(local)
    if signed:
        number, expiry, signature = signed.groups()
        expected = _sign(secret, f"bounce-{number}-{expiry}", 16)
        if not hmac.compare_digest(expected, signature):
            return None
        return int(number) if today <= EPOCH + timedelta(days=int(expiry, 36)) else None
    legacy = _LEGACY.match(local)
    if legacy:
        number, signature = legacy.groups()
        if not hmac.compare_digest(_sign(secret, f"bounce-{number}", 12), signature):
            return None
        approved = approved_on(int(number))
        if approved is not None and today <= approved + timedelta(days=VALID_DAYS):
            return int(number)
    return None


def _approved_on(ctx: Context, letter_id: int) -> date | None:
    letter = ctx.store.letter(letter_id)
    if letter is None or not letter.decided_at:
        return None
    return datetime.fromisoformat(letter.decided_at).date()


def letter_of_address(ctx: Context, local: str, now: datetime) -> int | None:
    """`letter_of` with the relay's key and records."""
    return letter_of(ctx.secret, local, now.date(), lambda n: _approved_on(ctx, n))


def address_valid(ctx: Context, local: str, now: datetime) -> bool:
    """Whether intake may take mail for this bounce address (asked at RCPT)."""
    return letter_of_address(ctx, local, now) is not None
