"""One-click unsubscribe from the monthly topic emails (RFC 8058), and its page for people.

The link in a prompt's `List-Unsubscribe` carries a signed token naming one participant. A
mail provider's one-click POST pauses that participant's prompts at once; a person who opens
the link sees a page with a button, so that link checkers fetching it change nothing. No
sign-in and no CSRF token: the signed token is the permission, and it can only pause prompts.
"""

from __future__ import annotations

import functools

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from relay.context import Context
from relay.participants import pause_prompts
from relay.schedule.prompts import participant_of_token
from relay.web.dashboard import PageNotFound, dashboard_of, program_heading


def _language(ctx: Context, participant_id: str) -> str:
    participant = ctx.store.participant(participant_id)
    return participant.language if participant else "en"


async def confirm(request: Request) -> Response:
    return await _answer(request, pause=False)


async def unsubscribe(request: Request) -> Response:
    await request.form()  # "List-Unsubscribe=One-Click", or the page's button
    return await _answer(request, pause=True)


async def _answer(request: Request, *, pause: bool) -> Response:
    dash = dashboard_of(request)
    ctx = dash.context()
    token = request.path_params["token"]
    participant_id = participant_of_token(ctx, token)
    if participant_id is None:
        raise PageNotFound()
    if pause and not await dash.run(
        functools.partial(pause_prompts, via="web"), ctx, participant_id
    ):
        raise PageNotFound()
    language = await dash.run(_language, ctx, participant_id)
    html = dash.pages().render(
        "unsubscribe",
        language,
        visitor=None,
        csrf="",
        path=request.url.path,
        program=program_heading(ctx.config, None),
        token=token,
        done=pause,
    )
    return HTMLResponse(html)
