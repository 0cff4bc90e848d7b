"""Who needs a guardian's consent to take part, by age and the library's consent age.

A participant younger than their library's `consent_age` (`relay.config.CONSENT_AGES`, by
country, or the library's own setting) takes part only once a guardian has consented: until
then nothing is delivered to or from them (`Participant.may_correspond`). Ages are counted
cautiously: from a year of birth, the younger of the two ages a person can have in a year
(born 2013: 12 until their birthday in 2026, so 12); from an age band, its lowest age. A
participant whose age is not recorded needs no consent: a library that enrols children
records their year of birth or age band (the dashboard, the CLI and the CSV import ask).

Pure, like the reading of a guardian's emailed answer (`read_answer`); asking for consent and
recording the answer is `relay.guardians`.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Final, Literal

from relay.config import Library
from relay.decisions import fold
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


# The note a letter is held with while the writer or the pal has no guardian's consent, as
# kept with the letter; staff read it in their language (`email/<lang>/consent_note.txt`,
# `known_notes` in the dashboard's words).
NO_CONSENT_NOTES: Final = {
    "writer": "No consent yet: the writer's guardian has not consented; "
    "the letter cannot be sent until they do.",
    "pal": "No consent yet: the pal's guardian has not consented; "
    "the letter cannot be sent until they do.",
}


# --- a guardian's answer by email --------------------------------------------------------

Answer = Literal["given", "declined"]
GIVEN: Final = "given"
DECLINED: Final = "declined"


def read_answer(line: str, words: dict[str, dict[str, list[str]]]) -> Answer | None:
    """`GIVEN`, `DECLINED` or None for the first line a guardian wrote in reply to a consent
    request. `words` are `yes` and `no` lists per language (`templates/email/<lang>/
    consent.toml`); compared without case or accents, the longest matching word wins ("no
    acepto" over "no"), and a word must end where the line's word ends ("si" is not "sin")."""
    folded = _apostrophes(fold(line.strip()))
    best: tuple[int, Answer] | None = None
    choices: tuple[tuple[str, Answer], ...] = (("yes", GIVEN), ("no", DECLINED))
    for vocabulary in words.values():
        for key, answer in choices:
            for word in vocabulary.get(key, []):
                candidate = _apostrophes(fold(word.strip()))
                found = re.match(rf"{re.escape(candidate)}(?!\w)", folded)
                if candidate and found and (best is None or len(candidate) > best[0]):
                    best = (len(candidate), answer)
    return best[1] if best else None


def _apostrophes(text: str) -> str:
    """Phones type ’ where keyboards type '."""
    return text.replace("\u2019", "'")
