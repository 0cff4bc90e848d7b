"""Enrolling many participants from a CSV file: check everything, show it, then write.

The file is read twice: once to build a plan (the rows that would be created and a problem
for every line that would not), shown to staff before anything is written, and once more
when they confirm, from the same text, so what is created is exactly what was previewed
minus anything that changed in between. A header row names the columns (`COLUMNS`, in any
order; the spellings of `HEADERS` in English, Spanish and French are understood too):
`name` and `email` are required; `pal` is the masked address or id of a patron of a
partner library; `kind` is "group" for a class or a club (its name, its teacher's address),
whose `members` are its members' first names separated by commas. Each row is checked as
any enrolment is (`participants.check_enrolment`) and created through
`participants.enroll_checked`, so whoever is under the library's consent age is enrolled
waiting for their guardian's consent, as from every other channel.

Spreadsheets write CSV in several ways, and all of them are read: UTF-8 with or without a
byte order mark, Windows-1252 (Excel on Windows), and commas, semicolons (Excel where the
decimal mark is a comma) or tabs between columns, told apart by the header row.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from relay import consent, participants, welcomes
from relay.context import Context
from relay.errors import AlreadyEnrolled, InvalidField, NotFound, UserError
from relay.store.records import Participant

MAX_ROWS = 5_000
COLUMNS = (
    "name",
    "email",
    "language",
    "birth_year",
    "age_band",
    "interests",
    "guardian_name",
    "guardian_email",
    "guardian_copies",
    "pal",
    "kind",
    "members",
)
# Other headers a spreadsheet may use for a column, compared without case, accents or
# punctuation ("Year of birth", "Correo del tutor", "Année de naissance").
HEADERS = {
    "name": ("first name", "display name", "nombre", "prenom", "nom affiche"),
    "email": (
        "e mail", "email address", "mail", "correo", "correo electronico", "email del alumno",
        "courriel", "adresse email", "adresse e mail", "adresse courriel",
    ),
    "language": ("lang", "idioma", "lengua", "langue"),
    "birth_year": (
        "birth year", "year of birth", "born", "ano de nacimiento", "ano nacimiento",
        "nacimiento", "annee de naissance", "annee naissance", "ne en", "nee en",
    ),
    "age_band": ("age band", "age", "ages", "age group", "edad", "rango de edad", "tranche d age"),
    "interests": (
        "interest", "hobbies", "intereses", "aficiones", "gustos", "interets",
        "centres d interet", "loisirs",
    ),
    "guardian_name": (
        "guardian name", "parent name", "parent s name", "guardian s name", "nombre del tutor",
        "tutor", "nombre del padre o madre", "nom du parent", "nom du responsable",
        "responsable", "responsable legal",
    ),
    "guardian_email": (
        "guardian", "guardian email", "guardian e mail", "guardian s email", "parent email",
        "parent e mail", "parent s email", "correo del tutor", "email del tutor",
        "correo del padre o madre", "email du parent", "courriel du parent",
        "email du responsable", "courriel du responsable", "e mail du responsable",
    ),
    "guardian_copies": (
        "guardian copies", "copies", "copies to guardian", "parent copies", "copias",
        "copias al tutor", "copia al tutor", "copies au parent", "copies au responsable",
    ),
    "pal": ("pen pal", "penpal", "amigo", "amigo por correspondencia", "correspondant"),
    "kind": ("type", "tipo"),
    "members": ("member", "miembros", "integrantes", "alumnos", "membres", "eleves"),
}  # fmt: skip
YES = {"yes", "y", "true", "1", "x", "si", "s", "oui", "o", "ja"}
NO = {"no", "n", "false", "0", "non", "nein"}
# The column a participant field is entered in, where the two names differ.
FIELD_COLUMNS = {"guardian": "guardian_email"}


@dataclass(frozen=True)
class Row:
    line: int
    enrolment: participants.Enrolment
    language: str  # as written; "" means the library's language
    age: int | None  # the youngest they can be today; None when no age is given
    pal: Participant | None = None

    @property
    def name(self) -> str:
        return self.enrolment.name

    @property
    def email(self) -> str:
        return self.enrolment.email


@dataclass(frozen=True)
class Problem:
    line: int
    kind: str  # the template words it: columns, name, email, guardian-required, twice...
    detail: str = ""
    column: str = ""  # the column at fault, by its name in COLUMNS


@dataclass
class Plan:
    rows: list[Row] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def decoded(raw: bytes) -> str:
    """UTF-8 as asked on the page; spreadsheets on Windows often save Windows-1252 instead."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def _records(text: str) -> list[list[str]]:
    """The cells of each line, separated by what separates the header row's names."""
    first = text.lstrip("\ufeff").split("\n", 1)[0]
    counts = {mark: first.count(mark) for mark in ";,\t"}
    delimiter = max(counts, key=lambda mark: counts[mark])
    return list(csv.reader(io.StringIO(text.lstrip("\ufeff")), delimiter=delimiter))


def _plain(header: str) -> str:
    """A header compared as people type it: no case, accents, punctuation or spare spaces."""
    decomposed = unicodedata.normalize("NFKD", header.casefold())
    letters = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^a-z0-9]+", " ", letters).split())


_COLUMN_OF = {
    _plain(spelling): column
    for column in COLUMNS
    for spelling in (column, column.replace("_", " "), *HEADERS.get(column, ()))
}


def _header(first: list[str]) -> dict[str, int] | None:
    found: dict[str, int] = {}
    for index, cell in enumerate(first):
        column = _COLUMN_OF.get(_plain(cell))
        if column is not None and column not in found:
            found[column] = index
    return found if "name" in found and "email" in found else None


def _pal(ctx: Context, library_id: str, kind: str, reference: str) -> Participant | str:
    """The partner patron a row of this kind names, or the kind of problem with it: a
    group's pal is a group, a person's a person (as `participants.pair` requires)."""
    try:
        found = participants.find(ctx, reference, by_real_address=False)
    except NotFound:
        return "pal"
    if found.library not in ctx.config.partners_of(library_id):
        return "pal-library"
    if found.is_group != (kind == "group"):
        return "pal-kind"
    return found


def _copies(text: str) -> bool | None:
    """yes/no in the shipped languages; empty: the default (copies)."""
    word = _plain(text)
    if not word:
        return None
    if word in YES or word in NO:
        return word in YES
    raise InvalidField("guardian_copies", text)


# The kind column's words in the shipped languages; empty: a person.
KINDS = {
    "group": ("group", "grupo", "groupe", "class", "clase", "classe", "club"),
    "person": ("person", "persona", "personne"),
}


def _kind(text: str) -> str:
    word = _plain(text)
    found = next((kind for kind, words in KINDS.items() if word in words), None)
    return found or text  # anything else: `participants.check_kind` names it


def _problem(line: int, error: InvalidField, cells: dict[str, str]) -> Problem:
    column = FIELD_COLUMNS.get(error.field, error.field)
    entered = cells.get(column, "")
    if _kind(cells.get("kind", "")) == "group" and error.field in ("birth_year", "guardian"):
        return Problem(line, f"group-{error.field}", entered, column)
    if error.field == "members" and entered and _kind(cells.get("kind", "")) != "group":
        return Problem(line, "members-person", "", column)
    if error.field == "guardian" and not entered:
        return Problem(line, "guardian-required", "", column)
    # What staff typed says more than the English of a check; an address check's own words
    # say what is wrong with an address.
    detail = {"email": error.problem, "guardian": error.problem, "name": ""}.get(
        error.field, entered
    )
    return Problem(line, error.field, detail if error.field != "interests" else "", column)


def _row(
    ctx: Context, library_id: str, line: int, cells: dict[str, str], day: date
) -> Row | Problem:
    name, language, reference = cells.get("name", ""), cells.get("language", ""), cells.get("pal")
    try:
        details = participants.Details(
            birth_year=cells.get("birth_year"),
            age_band=cells.get("age_band"),
            interests=cells.get("interests"),
            guardian_name=cells.get("guardian_name"),
            guardian_copies=_copies(cells.get("guardian_copies", "")),
            kind=_kind(cells.get("kind", "")),
            members=cells.get("members"),
        )
        checked = participants.check_enrolment(
            ctx,
            library_id,
            name,
            cells.get("email", ""),
            language or None,
            cells.get("guardian_email") or None,
            details,
            today=day,
        )
    except AlreadyEnrolled:
        return Problem(line, "enrolled", name)
    except InvalidField as error:
        return _problem(line, error, cells)
    pal = _pal(ctx, library_id, checked.kind, reference) if reference else None
    if isinstance(pal, str):
        return Problem(line, pal, reference or "", "pal")
    age = consent.youngest_age(checked.birth_year, checked.age_band, day)
    return Row(line, checked, language, age, pal)


def plan(ctx: Context, library_id: str, text: str, *, today: date | None = None) -> Plan:
    """Blocking (reads the store): what importing `text` would do, line by line."""
    day = today or datetime.now(UTC).date()
    result = Plan()
    records = _records(text)
    header = _header(records[0]) if records else None
    if header is None:
        result.problems.append(Problem(1, "columns"))
        return result
    seen: set[tuple[str, str]] = set()
    for line, record in enumerate(records[1:], start=2):
        if not any(cell.strip() for cell in record):
            continue
        if len(result.rows) + len(result.problems) >= MAX_ROWS:
            result.problems.append(Problem(line, "too-many", str(MAX_ROWS)))
            break
        cells = {c: record[i].strip() for c, i in header.items() if i < len(record)}
        found = _row(ctx, library_id, line, cells, day)
        if isinstance(found, Row) and (found.name, found.email) in seen:
            found = Problem(line, "twice", found.name)
        if isinstance(found, Row):
            seen.add((found.name, found.email))
            result.rows.append(found)
        else:
            result.problems.append(found)
    return result


def create(ctx: Context, library_id: str, text: str, by: str) -> tuple[list[Participant], Plan]:
    """Blocking: enrol (and pair) the rows that pass the plan; return them and the plan.
    Pals paired here are welcomed as from every other channel (`relay.welcomes`: at once,
    or when a guardian's consent comes)."""
    checked = plan(ctx, library_id, text)
    created = []
    for row in checked.rows:
        try:
            participant = participants.enroll_checked(ctx, row.enrolment, by=by, via="import")
        except UserError as error:
            checked.problems.append(Problem(row.line, "failed", str(error)))
            continue
        created.append(participant)
        if row.pal is None:
            continue
        try:  # the plan checked the libraries are partners; the pal may have left since
            participants.pair(ctx, participant, row.pal, by=by, via="import")
        except UserError as error:
            checked.problems.append(Problem(row.line, "failed", str(error)))
            continue
        welcomes.welcome(ctx, participant, row.pal, by=by, via="import")
    return created, checked
