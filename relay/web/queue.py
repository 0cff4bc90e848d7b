"""The queue pages: letters waiting for the visitor's library, and the decisions on them.

Only moderators decide (coordinators see the queue too). Every decision goes through
`relay.letters`, the same code as the CLI and email replies, with `via="dashboard"`, so
the rules (held letters only, a reason for every rejection) and the audit are the same.
Before deciding, a moderator may remove one file (the letter stays held); an edit is shown
as it will be sent (`preview`) and approved from there, or taken back to the form.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response

from relay import letters
from relay.context import Context
from relay.errors import InvalidField, UserError
from relay.web.dashboard import (
    Dashboard,
    PageNotFound,
    Refused,
    Visitor,
    dashboard_of,
    see_other,
)
from relay.web.letters import LetterView, edit_preview, of_library, view, waiting


async def show_queue(request: Request) -> Response:
    dash = dashboard_of(request)
    visitor = dash.visitor(request)
    letters = await dash.run(waiting, dash.context(), visitor.library.id)
    return dash.page(
        request,
        "queue",
        letters=letters,
        reasons=dash.settings.reject_reasons,
        done=request.query_params.get("done", ""),
        done_letter=request.query_params.get("letter", ""),
        count=request.query_params.get("count", ""),
    )


async def _held_view(dash: Dashboard, visitor: Visitor, letter_id: int) -> LetterView:
    ctx = dash.context()
    letter = await dash.run(of_library, ctx, visitor.library.id, letter_id)
    if letter is None:
        raise PageNotFound()
    found: LetterView = await dash.run(view, ctx, letter)
    return found


async def _decider(request: Request) -> tuple[Dashboard, Visitor, dict[str, str], int]:
    dash = dashboard_of(request)
    visitor = dash.visitor(request)
    form = await dash.form(request)
    if not visitor.can_decide:
        raise Refused()
    letter_id = int(request.path_params["letter_id"])
    if await dash.run(of_library, dash.context(), visitor.library.id, letter_id) is None:
        raise PageNotFound()
    fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
    return dash, visitor, fields, letter_id


async def _attempt(
    request: Request, dash: Dashboard, decide: Callable[..., object], *args: object
) -> Response | None:
    """Run a decision; one already taken by someone else gets a page saying so, one that
    could not be carried out (a pal away, a file not in the letter) a page saying why."""
    try:
        await dash.run(decide, *args)
    except letters.PalAway as away:  # in the moderator's words: who keeps it, and why
        not_sent = f"{away.role}-{away.why}"
        return dash.page(
            request,
            "problem",
            status=409,
            problem="not_done",
            detail="",
            not_sent=not_sent,
            away_name=away.away.name,
        )
    except (letters.Changed, InvalidField) as error:
        return dash.page(request, "problem", status=409, problem="not_done", detail=str(error))
    except UserError as error:
        return dash.page(request, "problem", status=409, problem="decided", detail=str(error))
    return None


def _edited_text(fields: dict[str, str]) -> str | None:
    edited = fields.get("edited_text")
    # Browsers submit textarea lines with CRLF; letters are stored with plain newlines.
    return edited.replace("\r\n", "\n") if edited is not None else None


async def approve(request: Request) -> Response:
    dash, visitor, fields, letter_id = await _decider(request)
    edited_text = _edited_text(fields)
    redact = fields.get("redact") == "1"
    answer = await _attempt(
        request, dash, _approve, dash.context(), letter_id, visitor.email, edited_text, redact
    )
    if answer is not None:
        return answer
    done = "edited" if edited_text is not None else "redacted" if redact else "approved"
    return see_other(f"/queue?done={done}&letter={letter_id}")


def _approve(ctx: Context, letter_id: int, by: str, edited_text: str | None, redact: bool) -> None:
    letters.approve(ctx, letter_id, by, via="dashboard", edited_text=edited_text, redact=redact)


async def remove_file(request: Request) -> Response:
    """Take one file out of a held letter; the letter stays in the queue."""
    dash, visitor, fields, letter_id = await _decider(request)
    which = fields.get("file", "")
    answer = await _attempt(
        request, dash, _remove_file, dash.context(), letter_id, visitor.email, which
    )
    if answer is not None:
        return answer
    return see_other(f"/queue?done=file_removed&letter={letter_id}#letter-{letter_id}")


def _remove_file(ctx: Context, letter_id: int, by: str, which: str) -> None:
    letters.remove_file(ctx, letter_id, by, which, via="dashboard")


async def preview(request: Request) -> Response:
    """The edit form posts here: the letter as the edit would deliver it, before approving."""
    dash, visitor, fields, letter_id = await _decider(request)
    edited_text = _edited_text(fields) or ""
    ctx = dash.context()
    letter = await dash.run(of_library, ctx, visitor.library.id, letter_id)
    if letter is None:
        raise PageNotFound()
    if letter.status != "held" or not edited_text.strip():
        return dash.page(request, "problem", status=409, problem="decided", detail="")
    shown = await dash.run(edit_preview, ctx, letter, visitor.email, edited_text)
    return dash.page(request, "preview", preview=shown)


async def edit_again(request: Request) -> Response:
    """Back from the preview to the edit form, with the moderator's text as they left it."""
    dash, visitor, fields, letter_id = await _decider(request)
    letter = await _held_view(dash, visitor, letter_id)
    if letter.letter.status != "held":
        return dash.page(request, "problem", status=409, problem="decided", detail="")
    return dash.page(request, "edit", letter=letter, text=_edited_text(fields) or letter.text)


async def reject(request: Request) -> Response:
    dash, visitor, fields, letter_id = await _decider(request)
    reason = fields.get("reason_text", "").strip() or fields.get("reason_choice", "").strip()
    if not reason:
        return dash.page(request, "problem", status=400, problem="reason", detail="")
    answer = await _attempt(
        request, dash, letters.reject, dash.context(), letter_id, visitor.email, reason
    )
    if answer is not None:
        return answer
    return see_other(f"/queue?done=rejected&letter={letter_id}")


async def edit(request: Request) -> Response:
    dash = dashboard_of(request)
    visitor = dash.visitor(request)
    if not visitor.can_decide:
        raise Refused()
    letter = await _held_view(dash, visitor, int(request.path_params["letter_id"]))
    if letter.letter.status != "held":
        return dash.page(request, "problem", status=409, problem="decided", detail="")
    return dash.page(request, "edit", letter=letter, text=letter.text)


def _unflagged(ctx: Context, library_id: str) -> list[LetterView]:
    return [letter for letter in waiting(ctx, library_id) if not letter.has_flags]


async def bulk_confirm(request: Request) -> Response:
    dash = dashboard_of(request)
    visitor = dash.visitor(request)
    if not visitor.can_decide:
        raise Refused()
    letters = await dash.run(_unflagged, dash.context(), visitor.library.id)
    return dash.page(request, "bulk", letters=letters)


def _approve_unflagged(ctx: Context, library_id: str, by: str, chosen: set[int]) -> int:
    """Approve the confirmed letters that are still held and still carry no flag."""
    approved = 0
    for letter in ctx.store.queue(library_id):
        if letter.id in chosen and not letter.flags:
            try:
                letters.approve(ctx, letter.id, by, via="dashboard-bulk")
            except UserError:
                continue  # decided by someone else meanwhile
            approved += 1
    return approved


async def bulk_approve(request: Request) -> Response:
    dash = dashboard_of(request)
    visitor = dash.visitor(request)
    form = await dash.form(request)
    if not visitor.can_decide:
        raise Refused()
    chosen = {int(v) for v in form.getlist("letter") if isinstance(v, str) and v.isdigit()}
    count = await dash.run(
        _approve_unflagged, dash.context(), visitor.library.id, visitor.email, chosen
    )
    return see_other(f"/queue?done=bulk&count={count}")
