"""The public privacy notice: `/privacy`, no sign-in, in the language asked for
(`?lang=es`) or the browser's, written from the configuration (libraries, retention)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from relay import notices
from relay.web.dashboard import dashboard_of, program_heading
from relay.web.pages import LANGUAGES, preferred_language


async def show_privacy(request: Request) -> Response:
    dash = dashboard_of(request)
    ctx = dash.context()
    asked = request.query_params.get("lang", "").lower().split("-")[0]
    language = (
        asked
        if asked in LANGUAGES
        else preferred_language(request.headers.get("accept-language", ""))
    )
    html = dash.pages().render(
        "privacy",
        language,
        visitor=None,
        csrf="",
        path=request.url.path,
        program=program_heading(ctx.config, None),
        **notices.privacy_values(ctx, language),
    )
    return HTMLResponse(html)
