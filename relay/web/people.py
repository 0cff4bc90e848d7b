"""Participants and pairs of the visitor's library: find, enrol, pause, pair, unpair, import.

Staff see their own patrons in full. Patrons of the partner library appear only as pals or
pairing candidates, by display name, library and masked address: their real addresses are
never put on a page. A participant id of another library answers 404. Changes need the
moderator or coordinator role and each one is written to the audit log with who did it. A
guardian's consent is shown with its time and method; staff record consent received on
paper, send the request again, or record a withdrawal (`relay.guardians`). A group (a class
or a club) shows its members to its own library's staff, who edit them; it is offered only
groups as pals.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response

from relay import consent, guardians, participants, welcomes
from relay.context import Context
from relay.errors import InvalidField, UserError
from relay.store.records import ACTIVE, LEFT, PAUSED, Participant
from relay.web import importing
from relay.web.dashboard import (
    Dashboard,
    PageNotFound,
    Refused,
    Visitor,
    dashboard_of,
    see_other,
    text_field,
)

SHOWN = 200  # a search narrows a long list; the page says when there are more


@dataclass(frozen=True)
class Pal:
    """A patron as the other library may see them: never the real address."""

    id: str
    name: str
    library: str
    masked: str
    status: str
    group: bool = False  # a class or a club: its pal is another group


@dataclass(frozen=True)
class Patron:
    participant: Participant
    pals: tuple[Pal, ...]
    age: int | None = None  # the youngest they can be today; None when no age is recorded


def _pal(ctx: Context, participant: Participant) -> Pal:
    library = ctx.config.library(participant.library)
    name = library.name if library else participant.library
    return Pal(
        participant.id,
        participant.name,
        name,
        participant.masked,
        participant.status,
        participant.is_group,
    )


def _patron(ctx: Context, participant: Participant) -> Patron:
    pals = (ctx.store.participant(pal_id) for pal_id in participant.pals)
    today = datetime.now(UTC).date()
    age = consent.youngest_age(participant.birth_year, participant.age_band, today)
    return Patron(participant, tuple(_pal(ctx, p) for p in pals if p is not None), age)


def _matches(participant: Participant, query: str, *, by_email: bool) -> bool:
    wanted = query.strip().lower()
    fields = [participant.id, participant.name.lower(), participant.masked]
    return not wanted or any(wanted in f for f in fields + ([participant.email] * by_email))


def search_own(ctx: Context, library_id: str, query: str) -> list[Patron]:
    found = [
        p
        for p in ctx.store.participants()
        if p.library == library_id and _matches(p, query, by_email=True)
    ]
    return [_patron(ctx, p) for p in found[:SHOWN]]


def search_partners(ctx: Context, library_id: str, query: str) -> list[Pal]:
    """Pairing candidates; never searched by real address, which would confirm one exists."""
    partners = ctx.config.partners_of(library_id)
    found = [
        p
        for p in ctx.store.participants()
        if p.library in partners and p.status == ACTIVE and _matches(p, query, by_email=False)
    ]
    return [_pal(ctx, p) for p in found[:SHOWN]]


def own(ctx: Context, library_id: str, participant_id: str) -> Participant | None:
    found = ctx.store.participant(participant_id)
    return found if found is not None and found.library == library_id else None


# --- pages ---------------------------------------------------------------------------------


async def list_participants(request: Request) -> Response:
    dash = dashboard_of(request)
    visitor = dash.visitor(request)
    query = request.query_params.get("q", "")
    patrons = await dash.run(search_own, dash.context(), visitor.library.id, query)
    return dash.page(
        request,
        "participants",
        patrons=patrons,
        query=query,
        shown=SHOWN,
        done=request.query_params.get("done", ""),
        problem="",
        problem_field="",
        entered={},
    )


async def show_participant(request: Request) -> Response:
    dash = dashboard_of(request)
    visitor = dash.visitor(request)
    participant = await dash.run(
        own, dash.context(), visitor.library.id, request.path_params["pid"]
    )
    if participant is None:
        raise PageNotFound()
    return await _participant_page(request, dash, visitor, participant)


async def _participant_page(
    request: Request,
    dash: Dashboard,
    visitor: Visitor,
    participant: Participant,
    *,
    problem: UserError | None = None,
    entered: dict[str, str] | None = None,
) -> Response:
    ctx = dash.context()
    query = request.query_params.get("q", "")
    candidates = await dash.run(search_partners, ctx, visitor.library.id, query) if query else []
    return dash.page(
        request,
        "participant",
        status=400 if problem else 200,
        patron=await dash.run(_patron, ctx, participant),
        query=query,
        candidates=[
            c
            for c in candidates
            if c.id not in participant.pals and c.group == participant.is_group
        ],
        done=request.query_params.get("done", ""),
        problem=_problem_text(problem),
        problem_field=problem.field if isinstance(problem, InvalidField) else "",
        entered=entered,
    )


def _problem_text(problem: UserError | None) -> str:
    if problem is None:
        return ""
    return problem.problem if isinstance(problem, InvalidField) else str(problem)


async def _changer(request: Request) -> tuple[Dashboard, Visitor, dict[str, str]]:
    dash = dashboard_of(request)
    visitor = dash.visitor(request)
    form = await dash.form(request)
    if not visitor.can_enroll:
        raise Refused()
    return dash, visitor, {k: v.strip() for k, v in form.multi_items() if isinstance(v, str)}


def _details(fields: dict[str, str]) -> participants.Details:
    """The enrolment details of the add and edit forms (the copies box is sent when ticked)."""
    return participants.Details(
        birth_year=fields.get("birth_year", ""),
        age_band=fields.get("age_band", ""),
        interests=fields.get("interests", ""),
        guardian_name=fields.get("guardian_name", ""),
        guardian_copies=bool(fields.get("guardian_copies")),
        kind=fields.get("kind") or None,
        members=fields.get("members"),  # None: not on the form (a person's edit form)
    )


def _enroll(ctx: Context, library_id: str, fields: dict[str, str], by: str) -> Participant:
    return participants.enroll(
        ctx,
        library_id,
        fields.get("name", ""),
        fields.get("email", ""),
        language=fields.get("language") or None,
        guardian=fields.get("guardian_email") or None,
        details=_details(fields),
        by=by,
        via="web",
    )


async def add_participant(request: Request) -> Response:
    dash, visitor, fields = await _changer(request)
    try:
        added = await dash.run(_enroll, dash.context(), visitor.library.id, fields, visitor.email)
    except UserError as error:
        patrons = await dash.run(search_own, dash.context(), visitor.library.id, "")
        return dash.page(
            request,
            "participants",
            status=400,
            patrons=patrons,
            query="",
            shown=SHOWN,
            done="",
            problem=_problem_text(error),
            problem_field=error.field if isinstance(error, InvalidField) else "",
            entered=fields,
        )
    return see_other(f"/participants/{added.id}?done=added")


def _edit(ctx: Context, participant: Participant, fields: dict[str, str], by: str) -> Participant:
    if participant.is_group:  # a group's form has no guardian fields: a group has none
        details = replace(_details(fields), guardian_name=None, guardian_copies=None)
        return participants.edit(ctx, participant, details, by=by, via="web")
    guardian = fields.get("guardian_email", "")
    return participants.edit(
        ctx, participant, _details(fields), guardian=guardian, by=by, via="web"
    )


async def edit_details(request: Request) -> Response:
    dash, visitor, fields = await _changer(request)
    ctx = dash.context()
    participant = await dash.run(own, ctx, visitor.library.id, request.path_params["pid"])
    if participant is None:
        raise PageNotFound()
    try:
        await dash.run(_edit, ctx, participant, fields, visitor.email)
    except UserError as error:
        return await _participant_page(
            request, dash, visitor, participant, problem=error, entered=fields
        )
    return see_other(f"/participants/{participant.id}?done=details")


_STATUS_CHANGES: dict[str, Callable[..., Participant]] = {
    ACTIVE: participants.resume,
    PAUSED: participants.pause,
    LEFT: participants.leave,
}


def _set_status(ctx: Context, library_id: str, pid: str, status: str, by: str) -> bool:
    participant = own(ctx, library_id, pid)
    if participant is None:
        return False
    try:
        _STATUS_CHANGES[status](ctx, participant, by=by, via="web")
    except UserError:
        return False  # pausing someone who left: the page never offers it
    return True


async def change_status(request: Request) -> Response:
    dash, visitor, fields = await _changer(request)
    pid = request.path_params["pid"]
    status = fields.get("status", "")
    if status not in _STATUS_CHANGES:
        raise PageNotFound()
    if not await dash.run(
        _set_status, dash.context(), visitor.library.id, pid, status, visitor.email
    ):
        raise PageNotFound()
    return see_other(f"/participants/{pid}?done={status}")


def _consent(ctx: Context, library_id: str, pid: str, action: str, by: str) -> bool:
    """Record consent received on paper, ask the guardian again, or record a withdrawal."""
    participant = own(ctx, library_id, pid)
    if participant is None:
        return False
    try:
        if action == "paper":
            guardians.give(ctx, participant, method="paper", by=by, via="web")
        elif action == "ask":
            guardians.ask(ctx, participant, by=by, via="web")
        else:
            guardians.withdraw(ctx, participant, by=by, via="web")
    except UserError:
        return False  # nothing to ask or record: the page never offers it
    return True


async def change_consent(request: Request) -> Response:
    dash, visitor, fields = await _changer(request)
    pid = request.path_params["pid"]
    action = fields.get("action", "")
    if action not in ("paper", "ask", "withdraw"):
        raise PageNotFound()
    if not await dash.run(_consent, dash.context(), visitor.library.id, pid, action, visitor.email):
        raise PageNotFound()
    return see_other(f"/participants/{pid}?done=consent_{action}")


def _pairing(ctx: Context, library_id: str, pid: str, pal_id: str, *, make: bool, by: str) -> bool:
    """Make or end a pairing between one of our patrons and a partner library's patron."""
    participant = own(ctx, library_id, pid)
    pal = ctx.store.participant(pal_id)
    if participant is None or pal is None or pal.library not in ctx.config.partners_of(library_id):
        return False
    change = participants.pair if make else participants.unpair
    try:
        change(ctx, participant, pal, by=by, via="web")
    except UserError:
        return False  # not pals, or one of them has left
    if make:
        welcomes.welcome(ctx, participant, pal, by=by, via="web")
    return True


async def pair_pals(request: Request) -> Response:
    return await _change_pairing(request, make=True)


async def unpair_pals(request: Request) -> Response:
    return await _change_pairing(request, make=False)


async def _change_pairing(request: Request, *, make: bool) -> Response:
    dash, visitor, fields = await _changer(request)
    pid = request.path_params["pid"]
    changed = await dash.run(
        lambda: _pairing(
            dash.context(),
            visitor.library.id,
            pid,
            fields.get("pal", ""),
            make=make,
            by=visitor.email,
        )
    )
    if not changed:
        raise PageNotFound()
    return see_other(f"/participants/{pid}?done={'paired' if make else 'unpaired'}")


# --- import --------------------------------------------------------------------------------


async def import_form(request: Request) -> Response:
    dash = dashboard_of(request)
    visitor = dash.visitor(request)
    if not visitor.can_enroll:
        raise Refused()
    return dash.page(request, "import", columns=importing.COLUMNS, limit=importing.MAX_ROWS)


async def import_preview(request: Request) -> Response:
    dash = dashboard_of(request)
    visitor = dash.visitor(request)
    form = await dash.form(request)
    if not visitor.can_enroll:
        raise Refused()
    upload = form.get("file")
    raw = await upload.read() if upload is not None and not isinstance(upload, str) else b""
    text = importing.decoded(raw) if raw else text_field(form, "text")
    checked = await dash.run(importing.plan, dash.context(), visitor.library.id, text)
    return dash.page(request, "import_preview", plan=checked, text=text)


async def import_confirm(request: Request) -> Response:
    dash = dashboard_of(request)
    visitor = dash.visitor(request)
    form = await dash.form(request)
    if not visitor.can_enroll:
        raise Refused()
    created, checked = await dash.run(
        importing.create,
        dash.context(),
        visitor.library.id,
        text_field(form, "text"),
        visitor.email,
    )
    return dash.page(request, "import_done", created=created, plan=checked)
