"""Signed, dated bounce addresses: taken until their last day, refused when altered or old."""

from __future__ import annotations

import hashlib
import hmac
from datetime import date, timedelta

from relay import verp

SECRET = b"k" * 32
APPROVED = date(2026, 11, 2)
LAST_DAY = APPROVED + timedelta(days=verp.VALID_DAYS)


def _local(letter_id: int = 41, approved: date = APPROVED) -> str:
    return verp.bounce_address(SECRET, letter_id, "pals.example.org", approved).partition("@")[0]


def _never_asked(_letter: int) -> date | None:
    raise AssertionError("the dated form needs no record")


def test_an_address_names_its_letter_until_its_last_day() -> None:
    local = _local()
    assert local.startswith("bounce+41-") and len(local) < 64
    assert verp.letter_of(SECRET, local, APPROVED, _never_asked) == 41
    assert verp.letter_of(SECRET, local, LAST_DAY, _never_asked) == 41
    assert verp.letter_of(SECRET, local, LAST_DAY + timedelta(days=1), _never_asked) is None


def test_an_altered_letter_expiry_or_key_is_refused() -> None:
    number, expiry, signature = _local().removeprefix("bounce+").split("-")
    later = verp._base36(int(expiry, 36) + 365)
    for forged in (
        f"bounce+42-{expiry}-{signature}",
        f"bounce+{number}-{later}-{signature}",
        f"bounce+{number}-{expiry}-{'0' * 16}",
    ):
        assert verp.letter_of(SECRET, forged, APPROVED, _never_asked) is None
    assert verp.letter_of(b"other" * 8, _local(), APPROVED, _never_asked) is None


def test_the_undated_form_is_taken_only_within_the_window_of_its_approval() -> None:
    signature = hmac.new(SECRET, b"bounce-41", hashlib.sha256).hexdigest()[:12]
    legacy = f"bounce+41-{signature}"
    approved = {41: APPROVED}
    assert verp.letter_of(SECRET, legacy, LAST_DAY, approved.get) == 41
    assert verp.letter_of(SECRET, legacy, LAST_DAY + timedelta(days=1), approved.get) is None
    assert verp.letter_of(SECRET, legacy, APPROVED, {}.get) is None  # no such letter
    assert verp.letter_of(SECRET, "bounce+41-" + "0" * 12, APPROVED, approved.get) is None
