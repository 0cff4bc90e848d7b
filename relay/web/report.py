"""The report page: the program's figures for a period and a partnership, as tables and
charts, with the same report to download as CSV, Markdown or HTML (to print for a board),
in the signed-in staff member's language.

Every staff member signed in may see it: `relay.reports` counts without names or addresses.
The charts are PNG data URIs (`reports.charts`), which the page policy allows (`img-src
'self' data:`). Building reads every letter kept (see `reports.build`), in a thread.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response

from relay import reports
from relay.config import Config
from relay.web.dashboard import PageNotFound, dashboard_of

MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "md": "text/markdown; charset=utf-8",
    "html": "text/html; charset=utf-8",
}


@dataclass(frozen=True)
class Asked:
    """The period and partnership asked for, checked; `problem` names what was wrong."""

    start: str
    end: str
    partnership: str  # "" for every library
    # a word the page explains: "month", "order", "early", "long", "partnership"
    problem: str = ""

    @property
    def query(self) -> dict[str, str]:
        return {"from": self.start, "to": self.end, "partnership": self.partnership}


def asked(config: Config, values: dict[str, str], today: datetime) -> Asked:
    """What the form asked for; anything wrong falls back to the defaults (the twelve months
    to this one, every library) with the problem named."""
    this_month = f"{today.year:04d}-{today.month:02d}"
    default = Asked(reports.year_ending(this_month), this_month, "")
    end = values.get("to", "").strip() or this_month
    start = values.get("from", "").strip() or reports.year_ending(end)
    partnership = values.get("partnership", "").strip()
    if not (MONTH.fullmatch(start) and MONTH.fullmatch(end)):
        return Asked(default.start, default.end, "", "month")
    if start > end:
        return Asked(default.start, default.end, "", "order")
    problem = reports.period_problem(start, end)
    if problem:
        return Asked(default.start, default.end, "", problem)
    if partnership and partnership not in {p.id for p in config.partnerships}:
        return Asked(default.start, default.end, "", "partnership")
    return Asked(start, end, partnership)


def _wording(request: Request, config: Config) -> reports.Wording:
    """The signed-in staff member's language, and the libraries by name."""
    dash = dashboard_of(request)
    language = dash.language(request)
    names = {library.id: library.name for library in config.libraries}
    return reports.Wording(dash.pages().words(language), language, names)


def _asked(request: Request) -> tuple[Config, Asked]:
    config = dashboard_of(request).context().config
    return config, asked(config, dict(request.query_params), datetime.now(UTC))


async def show_report(request: Request) -> Response:
    dash = dashboard_of(request)
    dash.visitor(request)
    config, wanted = _asked(request)
    store = dash.context().store
    report = await dash.run(reports.build, config, store, *_arguments(wanted))
    wording = _wording(request, config)
    charts = await dash.run(reports.charts, report, wording)
    names = dict(wording.names)
    return dash.page(
        request,
        "report",
        wanted=wanted,
        report=report,
        charts=charts,
        names=names,
        partnerships=[
            (p.id, " ⇄ ".join(names.get(i, i) for i in p.libraries)) for p in config.partnerships
        ],
        events=reports.EVENTS,
        follow_days=reports.PROMPT_FOLLOW_DAYS,
    )


def _arguments(wanted: Asked) -> tuple[str, str, str]:
    return wanted.start, wanted.end, wanted.partnership


async def download_report(request: Request) -> Response:
    """The report as a file: csv, md, or html with its charts (to print)."""
    dash = dashboard_of(request)
    dash.visitor(request)
    form = request.path_params["form"]
    if form not in MEDIA_TYPES:
        raise PageNotFound()
    config, wanted = _asked(request)
    report = await dash.run(reports.build, config, dash.context().store, *_arguments(wanted))
    text = await dash.run(reports.render, report, form, _wording(request, config))
    scope = "-" + re.sub(r"[^A-Za-z0-9+_.-]", "-", wanted.partnership) if wanted.partnership else ""
    name = f"program-report{scope}-{wanted.start}-to-{wanted.end}.{form}"
    return Response(
        text,
        media_type=MEDIA_TYPES[form],
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
