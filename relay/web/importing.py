"""Enrolling many participants from a CSV file: check everything, show it, then write.

The file is read twice: once to build a plan (the rows that would be created and a problem
for every line that would not), shown to staff before anything is written, and once more
when they confirm, from the same text, so what is created is exactly what was previewed
minus anything that changed in between. Columns: `name,email[,language][,pal]` with a
header row; `pal` is the masked address or id of a patron of a partner library.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from relay import participants
from relay.context import Context
from relay.errors import AlreadyEnrolled, InvalidField, NotFound, UserError
from relay.store.records import Participant

MAX_ROWS = 5_000
COLUMNS = ("name", "email", "language", "pal")


@dataclass(frozen=True)
class Row:
    line: int
    name: str
    email: str
    language: str  # "" means the library's language
    pal: Participant | None = None


@dataclass(frozen=True)
class Problem:
    line: int
    kind: str  # the template words it: columns, name, email, language, pal, twice, enrolled...
    detail: str = ""


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
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(text[:4096], ",;\t")
    except csv.Error:
        dialect = csv.excel  # one column, or too little text to tell: plain commas
    return list(csv.reader(io.StringIO(text), dialect))


def _header(first: list[str]) -> dict[str, int] | None:
    names = [cell.strip().lower() for cell in first]
    if "name" not in names or "email" not in names:
        return None
    return {column: names.index(column) for column in COLUMNS if column in names}


def _pal(ctx: Context, library_id: str, reference: str) -> Participant | str:
    """The partner patron a row names, or the kind of problem with it."""
    try:
        found = participants.find(ctx, reference, by_real_address=False)
    except NotFound:
        return "pal"
    if found.library not in ctx.config.partners_of(library_id):
        return "pal-library"
    return found


def _row(ctx: Context, library_id: str, line: int, cells: dict[str, str]) -> Row | Problem:
    name, language, reference = cells.get("name", ""), cells.get("language", ""), cells.get("pal")
    try:
        checked = participants.check_enrolment(
            ctx, library_id, name, cells.get("email", ""), language or None
        )
    except AlreadyEnrolled:
        return Problem(line, "enrolled", name)
    except InvalidField as error:
        shown = {"name": "", "language": language}.get(error.field, error.problem)
        return Problem(line, error.field, shown)
    pal = _pal(ctx, library_id, reference) if reference else None
    if isinstance(pal, str):
        return Problem(line, pal, reference or "")
    return Row(line, checked.name, checked.email, language, pal)


def plan(ctx: Context, library_id: str, text: str) -> Plan:
    """Blocking (reads the store): what importing `text` would do, line by line."""
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
        found = _row(ctx, library_id, line, cells)
        if isinstance(found, Row) and (found.name, found.email) in seen:
            found = Problem(line, "twice", found.name)
        if isinstance(found, Row):
            seen.add((found.name, found.email))
            result.rows.append(found)
        else:
            result.problems.append(found)
    return result


def create(ctx: Context, library_id: str, text: str, by: str) -> tuple[list[Participant], Plan]:
    """Blocking: enrol (and pair) the rows that pass the plan; return them and the plan."""
    checked = plan(ctx, library_id, text)
    created = []
    for row in checked.rows:
        try:
            participant = participants.enroll(
                ctx,
                library_id,
                row.name,
                row.email,
                language=row.language or None,
                by=by,
                via="import",
            )
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
    return created, checked
