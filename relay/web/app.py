"""The dashboard as an ASGI app, and serving it with uvicorn on the relay's own event loop.

`build_app` wires routes, the error pages and the response headers every page carries
(a strict Content-Security-Policy with no inline script, no framing, no sniffing, no
referrer). `serve_web` runs uvicorn inside the caller's loop without uvicorn's signal
handlers: `serve` owns the signals and says when to stop through its `stopping` event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import Route

from relay.config_web import WebSettings
from relay.context import Context
from relay.web import (
    consent,
    files,
    history,
    people,
    privacy,
    program,
    proposals,
    queue,
    quiet,
    report,
    rights,
    sessions,
    signin,
    unsubscribe,
)
from relay.web.dashboard import (
    Dashboard,
    PageNotFound,
    Refused,
    SignInRequired,
    dashboard_of,
    see_other,
)
from relay.web.pages import static_folder

POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",  # pages carry patrons' letters; no copy on shared computers
}
STATIC = {
    "dashboard.js": "text/javascript",
    "dashboard.css": "text/css",
    "favicon.svg": "image/svg+xml",
    "favicon.ico": "image/x-icon",
}


class DashboardHeaders(BaseHTTPMiddleware):
    """Security headers on every response, and the session cookie when it changed."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        response.headers.update(HEADERS)
        session = request.scope.get("state", {}).get("session_out")
        if isinstance(session, sessions.Session):
            dash = dashboard_of(request)
            response.set_cookie(
                sessions.COOKIE,
                sessions.encode(session, sessions.session_key(dash.context().secret)),
                httponly=True,
                samesite="lax",
                secure=dash.settings.secure_cookies,
                path="/",
            )
        return response


Liveness = Callable[[], Awaitable[str | None]]


async def healthz(request: Request) -> Response:
    """For service monitors and container health checks: 200 "ok" while the relay works,
    503 with a short reason (never an address or a path) when a part of it has stopped."""
    check: Liveness | None = request.app.state.liveness
    problem = await check() if check is not None else None
    if problem is None:
        return PlainTextResponse("ok")
    return PlainTextResponse(problem, status_code=503)


async def home(request: Request) -> Response:
    dashboard_of(request).visitor(request)
    return see_other("/queue")


async def static(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in STATIC:
        raise PageNotFound()
    return FileResponse(static_folder() / name, media_type=STATIC[name])


async def favicon(request: Request) -> Response:
    """Browsers ask for /favicon.ico on their own; pages name the SVG one."""
    return FileResponse(static_folder() / "favicon.ico", media_type=STATIC["favicon.ico"])


async def _sign_in_first(request: Request, error: Exception) -> Response:
    return see_other("/login")


async def _not_found(request: Request, error: Exception) -> Response:
    return dashboard_of(request).page(request, "problem", status=404, problem="missing", detail="")


async def _refused(request: Request, error: Exception) -> Response:
    return dashboard_of(request).page(request, "problem", status=403, problem="refused", detail="")


async def _http_error(request: Request, error: Exception) -> Response:
    status = error.status_code if isinstance(error, HTTPException) else 500
    problem = "missing" if status in (404, 405) else "broken"
    return dashboard_of(request).page(request, "problem", status=status, problem=problem, detail="")


ROUTES = [
    Route("/healthz", healthz),
    Route("/static/{name}", static),
    Route("/favicon.ico", favicon),
    Route("/", home),
    Route("/login", signin.login_form),
    Route("/login", signin.request_link, methods=["POST"]),
    Route("/signin/{token}", signin.open_link),
    Route("/signin/{token}", signin.use_link, methods=["POST"]),
    Route("/logout", signin.sign_out, methods=["POST"]),
    Route("/queue", queue.show_queue),
    Route("/queue/bulk", queue.bulk_confirm),
    Route("/queue/bulk", queue.bulk_approve, methods=["POST"]),
    Route("/letters/{letter_id:int}", history.show_letter),
    Route("/letters/{letter_id:int}/files/{number:int}", files.letter_file),
    Route("/letters/{letter_id:int}/files/{number:int}/preview", files.file_preview),
    Route("/letters/{letter_id:int}/edit", queue.edit),
    Route("/letters/{letter_id:int}/approve", queue.approve, methods=["POST"]),
    Route("/letters/{letter_id:int}/reject", queue.reject, methods=["POST"]),
    Route("/letters/{letter_id:int}/edit", queue.edit_again, methods=["POST"]),
    Route("/letters/{letter_id:int}/preview", queue.preview, methods=["POST"]),
    Route("/letters/{letter_id:int}/remove-file", queue.remove_file, methods=["POST"]),
    Route("/participants", people.list_participants),
    Route("/participants", people.add_participant, methods=["POST"]),
    Route("/participants/import", people.import_form),
    Route("/participants/import", people.import_preview, methods=["POST"]),
    Route("/participants/import/confirm", people.import_confirm, methods=["POST"]),
    Route("/participants/{pid}", people.show_participant),
    Route("/participants/{pid}/status", people.change_status, methods=["POST"]),
    Route("/participants/{pid}/consent", people.change_consent, methods=["POST"]),
    Route("/participants/{pid}/details", people.edit_details, methods=["POST"]),
    Route("/participants/{pid}/pair", people.pair_pals, methods=["POST"]),
    Route("/participants/{pid}/unpair", people.unpair_pals, methods=["POST"]),
    Route("/participants/{pid}/export", rights.export_data, methods=["POST"]),
    Route("/participants/{pid}/erase", rights.confirm_erase),
    Route("/participants/{pid}/erase", rights.erase, methods=["POST"]),
    Route("/quiet", quiet.show_quiet),
    Route("/quiet/{pair}/nudge", quiet.nudge, methods=["POST"]),
    Route("/quiet/{pair}/rematch", quiet.confirm_rematch),
    Route("/quiet/{pair}/rematch", quiet.rematch, methods=["POST"]),
    Route("/history", history.show_history),
    Route("/audit", history.show_audit),
    Route("/report", report.show_report),
    Route("/report/{form}", report.download_report),
    Route("/program", program.show_program),
    Route("/matching", proposals.show_matching),
    Route("/matching", proposals.edit_matching, methods=["POST"]),
    Route("/privacy", privacy.show_privacy),
    Route("/consent/{token}", consent.show),
    Route("/consent/{token}", consent.answer, methods=["POST"]),
    Route("/consent/{token}/withdraw", consent.withdraw, methods=["POST"]),
    Route("/unsubscribe/{token}", unsubscribe.confirm),
    Route("/unsubscribe/{token}", unsubscribe.unsubscribe, methods=["POST"]),
]


def build_app(
    get_context: Callable[[], Context],
    settings: WebSettings,
    *,
    blocking: Callable[..., Awaitable[Any]],
    liveness: Liveness | None = None,
) -> Starlette:
    """The dashboard; `liveness` answers /healthz (None: alive whenever the web app is)."""
    app = Starlette(
        routes=ROUTES,
        middleware=[Middleware(DashboardHeaders)],
        exception_handlers={
            SignInRequired: _sign_in_first,
            PageNotFound: _not_found,
            Refused: _refused,
            HTTPException: _http_error,
        },
    )
    app.state.dashboard = Dashboard(get_context, settings, blocking)
    app.state.liveness = liveness
    return app


class _QuietServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the relay's own handlers stay in place


async def serve_web(
    app: Starlette,
    host: str,
    port: int,
    stopping: asyncio.Event,
    *,
    ready: Callable[[str], None] | None = None,
) -> None:
    """Serve until `stopping` is set; `ready("host:port")` once listening (port 0 works)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)  # connections made right after `ready` wait here, not get refused
    sock.setblocking(False)
    bound_port = sock.getsockname()[1]
    bound = f"[{host}]:{bound_port}" if family == socket.AF_INET6 else f"{host}:{bound_port}"
    dashboard_of_app(app).bound = bound
    config = uvicorn.Config(
        app, lifespan="off", access_log=False, log_config=None, server_header=False
    )
    # uvicorn announces itself at INFO; the relay's log keeps to the relay's own lines.
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
    server = _QuietServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name="web")
    if ready is not None:
        ready(bound)
    stop = asyncio.create_task(stopping.wait())
    await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    stop.cancel()
    await task
    sock.close()


async def start_web(
    app: Starlette, host: str, port: int, stopping: asyncio.Event
) -> tuple[asyncio.Task[None], str]:
    """Start `serve_web` in a task; return it and "host:port" once listening, or raise why not."""
    loop = asyncio.get_running_loop()
    listening: asyncio.Future[str] = loop.create_future()
    task = asyncio.create_task(
        serve_web(app, host, port, stopping, ready=listening.set_result), name="web"
    )
    either: set[asyncio.Future[Any]] = {listening, task}
    await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
    if not listening.done():
        task.result()  # raises what stopped it (an address in use, say)
        raise RuntimeError("the dashboard stopped before listening")
    return task, listening.result()


def dashboard_of_app(app: Starlette) -> Dashboard:
    found = app.state.dashboard
    if not isinstance(found, Dashboard):
        raise TypeError("the app was not built by build_app")
    return found
