"""Sign-in pages: ask for a link, open it, confirm, sign out.

The "check your email" page is the same whether or not the address is listed, so the form
tells nobody who works where. Opening a link shows a button rather than signing in at once:
mail scanners that fetch every link in a message would otherwise use it up.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from relay.web import magic, sessions
from relay.web.dashboard import dashboard_of, see_other, text_field


async def login_form(request: Request) -> Response:
    dash = dashboard_of(request)
    if dash.session(request).signed_in:
        return see_other("/queue")
    return dash.page(request, "login")


async def request_link(request: Request) -> Response:
    dash = dashboard_of(request)
    form = await dash.form(request)
    email = text_field(form, "email").lower()
    client = request.client.host if request.client else "unknown"
    if not dash.attempts.allow(f"address:{email}", f"client:{client}"):
        return dash.page(request, "rate_limited", status=429, minutes=magic.LINK_MINUTES)
    if email:
        await dash.run(magic.send_link, dash.context(), email, dash.base_url())
    return dash.page(request, "login_sent", email=email, minutes=magic.LINK_MINUTES)


async def open_link(request: Request) -> Response:
    dash = dashboard_of(request)
    token = request.path_params["token"]
    use = await dash.run(magic.check_link, dash.context(), token)
    if use.refused:
        return dash.page(request, "link_refused", status=410, refused=use.refused)
    return dash.page(request, "signin", token=token)


async def use_link(request: Request) -> Response:
    dash = dashboard_of(request)
    await dash.form(request)
    use = await dash.run(magic.use_link, dash.context(), request.path_params["token"])
    if use.refused:
        return dash.page(request, "link_refused", status=410, refused=use.refused)
    dash.start_session(request, sessions.signed_in(use.email, use.library))
    return see_other("/queue")


async def sign_out(request: Request) -> Response:
    dash = dashboard_of(request)
    await dash.form(request)
    dash.start_session(request, sessions.anonymous())
    return see_other("/login")
