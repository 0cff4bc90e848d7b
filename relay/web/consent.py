"""The guardian's consent page: the link in a consent request, its buttons, withdrawal.

Opening the link shows what the guardian agrees to and two buttons; only the button's POST
answers, so a mail scanner that fetches every link changes nothing (as for sign-in links).
Once consent is given, the same link shows it and offers withdrawal. No sign-in: the
token is the permission (`relay.guardians`); the form carries the visitor's CSRF token
like every form here. The page speaks the participant's language.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from relay import consent, guardians
from relay.web.dashboard import dashboard_of, program_heading
from relay.web.pages import preferred_language

_CHOICES: dict[str, consent.Answer] = {"yes": consent.GIVEN, "no": consent.DECLINED}


async def show(request: Request) -> Response:
    dash = dashboard_of(request)
    shown = await dash.run(guardians.page, dash.context(), request.path_params["token"])
    return _render(request, shown)


async def answer(request: Request) -> Response:
    dash = dashboard_of(request)
    form = await dash.form(request)
    choice = _CHOICES.get(str(form.get("answer", "")))
    token = request.path_params["token"]
    if choice is None:
        shown = await dash.run(guardians.page, dash.context(), token)
    else:
        shown = await dash.run(guardians.answer_by_link, dash.context(), token, choice)
    return _render(request, shown)


async def withdraw(request: Request) -> Response:
    dash = dashboard_of(request)
    await dash.form(request)
    token = request.path_params["token"]
    return _render(request, await dash.run(guardians.withdraw_by_link, dash.context(), token))


def _render(request: Request, shown: guardians.LinkPage) -> Response:
    dash = dashboard_of(request)
    ctx = dash.context()
    child = shown.participant
    library = ctx.config.library(child.library) if child is not None else None
    language = (
        child.language
        if child is not None
        else preferred_language(request.headers.get("accept-language", ""))
    )
    html = dash.pages().render(
        "consent",
        language,
        visitor=None,
        csrf=dash.session(request).csrf,
        path=request.url.path,
        program=program_heading(ctx.config, library),
        token=request.path_params["token"],
        state=shown.state,
        name=child.name if child is not None else "",
        library=library.name if library is not None else "",
    )
    return HTMLResponse(html, status_code=404 if shown.state == "unknown" else 200)
