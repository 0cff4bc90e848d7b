"""The program page: the configuration in effect, read-only, and whether the file on disk
would load now.

Only what staff need to see: libraries, staff names and roles, partnerships, how letters
leave and how long what is kept stays ([retention], with the patrons' privacy notice). Never
a password, password file or staff member's address.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response

from relay import config as config_module
from relay.errors import ConfigError
from relay.schedule import digests, prompts
from relay.web.dashboard import dashboard_of


def problems_on_disk(path: Path) -> list[str]:
    """Blocking: validate the file as it is now (it may differ from what is running)."""
    try:
        config_module.load(path)
    except ConfigError as error:
        return list(error.problems)
    return []


async def show_program(request: Request) -> Response:
    dash = dashboard_of(request)
    visitor = dash.visitor(request)
    config = dash.context().config
    problems = await dash.run(problems_on_disk, config.path)
    names = {library.id: library.name for library in config.libraries}
    now = datetime.now(UTC)
    upcoming = prompts.next_prompt(config, visitor.library, now)
    digest = digests.next_digest(config.newsletter, visitor.library, now)
    return dash.page(
        request,
        "program",
        config=config,
        names=names,
        problems=problems,
        next_prompt=upcoming,
        next_digest=digest,
    )
