"""The dashboard's quiet pairs: the library's pairs where nobody has written for
`[matching] quiet_weeks`, and one action on each (relay.quiet).

Any signed-in staff member of a library sees the quiet pairs with one of its participants
(first names, ids and masked addresses: never the partner library's real addresses).
Moderators and coordinators (who pair and unpair) may nudge their own library's patron
who owes a letter (a kind email, once per quiet period; a second click says when it was
nudged; where only the partner library's patron owes, the page says that library may
nudge them) or re-match the pair after a confirmation page (the pairing ends for both, and
`penpal-relay match` may give both a new pal). Any other pair answers 404.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from relay import quiet
from relay.errors import NotFound
from relay.web.dashboard import PageNotFound, Refused, Visitor, dashboard_of, see_other


async def show_quiet(request: Request) -> Response:
    dash = dashboard_of(request)
    visitor = dash.visitor(request)
    pairs = await dash.run(
        lambda: quiet.read(dash.context(), datetime.now(UTC), library_id=visitor.library.id)
    )
    shown = {pair.key: pair for pair in pairs}
    params = request.query_params
    return dash.page(
        request,
        "quiet",
        pairs=pairs,
        weeks=dash.context().config.matching.quiet_weeks,
        library_names={library.id: library.name for library in dash.context().config.libraries},
        nudged=shown.get(params.get("nudged", "")),
        already=shown.get(params.get("already", "")),
        rematched=await dash.run(
            lambda: quiet.ended(dash.context(), params.get("rematched", ""), visitor.library.id)
        ),
    )


def _may_act(visitor: Visitor) -> None:
    if not visitor.can_enroll:
        raise Refused()


async def nudge(request: Request) -> Response:
    dash = dashboard_of(request)
    visitor = dash.visitor(request)
    await dash.form(request)
    _may_act(visitor)
    key = request.path_params["pair"]

    def send() -> str:
        try:
            quiet.nudge(dash.context(), key, visitor.library.id, by=visitor.email, via="web")
        except quiet.AlreadyNudged:
            return f"/quiet?already={key}#pair-{key}"
        except quiet.NotOurs:
            return "refused"
        except NotFound:
            return ""
        return f"/quiet?nudged={key}#pair-{key}"

    to = await dash.run(send)
    if to == "refused":
        raise Refused()
    if not to:
        raise PageNotFound()
    return see_other(to)


async def confirm_rematch(request: Request) -> Response:
    dash = dashboard_of(request)
    visitor = dash.visitor(request)
    _may_act(visitor)
    key = request.path_params["pair"]

    def found() -> quiet.QuietPair | None:
        try:
            return quiet.one(dash.context(), key, datetime.now(UTC), visitor.library.id)
        except NotFound:
            return None

    pair = await dash.run(found)
    if pair is None:
        raise PageNotFound()
    return dash.page(request, "quiet_rematch", pair=pair)


async def rematch(request: Request) -> Response:
    dash = dashboard_of(request)
    visitor = dash.visitor(request)
    await dash.form(request)
    _may_act(visitor)
    key = request.path_params["pair"]

    def end() -> quiet.QuietPair | None:
        try:
            return quiet.rematch(dash.context(), key, visitor.library.id, by=visitor.email)
        except NotFound:
            return None

    pair = await dash.run(end)
    if pair is None:
        raise PageNotFound()
    return see_other(f"/quiet?rematched={quote(pair.key)}")
