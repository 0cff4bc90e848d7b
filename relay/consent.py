"""Who needs a guardian's consent to take part, by age and the library's consent age.

A participant younger than their library's `consent_age` (`relay.config.CONSENT_AGES`, by
country, or the library's own setting) takes part only once a guardian has consented: until
then nothing is delivered to or from them (`Participant.may_correspond`). Ages are counted
cautiously: from a year of birth, the younger of the two ages a person can have in a year
(born 2013: 12 until their birthday in 2026, so 12); from an age band, its lowest age. A
participant whose age is not recorded needs no consent: a library that enrols children
records their year of birth or age band (the dashboard, the CLI and the CSV import ask).
"""

from __future__ import annotations

import re
from datetime import date

from relay.config import Library
from relay.errors import InvalidField

# "9-11", "9–11", "13+", "12": the lowest age of the band is what counts.
_BAND = re.compile(r"^\s*(\d{1,2})\s*(?:(?:-|–|to)\s*(\d{1,2})|\+)?\s*$")
OLDEST_BIRTH_YEAR = 1900


def check_birth_year(value: int | str | None, today: date) -> int:
    """A year of birth as entered (0 or "" for none), or `InvalidField("birth_year")`."""
    if value in (None, "", 0):
        return 0
    text = str(value).strip()
    if not text.isdigit() or not OLDEST_BIRTH_YEAR <= int(text) <= today.year:
        raise InvalidField(
            "birth_year", f"{text!r} is not a year of birth such as {today.year - 10}"
        )
    return int(text)


def check_age_band(value: str | None) -> str:
    """An age band as entered ("9-11", "13+", "12"; "" for none), or `InvalidField`."""
    text = (value or "").strip()
    if not text:
        return ""
    found = _BAND.match(text)
    if found is None or (found.group(2) and int(found.group(2)) < int(found.group(1))):
        raise InvalidField("age_band", f"{text!r} is not an age band such as 9-11 or 13+")
    return text.replace("–", "-").replace(" ", "")


def youngest_age(birth_year: int, age_band: str, today: date) -> int | None:
    """The lowest age the participant can have today; None when no age is recorded."""
    if birth_year:
        return max(today.year - birth_year - 1, 0)
    found = _BAND.match(age_band) if age_band else None
    return int(found.group(1)) if found else None


def needs_consent(library: Library, birth_year: int, age_band: str, today: date) -> bool:
    """Whether someone of this age at this library takes part only with a guardian's consent."""
    age = youngest_age(birth_year, age_band, today)
    return age is not None and age < library.consent_age
