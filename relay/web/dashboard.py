"""What every dashboard page shares: the context, the visitor, forms, and rendering.

One `Dashboard` lives in the Starlette app's state. Handlers ask it who is visiting (a
signed-in staff member of one library, or nobody), for a form whose CSRF token has been
checked, and to render a page in the visitor's language. Session cookies to send back are
left in the request scope; the middleware in `relay.web.app` writes them on the response.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse

from relay.config import Config, Library, Staff
from relay.config_web import WebSettings
from relay.context import Context
from relay.web import sessions
from relay.web.magic import AttemptLimit
from relay.web.pages import Pages, preferred_language
from relay.web.sessions import Session
from relay.web.times import Calendar, Clock

MAX_FORM_BYTES = 2 * 1024 * 1024  # a CSV of a few thousand patrons fits comfortably


class SignInRequired(Exception):
    """No valid session: the visitor is sent to the sign-in page."""


class PageNotFound(Exception):
    """Unknown, or belongs to another library: both answer 404, so ids reveal nothing."""


class Refused(Exception):
    """A missing CSRF token, or a role that may not do this: 403."""


@dataclass(frozen=True)
class Visitor:
    session: Session
    library: Library
    staff: Staff

    @property
    def email(self) -> str:
        return self.staff.email

    @property
    def can_decide(self) -> bool:
        return self.staff.is_moderator

    @property
    def can_enroll(self) -> bool:
        return self.staff.is_moderator or self.staff.is_coordinator


class Dashboard:
    def __init__(
        self,
        get_context: Callable[[], Context],
        settings: WebSettings,
        blocking: Callable[..., Awaitable[Any]],
    ) -> None:
        self.get_context = get_context
        self.settings = settings
        self.blocking = blocking
        self.attempts = AttemptLimit()
        self.bound = settings.listen  # the real address once listening (port 0 in tests)
        self._pages: dict[Path | None, Pages] = {}

    # --- context and work ----------------------------------------------------------------

    def context(self) -> Context:
        return self.get_context()

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await self.blocking(fn, *args)

    def base_url(self) -> str:
        return self.settings.public_url or f"http://{self.bound}"

    def pages(self) -> Pages:
        override = self.context().config.relay.templates_dir
        if override not in self._pages:
            self._pages[override] = Pages(override)
        return self._pages[override]

    # --- who is visiting -----------------------------------------------------------------

    def session(self, request: Request) -> Session:
        state = request.scope.setdefault("state", {})
        if "session" in state:
            found: Session = state["session"]
            return found
        key = sessions.session_key(self.context().secret)
        now = time.time()
        idle = self.settings.session_idle_minutes * 60
        cookie = request.cookies.get(sessions.COOKIE, "")
        session = sessions.decode(cookie, key, idle_seconds=idle, now=now) if cookie else None
        if session is None:
            session = sessions.anonymous(now)
            state["session_out"] = session
        elif now - session.seen > sessions.REFRESH_SECONDS:
            session = session.touched(now)
            state["session_out"] = session
        state["session"] = session
        return session

    def start_session(self, request: Request, session: Session) -> None:
        state = request.scope.setdefault("state", {})
        state["session"] = state["session_out"] = session

    def visitor(self, request: Request) -> Visitor:
        session = self.session(request)
        library = self.context().config.library(session.library) if session.signed_in else None
        staff = library.staff_member(session.email) if library else None
        if library is None or staff is None:
            raise SignInRequired()  # also when the address left the config since sign-in
        return Visitor(session, library, staff)

    def language(self, request: Request) -> str:
        try:
            return self.visitor(request).staff.language
        except SignInRequired:
            return preferred_language(request.headers.get("accept-language", ""))

    # --- forms and pages -----------------------------------------------------------------

    async def form(self, request: Request) -> FormData:
        """The submitted form, once its CSRF token matches the session's."""
        form = await request.form(max_part_size=MAX_FORM_BYTES)
        token = form.get("csrf")
        if not isinstance(token, str) or not sessions.csrf_ok(self.session(request), token):
            raise Refused()
        return form

    def page(
        self, request: Request, name: str, *, status: int = 200, **values: Any
    ) -> HTMLResponse:
        try:
            visitor: Visitor | None = self.visitor(request)
        except SignInRequired:
            visitor = None
        language = self.language(request)
        config = self.context().config
        library = visitor.library if visitor is not None else None
        html = self.pages().render(
            name,
            language,
            visitor=visitor,
            csrf=self.session(request).csrf,
            path=request.url.path,
            program=program_heading(config, library),
            clock=self.clock(language, library),
            **values,
        )
        return HTMLResponse(html, status_code=status)

    def clock(self, language: str, library: Library | None) -> Clock:
        """Times in the visitor's library's zone, named in their language (UTC signed out)."""
        calendar = Calendar.of(self.pages().words(language))
        return Clock(library.timezone if library is not None else "UTC", calendar)


def program_heading(config: Config, library: Library | None) -> str:
    """The program's name; without one configured, the names of the libraries in it."""
    if config.relay.program_named:
        return config.relay.program_name
    ids = (library.id, *config.partners_of(library.id)) if library else ()
    found = [config.library(i) for i in ids] if ids else list(config.libraries)
    names = [lib.name for lib in found if lib is not None]
    return " & ".join(names) or config.relay.program_name


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def dashboard_of(request: Request) -> Dashboard:
    found = request.app.state.dashboard
    if not isinstance(found, Dashboard):
        raise TypeError("the app was not built by relay.web.app.build_app")
    return found


def text_field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""
