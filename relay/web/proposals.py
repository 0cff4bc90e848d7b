"""The matching page: a partnership's proposed pals, edited and accepted by staff.

Staff of a partnership's libraries see the proposal `relay.matching` makes (each pair with
its reasons, and who is left without a pal and why) and edit it: drop a pair, pick another
pal for a participant, add a pair by hand. The edited proposal travels in the form and is
checked again on the server (`matching.edit`) every time, as if the page had checked
nothing. Coordinators accept: the pairs are made by `participants.accept_matches` (via
"dashboard", by the signed-in staff member), which welcomes each pair. Only first names,
ids, ages, libraries and masked addresses are shown: the page is for both libraries' staff.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from relay import matching, participants
from relay.config import Partnership
from relay.consent import youngest_age
from relay.context import Context
from relay.store.records import Participant
from relay.web.dashboard import PageNotFound, Refused, Visitor, dashboard_of, text_field

MAX_ROWS = 2000  # pairs a form may carry: more than any partnership's two libraries hold


@dataclass(frozen=True)
class Shown:
    """Everything the page shows of one partnership's proposal."""

    partnership: Partnership
    proposal: matching.Proposal
    problems: tuple[matching.PairProblem, ...]
    ages: dict[str, int | None]
    # Participant id -> display name, of those waiting for a pal at the two libraries only:
    # any other id in a problem is shown as typed (staff see nothing of other patrons).
    names: dict[str, str]
    waiting: dict[str, list[Participant]]  # library id -> participants without a pal
    libraries: dict[str, str]  # library id -> name
    override: bool

    def pals_to_pick(self, pair: matching.ProposedPair) -> list[Participant]:
        """Who may be picked as the first one's pal instead: those of the other library and
        the same kind (person or group) waiting for a pal within the age gap, and the pal
        proposed."""
        gap, age = self.proposal.settings.max_age_gap, self.ages.get(pair.first.id)
        return [
            p
            for p in self.waiting[pair.second.library]
            if p.id == pair.second.id
            or (
                p.is_group == pair.first.is_group
                and matching.within_gap(age, self.ages.get(p.id), gap)
            )
        ]


@dataclass(frozen=True)
class Accepted:
    made: list[matching.ProposedPair]
    skipped: list[matching.ProposedPair]
    welcomed: set[str]  # ids of those welcomed to their pal in a made pair
    libraries: dict[str, str]


def partnerships_of(ctx: Context, visitor: Visitor) -> list[Partnership]:
    """The partnerships of two libraries the visitor's library is in."""
    return [
        p
        for p in ctx.config.partnerships
        if visitor.library.id in p.libraries and len(p.libraries) == 2
    ]


def _partnership(ctx: Context, visitor: Visitor, wanted: str) -> Partnership:
    found = partnerships_of(ctx, visitor)
    chosen = next((p for p in found if p.id == wanted), None) if wanted else None
    if chosen is None and not wanted and found:
        chosen = found[0]
    if chosen is None:
        raise PageNotFound()
    return chosen


def _today() -> date:
    return datetime.now(UTC).date()


def _shown(
    ctx: Context,
    partnership: Partnership,
    asked: Sequence[tuple[str, str]] | None,
    override: bool,
) -> Shown:
    """Blocking: the proposal as `relay.matching` makes it (`asked` None) or as edited."""
    everyone = ctx.store.participants()
    today, settings = _today(), ctx.config.matching
    if asked is None:
        proposal = matching.propose(partnership, everyone, settings, today)
        problems: tuple[matching.PairProblem, ...] = ()
    else:
        proposal, problems = matching.edit(
            partnership, everyone, settings, today, asked, override_age_gap=override
        )
    waiting = matching.waiting_for_a_pal(everyone, partnership.libraries)
    shown_ones = [p for side in waiting.values() for p in side]
    libraries = {}
    for library_id in partnership.libraries:
        library = ctx.config.library(library_id)
        libraries[library_id] = library.name if library else library_id
    return Shown(
        partnership,
        proposal,
        problems,
        {p.id: youngest_age(p.birth_year, p.age_band, today) for p in shown_ones},
        {p.id: p.name for p in shown_ones},
        waiting,
        libraries,
        override,
    )


def asked_pairs(form: FormData) -> list[tuple[str, str]]:
    """The pairs the form asks for: each row kept (its pal perhaps changed), then the one
    added by hand."""
    try:
        rows = min(int(text_field(form, "rows") or 0), MAX_ROWS)
    except ValueError:
        rows = 0
    asked = [
        (text_field(form, f"first-{i}"), text_field(form, f"second-{i}"))
        for i in range(rows)
        if text_field(form, f"keep-{i}")
    ]
    added = (text_field(form, "add-first"), text_field(form, "add-second"))
    if all(added):
        asked.append(added)
    return asked


def _accept(
    ctx: Context, partnership: Partnership, asked: list[tuple[str, str]], override: bool, by: str
) -> Shown | Accepted:
    """Blocking: the edited proposal again, or, when every pair passes, the pairs made."""
    shown = _shown(ctx, partnership, asked, override)
    if shown.problems or not shown.proposal.pairs:
        return shown
    made, skipped = participants.accept_matches(ctx, shown.proposal, by=by, via="dashboard")
    welcomed = set()
    for pair in made:
        for one, other in ((pair.first, pair.second), (pair.second, pair.first)):
            now = ctx.store.participant(one.id)
            if now is not None and other.id in now.welcomed:
                welcomed.add(one.id)
    return Accepted(made, skipped, welcomed, shown.libraries)


async def show_matching(request: Request) -> Response:
    dash = dashboard_of(request)
    visitor = dash.visitor(request)
    ctx = dash.context()
    choices = partnerships_of(ctx, visitor)
    if not choices:
        return dash.page(request, "matching", shown=None, choices=choices, reviewed=False)
    partnership = _partnership(ctx, visitor, request.query_params.get("partnership", ""))
    shown = await dash.run(_shown, ctx, partnership, None, False)
    return dash.page(request, "matching", shown=shown, choices=choices, reviewed=False)


async def edit_matching(request: Request) -> Response:
    """Check the edited proposal again (action "review"), or accept it ("accept")."""
    dash = dashboard_of(request)
    visitor = dash.visitor(request)
    form = await dash.form(request)
    ctx = dash.context()
    partnership = _partnership(ctx, visitor, text_field(form, "partnership"))
    asked, override = asked_pairs(form), bool(text_field(form, "override"))
    choices = partnerships_of(ctx, visitor)
    if text_field(form, "action") != "accept":
        shown = await dash.run(_shown, ctx, partnership, asked, override)
        return dash.page(request, "matching", shown=shown, choices=choices, reviewed=True)
    if not visitor.staff.is_coordinator:
        raise Refused()
    outcome = await dash.run(_accept, ctx, partnership, asked, override, visitor.email)
    if isinstance(outcome, Shown):
        return dash.page(request, "matching", shown=outcome, choices=choices, reviewed=True)
    return dash.page(request, "matching_done", accepted=outcome, partnership=partnership)
