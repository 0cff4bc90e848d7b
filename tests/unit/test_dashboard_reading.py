"""What a librarian reads on the dashboard: times in their library's zone and language, and
the audit log as sentences from the shipped words files."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from relay.web.audit import Names, lines, sentence
from relay.web.pages import Pages
from relay.web.times import Calendar, Clock, local_day

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
PAGES = Pages(None)


def clock(zone: str, language: str = "en") -> Clock:
    return Clock(zone, Calendar.of(PAGES.words(language)), now=NOW)


@pytest.mark.parametrize(
    ("zone", "language", "expected"),
    [
        ("America/New_York", "en", "Mon 30 Nov, 09:15"),
        ("America/Santiago", "es", "lun 30 nov, 11:15"),
        ("Europe/Paris", "fr", "lun. 30 nov., 15:15"),
        ("UTC", "en", "Mon 30 Nov, 14:15"),
        ("Asia/Tokyo", "en", "Mon 30 Nov, 23:15"),
    ],
)
def test_a_stored_utc_time_is_shown_in_the_library_zone_and_language(
    zone: str, language: str, expected: str
) -> None:
    shown = clock(zone, language)
    assert shown.shown("2026-11-30T14:15:00+00:00") == expected
    assert shown.utc("2026-11-30T14:15:00+00:00") == "2026-11-30T14:15:00Z"


def test_the_day_changes_with_the_zone_and_the_year_shows_only_when_it_is_not_this_one() -> None:
    new_york = clock("America/New_York")
    assert new_york.shown("2026-12-01T02:30:00+00:00") == "Mon 30 Nov, 21:30"
    assert new_york.shown("2025-12-31T23:30:00+00:00") == "Wed 31 Dec 2025, 18:30"
    assert new_york.shown("2026-07-04T16:00:00+00:00") == "Sat 4 Jul, 12:00"  # summer time


def test_the_zone_is_named_once_with_its_abbreviation_or_offset() -> None:
    assert clock("America/New_York").zone_label == "New York (EST)"
    assert clock("America/Santiago").zone_label == "Santiago (UTC-03)"
    assert clock("UTC").zone_label == "UTC"


def test_date_filters_compare_the_local_day() -> None:
    assert local_day("2026-11-30T02:30:00+00:00", "America/New_York") == "2026-11-29"
    assert local_day("2026-11-30T02:30:00+00:00", "Europe/Paris") == "2026-11-30"


def test_an_unreadable_time_is_shown_as_it_is_and_gets_no_datetime() -> None:
    assert clock("Europe/Paris").shown("yesterday") == "yesterday"
    assert clock("Europe/Paris").utc("yesterday") == ""


NAMES = Names(
    staff={"ana@lib-a.example.org": "Ana", "ben@lib-a.example.org": "Ben"},
    participants={"p1": ("Maya", "lib-a"), "p2": ("Tomás", "lib-b")},
    libraries={"lib-a": "Library A", "lib-b": "Library B"},
)
ANA = "ana@lib-a.example.org"


def told(entry: dict[str, Any], language: str = "en") -> str:
    words = PAGES.words(language)
    return sentence(entry, words["audit_sentences"], NAMES, words["events"])


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"event": "approved", "letter": 8, "by": ANA, "edited": False}, "Ana approved letter 8"),
        (
            {"event": "rejected", "letter": 9, "by": ANA, "reason": "too personal"},
            "Ana rejected letter 9: too personal",
        ),
        (
            {"event": "approved", "letter": 10, "by": "ben@lib-a.example.org", "edited": True},
            "Ben edited letter 10 and approved it",
        ),
        (
            {"event": "approved", "letter": 8, "by": ANA, "redacted": {"phone": 1, "email": 1}},
            "Ana removed 2 flagged parts from letter 8 and approved it",
        ),
        (
            {"event": "approved", "letter": 8, "by": ANA, "redacted": {"phone": 1}},
            "Ana removed a flagged part from letter 8 and approved it",
        ),
        (
            {"event": "file-removed", "letter": 8, "by": ANA, "file": "drawing-1.jpg"},
            "Ana removed drawing-1.jpg from letter 8",
        ),
        ({"event": "delivered", "letter": 8}, "Letter 8 was delivered"),
        ({"event": "bounced", "letter": 8, "error": "550 5.1.1 <x@y>"}, "Letter 8 bounced"),
        (
            {"event": "held", "letter": 8, "spool": "18ec4b2a9f"},
            "Letter 8 arrived and waits for a moderator",
        ),
        (
            {"event": "enrolled", "participant": "p1", "library": "lib-a", "by": ANA},
            "Ana enrolled Maya (Library A)",
        ),
        (
            {"event": "paired", "participants": ["p1", "p2"], "library": "lib-a", "by": ANA},
            "Ana paired Maya (Library A) with Tomás (Library B)",
        ),
        (
            {"event": "paused", "participant": "p2", "via": "bounces", "reason": "mailbox-failing"},
            "Tomás (Library B) was paused: their mailbox keeps returning letters",
        ),
    ],
)
def test_each_known_event_reads_as_a_sentence(entry: dict[str, Any], expected: str) -> None:
    assert told(entry) == expected


def test_the_same_entries_read_in_spanish_and_french() -> None:
    entry = {"event": "rejected", "letter": 9, "by": ANA, "reason": "demasiado personal"}
    assert told(entry, "es") == "Ana rechazó la carta 9: demasiado personal"
    assert told({"event": "bounced", "letter": 8}, "fr") == "La lettre 8 a été renvoyée (rebond)"


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"event": "delivery-odd", "letter": 8, "reason": "late"}, "Delivery odd (letter 8)"),
        ({"event": "set-aside", "spool": "18ec4b2a9f", "attempts": 3}, "Set aside"),
        ({"event": "newly-invented", "by": ANA, "detail": {"x": 1}}, "Ana: newly invented"),
        ({"event": "not-held", "spool": "18ec4b2a9f", "reason": "paused"}, "Not held"),
        # a known event without the detail its sentence needs: the generic one, no gap
        ({"event": "rejected", "letter": 9, "by": ANA}, "Ana: rejected (letter 9)"),
    ],
)
def test_other_entries_read_as_a_generic_sentence_without_raw_details(
    entry: dict[str, Any], expected: str
) -> None:
    said = told(entry)
    assert said == expected
    assert "18ec" not in said and "{" not in said


def test_audit_lines_keep_the_time_and_the_letter_to_link() -> None:
    entry = {"at": "2026-11-30T14:15:00+00:00", "event": "delivered", "letter": 8}
    (line,) = lines([entry], PAGES.words("en"), NAMES)
    assert (line.at, line.letter, line.sentence) == (entry["at"], 8, "Letter 8 was delivered")
