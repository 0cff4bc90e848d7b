"""History: every letter of the visitor's library, searchable, each with its timeline; and
the audit log.

Letters live in two places: the hot shards (held, approved) and the append-only archive
(final states). The archive is read here file by file, the last record of an id winning,
since a letter's final record is appended once it reaches that state; a letter found in
both places (the moment between the archive append and the hot removal) is taken from the
archive. Cost: one pass over the archive per search, which is fine for the size of a
library program and keeps the store untouched.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, get_args

from starlette.requests import Request
from starlette.responses import Response

from relay.context import Context
from relay.store.records import Letter, LetterStatus, Participant
from relay.web.audit import Names, lines
from relay.web.dashboard import PageNotFound, dashboard_of
from relay.web.letters import LetterView, TimelineStep, of_library, view
from relay.web.times import local_day

STATUSES: tuple[LetterStatus, ...] = get_args(LetterStatus)
SHOWN = 500


@dataclass(frozen=True)
class Search:
    who: str = ""  # name, masked address or participant id of the writer or the pal
    since: str = ""  # YYYY-MM-DD, inclusive
    until: str = ""  # YYYY-MM-DD, inclusive
    status: str = ""

    @classmethod
    def of(cls, params: Any) -> Search:
        def day(name: str) -> str:
            text = str(params.get(name, "")).strip()
            try:
                return date.fromisoformat(text).isoformat()
            except ValueError:
                return ""

        status = str(params.get("status", ""))
        return cls(
            who=str(params.get("who", "")).strip().lower(),
            since=day("since"),
            until=day("until"),
            status=status if status in STATUSES else "",
        )


def _people(ctx: Context, library_id: str) -> dict[str, Participant]:
    partners = ctx.config.partners_of(library_id)
    return {p.id: p for p in ctx.store.participants() if p.library in (library_id, *partners)}


def _who_matches(letter: Letter, wanted: str, people: dict[str, Participant]) -> bool:
    if not wanted:
        return True
    for pid, masked in (
        (letter.sender, letter.sender_masked),
        (letter.recipient, letter.recipient_masked),
    ):
        person = people.get(pid)
        if wanted in (pid, masked) or (person is not None and wanted in person.name.lower()):
            return True
    return False


def search(ctx: Context, library_id: str, wanted: Search) -> list[tuple[Letter, str, str]]:
    """Blocking: matching letters written at this library, newest first, with both names."""
    people = _people(ctx, library_id)
    zone = _zone(ctx, library_id)
    found = []
    for letter in reversed(ctx.store.all_letters()):
        day = local_day(letter.received_at, zone)
        if (
            letter.sender_library == library_id
            and (not wanted.status or letter.status == wanted.status)
            and (not wanted.since or day >= wanted.since)
            and (not wanted.until or day <= wanted.until)
            and _who_matches(letter, wanted.who, people)
        ):
            writer, pal = people.get(letter.sender), people.get(letter.recipient)
            found.append((letter, writer.name if writer else "", pal.name if pal else ""))
    return found[:SHOWN]


def _zone(ctx: Context, library_id: str) -> str:
    library = ctx.config.library(library_id)
    return library.timezone if library is not None else "UTC"


def timeline(ctx: Context, letter: Letter) -> tuple[TimelineStep, ...]:
    """The letter's history, each step with the details of its audit entry (the same word in
    both), and the audit entries about the letter that are not steps of it, in time order."""
    audit = [entry for entry in ctx.store.audit_log() if entry.get("letter") == letter.id]
    steps = []
    for step in letter.history:
        same = next((e for e in audit if e.get("event") == step.event), {})
        if same:
            audit.remove(same)
        steps.append(_step(step.at, step.event, step.by, same))
    steps += [_step(str(e.get("at", "")), str(e.get("event", "")), "", e) for e in audit]
    return tuple(sorted(steps, key=lambda s: s.at))


def _step(at: str, event: str, by: str, audit: dict[str, Any]) -> TimelineStep:
    return TimelineStep(
        at=at,
        event=event,
        by=by,
        by_address=str(audit.get("by", "")),
        via=str(audit.get("via", "")),
        reason=str(audit.get("reason", "")),
        edited=bool(audit.get("edited")),
        file=str(audit.get("file", "")),
        redacted=tuple(sorted((str(k), int(v)) for k, v in (audit.get("redacted") or {}).items())),
        not_sent=str(audit.get("not_sent", "")),
    )


def letter_page_view(ctx: Context, library_id: str, letter_id: int) -> LetterView | None:
    letter = of_library(ctx, library_id, letter_id)
    if letter is None:
        return None
    shown = view(ctx, letter)
    return LetterView(**{**shown.__dict__, "timeline": timeline(ctx, letter)})


# --- audit log -----------------------------------------------------------------------------


def _concerns(entry: dict[str, Any], library_id: str, staff: set[str], mine: set[Any]) -> bool:
    """Whether an audit entry is about this library: its staff, letters or patrons."""
    participants = entry.get("participants") or [entry.get("participant")]
    return (
        entry.get("library") == library_id
        or entry.get("by") in staff
        or entry.get("letter") in mine
        or any(p in mine for p in participants)
    )


def audit_entries(
    ctx: Context, library_id: str, event: str, by: str, since: str, until: str
) -> list[dict[str, Any]]:
    library = ctx.config.library(library_id)
    staff = {s.email for s in library.staff} if library else set()
    mine: set[Any] = {p.id for p in ctx.store.participants() if p.library == library_id}
    mine |= {letter.id for letter in ctx.store.all_letters() if letter.sender_library == library_id}
    zone = _zone(ctx, library_id)

    def day(entry: dict[str, Any]) -> str:
        return local_day(str(entry.get("at", "")), zone)

    def done_by(entry: dict[str, Any]) -> bool:
        """The staff filter matches the name the sentences show, or the address."""
        address = str(entry.get("by", "")).lower()
        return by in address or by in names.get(address, "")

    names = {s.email.lower(): s.name.lower() for s in library.staff} if library else {}

    found = [
        entry
        for entry in ctx.store.audit_log()
        if _concerns(entry, library_id, staff, mine)
        and (not event or entry.get("event") == event)
        and (not by or done_by(entry))
        and (not since or day(entry) >= since)
        and (not until or day(entry) <= until)
    ]
    return list(reversed(found))[:SHOWN]


def names_of(ctx: Context) -> Names:
    """Staff, participants and libraries by name, for the audit log's sentences."""
    libraries = ctx.config.libraries
    return Names(
        staff={s.email.lower(): s.name for library in libraries for s in library.staff},
        participants={p.id: (p.name, p.library) for p in ctx.store.participants()},
        libraries={library.id: library.name for library in libraries},
    )


# --- pages ---------------------------------------------------------------------------------


async def show_history(request: Request) -> Response:
    dash = dashboard_of(request)
    visitor = dash.visitor(request)
    wanted = Search.of(request.query_params)
    letters = await dash.run(search, dash.context(), visitor.library.id, wanted)
    return dash.page(
        request, "history", letters=letters, wanted=wanted, statuses=STATUSES, shown=SHOWN
    )


async def show_letter(request: Request) -> Response:
    dash = dashboard_of(request)
    visitor = dash.visitor(request)
    letter_id = int(request.path_params["letter_id"])
    shown = await dash.run(letter_page_view, dash.context(), visitor.library.id, letter_id)
    if shown is None:
        raise PageNotFound()
    return dash.page(request, "letter", letter=shown, reasons=dash.settings.reject_reasons)


async def show_audit(request: Request) -> Response:
    dash = dashboard_of(request)
    visitor = dash.visitor(request)
    wanted = Search.of(request.query_params)
    event = request.query_params.get("event", "").strip()
    by = request.query_params.get("by", "").strip().lower()
    ctx = dash.context()
    entries = await dash.run(
        audit_entries, ctx, visitor.library.id, event, by, wanted.since, wanted.until
    )
    names = await dash.run(names_of, ctx)
    words = dash.pages().words(dash.language(request))
    return dash.page(
        request,
        "audit",
        entries=lines(entries, words, names),
        event=event,
        by=by,
        wanted=wanted,
        shown=SHOWN,
    )
