"""Participant records built in memory, for tests of matching and welcomes that need no store:
number n is `p<n>`, of the age asked on `TODAY`."""

from __future__ import annotations

from datetime import date

from relay.store.records import Participant

TODAY = date(2026, 11, 30)


def person(
    number: int,
    library: str,
    age: int | None,
    *,
    language: str = "",
    interests: tuple[str, ...] = (),
    band: str = "",
    **more: object,
) -> Participant:
    """`p<number>` at `library`, `age` on `TODAY` (None: no year of birth), speaking English
    at riverside and Spanish elsewhere unless `language` says otherwise."""
    default = "en" if library == "riverside" else "es"
    return Participant(
        id=f"p{number}",
        library=library,
        name=f"Name{number}",
        email=f"person{number}@example.org",
        language=language or default,
        masked=f"masked-{number}@pals.example.org",
        birth_year=TODAY.year - age - 1 if age is not None else 0,
        age_band=band,
        interests=interests,
        **more,  # type: ignore[arg-type]
    )
