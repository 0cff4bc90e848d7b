"""Two classes for the program tests: 30 children at riverside (English) and 27 at valparaiso
(Spanish), each with a year of birth, interests and a guardian whose consent is recorded on
paper, as a coordinator enrolling two classes from a spreadsheet would have them.

The same call always gives the same children (no randomness): names, ages from 9 to 12,
interests from a short list, a few learning the other class's language.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from relay import guardians, participants
from relay.context import Context
from relay.store.records import Participant

RIVERSIDE_NAMES = [
    "Maya",
    "Leo",
    "Ava",
    "Noah",
    "Emma",
    "Liam",
    "Olivia",
    "Ethan",
    "Sophia",
    "Mason",
    "Isabella",
    "Lucas",
    "Mia",
    "Logan",
    "Amelia",
    "Jack",
    "Harper",
    "Owen",
    "Ella",
    "Henry",
    "Grace",
    "Wyatt",
    "Chloe",
    "Jacob",
    "Lily",
    "Daniel",
    "Zoe",
    "Samuel",
    "Nora",
    "Caleb",
]
VALPARAISO_NAMES = [
    "Tomás",
    "Sofía",
    "Mateo",
    "Valentina",
    "Benjamín",
    "Isidora",
    "Agustín",
    "Florencia",
    "Vicente",
    "Antonella",
    "Martín",
    "Josefa",
    "Joaquín",
    "Emilia",
    "Lucas",
    "Catalina",
    "Maximiliano",
    "Trinidad",
    "Gaspar",
    "Amanda",
    "Cristóbal",
    "Julieta",
    "Alonso",
    "Renata",
    "Facundo",
    "Constanza",
    "Ignacio",
]
INTERESTS = ("football", "drawing", "music", "animals", "space", "books", "dance", "chess")
CLASS_SIZES = {"riverside": 30, "valparaiso": 27}
LEARNING = {"riverside": "learning es", "valparaiso": "learning en"}


@dataclass(frozen=True)
class Child:
    library: str
    name: str
    email: str
    language: str
    birth_year: int
    interests: str
    guardian: str
    guardian_name: str


def two_classes(year: int | None = None) -> list[Child]:
    """The 57 children, riverside's first; `year` is the current year (ages are 9 to 12)."""
    this_year = year or datetime.now(UTC).year
    children: list[Child] = []
    for library, names, language in (
        ("riverside", RIVERSIDE_NAMES, "en"),
        ("valparaiso", VALPARAISO_NAMES, "es"),
    ):
        for number, name in enumerate(names, start=1):
            likes = [INTERESTS[number % len(INTERESTS)], INTERESTS[(number * 3) % len(INTERESTS)]]
            if number % 5 == 0:
                likes.append(LEARNING[library])
            local = f"{library[:3]}.child{number:02d}"
            children.append(
                Child(
                    library=library,
                    name=name,
                    email=f"{local}@family-mail.example.net",
                    language=language,
                    birth_year=this_year - 10 - (number % 4),
                    interests=", ".join(dict.fromkeys(likes)),
                    guardian=f"{local}.parent@family-mail.example.net",
                    guardian_name=f"Parent of {name}",
                )
            )
    assert {c.library: sum(1 for d in children if d.library == c.library) for c in children} == (
        CLASS_SIZES
    )
    return children


def to_csv(children: list[Child]) -> str:
    """The children as the spreadsheet a coordinator imports on the dashboard."""
    lines = ["name;email;language;birth_year;interests;guardian_name;guardian_email"]
    lines += [
        f"{c.name};{c.email};{c.language};{c.birth_year};{c.interests};{c.guardian_name};"
        f"{c.guardian}"
        for c in children
    ]
    return "\n".join(lines) + "\n"


def enrol_two_classes(ctx: Context, *, consented: bool = True) -> list[Participant]:
    """Blocking: enrol the two classes straight into the store (as the import does), with the
    guardians' consent recorded on paper unless `consented` is false."""
    enrolled = []
    for child in two_classes():
        participant = participants.enroll(
            ctx,
            child.library,
            child.name,
            child.email,
            language=child.language,
            guardian=child.guardian,
            details=participants.Details(
                birth_year=child.birth_year,
                interests=child.interests,
                guardian_name=child.guardian_name,
            ),
        )
        if consented and participant.consent == "pending":
            participant = guardians.give(ctx, participant, method="paper", by="staff")
        enrolled.append(participant)
    return enrolled
