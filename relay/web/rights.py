"""A participant's data rights on the dashboard: download their data, erase them.

Both act only on a patron of the visitor's own library (any other id answers 404). Any
signed-in staff member of that library may download the zip (`relay.rights.export`); only
a coordinator may erase, after a confirmation page that says what goes and who is told
(`relay.rights.erase` tells both libraries' moderators, naming the coordinator). Each is
audited with who did it.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from relay import rights
from relay.context import Context
from relay.rights.erase import Erased, Preview
from relay.web.dashboard import PageNotFound, Refused, Visitor, dashboard_of
from relay.web.people import own


def _zip(ctx: Context, library_id: str, pid: str, by: str) -> tuple[str, bytes] | None:
    participant = own(ctx, library_id, pid)
    if participant is None:
        return None
    return participant.id, rights.export(ctx, participant, by=by, via="web")


async def export_data(request: Request) -> Response:
    dash = dashboard_of(request)
    visitor = dash.visitor(request)
    await dash.form(request)  # the CSRF token: a download is a recorded act
    found = await dash.run(
        _zip, dash.context(), visitor.library.id, request.path_params["pid"], visitor.email
    )
    if found is None:
        raise PageNotFound()
    pid, data = found
    return Response(
        data,
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="{pid}-data.zip"',
            "Cache-Control": "no-store",
        },
    )


def _coordinator(visitor: Visitor) -> None:
    if not visitor.staff.is_coordinator:
        raise Refused()


def _preview(ctx: Context, library_id: str, pid: str) -> Preview | None:
    participant = own(ctx, library_id, pid)
    return rights.erasure_preview(ctx, participant) if participant is not None else None


async def confirm_erase(request: Request) -> Response:
    dash = dashboard_of(request)
    visitor = dash.visitor(request)
    _coordinator(visitor)
    preview = await dash.run(
        _preview, dash.context(), visitor.library.id, request.path_params["pid"]
    )
    if preview is None:
        raise PageNotFound()
    return dash.page(request, "erase", preview=preview)


def _erase(ctx: Context, library_id: str, pid: str, by: str) -> Erased | None:
    participant = own(ctx, library_id, pid)
    return rights.erase(ctx, participant, by=by, via="web") if participant else None


async def erase(request: Request) -> Response:
    dash = dashboard_of(request)
    visitor = dash.visitor(request)
    await dash.form(request)
    _coordinator(visitor)
    erased = await dash.run(
        _erase, dash.context(), visitor.library.id, request.path_params["pid"], visitor.email
    )
    if erased is None:
        raise PageNotFound()
    return dash.page(request, "erased", erased=erased)
