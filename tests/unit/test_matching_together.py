"""Two children writing together (`[matching] uneven = "together"`): who is teamed with whom
in a proposal of two classes of 30 and 27, the team made and ended on a real store (by
unpairing, leaving, erasing its pal), the copies held back from a teammate paused since
approval, and the proposal as `match --json` shows it."""

from __future__ import annotations

import json
import time
from collections import Counter
from email.headerregistry import Address
from pathlib import Path

import pytest

from relay import cli, matching, outcomes, participants, rights
from relay import config as config_module
from relay.config import MatchingSettings, Partnership
from relay.context import Context, open_context
from relay.errors import UserError
from relay.letters.delivering import copy_ids, teammate_of
from relay.outbox import GuardianCopy, LetterCopy, TeammateCopy, door, worker
from relay.store.records import Letter, Participant
from tests.conftest import config_text
from tests.support.classes import two_classes
from tests.support.people import TODAY, person

PARTNERSHIP = Partnership("riverside+valparaiso", ("riverside", "valparaiso"))
TOGETHER = MatchingSettings(uneven="together")
PARENT = "lucia.parent@example.net"


def _classes() -> list[Participant]:
    """The two classes of tests/support/classes.py as records (riverside p1-p30)."""
    return [
        Participant(
            id=f"p{number}",
            library=child.library,
            name=child.name,
            email=child.email,
            language=child.language,
            masked=f"masked-{number}@pals.example.org",
            birth_year=child.birth_year,
            interests=tuple(i.strip() for i in child.interests.split(",")),
        )
        for number, child in enumerate(two_classes(TODAY.year), start=1)
    ]


def _teams(proposal: matching.Proposal) -> list[tuple[str, str, str]]:
    """(the one left over, their teammate, their pal) per team."""
    found = []
    for pair in proposal.pairs:
        if pair.teammate is not None:
            one, pal = (
                (pair.first, pair.second)
                if pair.first.library == pair.teammate.library
                else (pair.second, pair.first)
            )
            found.append((one.id, pair.teammate.id, pal.id))
    return found


def test_thirty_and_twenty_seven_all_have_a_pal_and_three_write_together() -> None:
    people = _classes()
    proposal = matching.propose(PARTNERSHIP, people, TOGETHER, TODAY)
    by_id = {p.id: p for p in people}
    pals: dict[str, set[str]] = {p.id: set() for p in people}
    for pair in proposal.pairs:
        pals[pair.first.id].add(pair.second.id)
        pals[pair.second.id].add(pair.first.id)
    assert proposal.unmatched == ()
    assert all(len(pals[p.id]) == 1 for p in people if p.library == "riverside")
    assert Counter(len(pals[p.id]) for p in people if p.library == "valparaiso") == {1: 24, 2: 3}

    teams = _teams(proposal)
    assert len(teams) == 3
    members = [member for one, mate, _ in teams for member in (one, mate)]
    assert len(set(members)) == 6  # no one in two teams
    for one, mate, pal in teams:
        assert by_id[one].library == by_id[mate].library == "riverside"
        assert pals[mate] == {pal} and pals[one] == {pal}  # they write to the teammate's pal
        assert pals[pal] == {one, mate}
        gap = abs(by_id[one].birth_year - by_id[pal].birth_year)
        assert gap <= TOGETHER.max_age_gap

    words = [matching.explain(p) for p in proposal.pairs if p.teammate is not None]
    assert words == [
        "Daniel and Leo write together to Antonella; both 11; Antonella is learning English; "
        "both like music and dance",
        "Samuel and Noah write together to Josefa; both 9; both like space",
        "Nora and Emma write together to Joaquín; both 10; both like books and chess",
    ]
    # The same children in another order give the same proposal.
    again = matching.propose(PARTNERSHIP, list(reversed(people)), TOGETHER, TODAY)
    assert again == proposal


def test_teams_form_on_the_larger_side_and_not_beyond_the_age_gap() -> None:
    people = [
        person(1, "riverside", 10),
        person(2, "valparaiso", 10, interests=("chess",)),
        person(3, "valparaiso", 11, interests=("art",)),
        person(
            4, "valparaiso", 10, interests=("art",)
        ),  # left over: teamed with p3, who shares "art"
        person(5, "valparaiso", 16),  # no one of age at riverside
    ]
    people.append(person(6, "riverside", 11))
    proposal = matching.propose(PARTNERSHIP, people, TOGETHER, TODAY)
    assert _teams(proposal) == [("p4", "p3", "p6")]
    assert [(u.participant.id, u.reason) for u in proposal.unmatched] == [("p5", "age-gap")]
    assert [p.writes_to_two for p in proposal.pairs] == ["", "", ""]


@pytest.fixture
def ctx(tmp_path: Path) -> Context:
    path = tmp_path / "config.toml"
    path.write_text(config_text(tmp_path / "data"))
    return open_context(config_module.load(path))


def _enrol(ctx: Context, library: str, name: str, age: int) -> Participant:
    details = participants.Details(birth_year=TODAY.year - age - 1, interests="")
    return participants.enroll(ctx, library, name, f"{name.lower()}@example.org", details=details)


def test_an_accepted_team_writes_together_until_unpaired_or_one_leaves(ctx: Context) -> None:
    maya, leo, zoe = (_enrol(ctx, "riverside", name, 20) for name in ("Maya", "Leo", "Zoe"))
    tomas, _ = (_enrol(ctx, "valparaiso", name, 20) for name in ("Tomas", "Lucia"))
    proposal = matching.propose(PARTNERSHIP, ctx.store.participants(), TOGETHER, TODAY)
    assert _teams(proposal) == [(zoe.id, maya.id, tomas.id)]
    made, skipped = participants.accept_matches(ctx, proposal, by="ana@example.org")
    assert (len(made), skipped) == (3, [])

    def now(who: Participant) -> Participant:
        found = ctx.store.participant(who.id)
        assert found is not None
        return found

    assert now(tomas).pals == (maya.id, zoe.id)
    assert (now(maya).writes_with, now(zoe).writes_with) == (zoe.id, maya.id)
    assert now(zoe).pals == (tomas.id,) and now(leo).writes_with == ""
    teamed = [e for e in ctx.store.audit_log() if e["event"] == "teamed"]
    assert [(e["participants"], e["via"], e["by"]) for e in teamed] == [
        ([zoe.id, maya.id], "match", "ana@example.org")
    ]
    # Records written before teams existed read as no team.
    old = {k: v for k, v in now(maya).to_dict().items() if k != "writes_with"}
    assert Participant.from_dict(old).writes_with == ""

    participants.unpair(ctx, now(zoe), now(tomas), by="ana@example.org")
    assert (now(maya).writes_with, now(zoe).writes_with) == ("", "")
    assert now(maya).pals == (tomas.id,) and now(tomas).pals == (maya.id,)
    ended = [e for e in ctx.store.audit_log() if e["event"] == "team-ended"]
    assert [e["participants"] for e in ended] == [[zoe.id, maya.id]]

    participants.pair(ctx, now(zoe), now(tomas))
    ctx.store.team(now(zoe), now(maya))
    assert teammate_of(ctx, now(zoe), now(tomas)) == now(maya)
    participants.pause(ctx, now(maya))  # no copy while paused; the team stays
    assert teammate_of(ctx, now(zoe), now(tomas)) is None
    participants.resume(ctx, now(maya))
    participants.leave(ctx, now(maya))
    assert (now(maya).writes_with, now(zoe).writes_with) == ("", "")
    assert now(zoe).pals == (tomas.id,)  # the other keeps the pal
    assert teammate_of(ctx, now(zoe), now(tomas)) is None

    ctx.store.team(now(zoe), now(leo))  # erasing one ends the team too
    ctx.store.remove_participant(leo.id, [])
    assert now(zoe).writes_with == ""


def _now(ctx: Context, who: Participant) -> Participant:
    found = ctx.store.participant(who.id)
    assert found is not None
    return found


def test_unpairing_from_a_second_pal_keeps_the_team_writing_to_the_first(ctx: Context) -> None:
    maya, leo = (_enrol(ctx, "riverside", name, 20) for name in ("Maya", "Leo"))
    tomas, ines = (_enrol(ctx, "valparaiso", name, 20) for name in ("Tomas", "Ines"))
    participants.pair(ctx, maya, tomas)
    participants.pair(ctx, leo, tomas)
    ctx.store.team(_now(ctx, maya), _now(ctx, leo))
    participants.pair(ctx, _now(ctx, maya), ines)
    participants.unpair(ctx, _now(ctx, maya), _now(ctx, ines))
    assert (_now(ctx, maya).writes_with, _now(ctx, leo).writes_with) == (leo.id, maya.id)
    assert teammate_of(ctx, _now(ctx, maya), _now(ctx, tomas)) == _now(ctx, leo)
    assert "team-ended" not in [e["event"] for e in ctx.store.audit_log()]


def test_erasing_a_teams_pal_ends_the_team_and_the_two_can_be_matched_again(
    ctx: Context,
) -> None:
    maya, leo = (_enrol(ctx, "riverside", name, 20) for name in ("Maya", "Leo"))
    tomas = _enrol(ctx, "valparaiso", "Tomas", 20)
    participants.pair(ctx, maya, tomas)
    participants.pair(ctx, leo, tomas)
    ctx.store.team(_now(ctx, maya), _now(ctx, leo))
    rights.erase(ctx, _now(ctx, tomas), via="test")
    assert (_now(ctx, maya).writes_with, _now(ctx, leo).writes_with) == ("", "")
    assert (_now(ctx, maya).pals, _now(ctx, leo).pals) == ((), ())

    lucia = _enrol(ctx, "valparaiso", "Lucia", 20)
    proposal = matching.propose(PARTNERSHIP, ctx.store.participants(), TOGETHER, TODAY)
    made, skipped = participants.accept_matches(ctx, proposal)
    assert (len(made), skipped) == (2, [])
    assert {_now(ctx, maya).writes_with, _now(ctx, leo).writes_with} == {maya.id, leo.id}
    assert _now(ctx, lucia).pals in ((maya.id, leo.id), (leo.id, maya.id))


def test_a_teammate_whose_team_points_to_no_one_can_team_again(ctx: Context) -> None:
    maya, leo = (_enrol(ctx, "riverside", name, 20) for name in ("Maya", "Leo"))
    tomas = _enrol(ctx, "valparaiso", "Tomas", 20)
    for one in (maya, leo):  # a team whose other half is gone (an older record)
        ctx.store.update_participant(one.id, lambda p: p.but(writes_with="p99"))
    proposal = matching.propose(PARTNERSHIP, ctx.store.participants(), TOGETHER, TODAY)
    made, skipped = participants.accept_matches(ctx, proposal)
    assert (len(made), skipped) == (2, [])
    assert {_now(ctx, maya).writes_with, _now(ctx, leo).writes_with} == {maya.id, leo.id}
    assert len(_now(ctx, tomas).pals) == 2


def test_a_teammate_paused_after_approval_gets_no_copy_nor_does_their_guardian(
    ctx: Context,
) -> None:
    maya = _enrol(ctx, "riverside", "Maya", 20)
    tomas = _enrol(ctx, "valparaiso", "Tomas", 20)
    details = participants.Details(birth_year=TODAY.year - 21, interests="")
    lucia = participants.enroll(
        ctx, "valparaiso", "Lucia", "lucia@example.org", guardian=PARENT, details=details
    )
    participants.pair(ctx, maya, tomas)
    participants.pair(ctx, maya, lucia)
    ctx.store.team(_now(ctx, tomas), _now(ctx, lucia))
    ctx.store.save_letter(
        Letter(
            7,
            "18ecc8b7915e35e9-cbc42ea8",
            maya.id,
            tomas.id,
            maya.masked,
            tomas.masked,
            "riverside",
            "valparaiso",
            "My dog",
            "2026-01-05T10:00:00+00:00",
            "approved",
        )
    )
    copies = {  # as relay.letters.delivering names and queues them
        "letter-7": (LetterCopy(7), tomas.email),
        f"letter-7-teammate-{lucia.id}": (TeammateCopy(7, lucia.id), lucia.email),
        f"letter-7-guardian-{lucia.id}": (GuardianCopy(7, lucia.id), PARENT),
    }
    for item, (purpose, to) in copies.items():
        message = door.program_message(ctx, Address("", addr_spec=to), "Letter", "Hello")
        door.queue(ctx, item, message, purpose, to=to)
    relay_outcomes = outcomes.for_relay(lambda: ctx)

    def ready() -> list[str]:
        return sorted(e.id for e in worker.ready(ctx, relay_outcomes, time.time()))

    assert ready() == sorted(copies)
    participants.pause(ctx, _now(ctx, lucia))
    assert ready() == ["letter-7"]  # Tomas still gets his letter


def test_one_message_to_both_teammates_reaches_each_once(ctx: Context) -> None:
    maya = _enrol(ctx, "riverside", "Maya", 20)
    tomas, lucia = (_enrol(ctx, "valparaiso", name, 20) for name in ("Tomas", "Lucia"))
    participants.pair(ctx, maya, tomas)
    participants.pair(ctx, maya, lucia)
    ctx.store.team(_now(ctx, tomas), _now(ctx, lucia))

    def held(spool: str, pal: Participant) -> Letter:
        def build(number: int) -> Letter:
            return Letter(
                number, spool, maya.id, pal.id, maya.masked, pal.masked, "riverside",
                "valparaiso", "Hello both", "2026-01-05T10:00:00+00:00",
            )  # fmt: skip

        return ctx.store.hold_letter(build, spool_key=f"spool:{spool}:{pal.id}")

    alone = held("one-pal", tomas)  # to Tomas only: Lucia gets a copy
    assert copy_ids(ctx, alone) == [f"letter-{alone.id}", f"letter-{alone.id}-teammate-{lucia.id}"]
    to_tomas, to_lucia = held("both-pals", tomas), held("both-pals", lucia)
    assert copy_ids(ctx, to_tomas) == [f"letter-{to_tomas.id}"]  # Lucia has her own letter
    assert copy_ids(ctx, to_lucia) == [f"letter-{to_lucia.id}"]


def test_each_accepted_pair_is_welcomed_before_the_next_is_made(ctx: Context) -> None:
    maya, leo = (_enrol(ctx, "riverside", name, 20) for name in ("Maya", "Leo"))
    tomas, lucia = (_enrol(ctx, "valparaiso", name, 20) for name in ("Tomas", "Lucia"))
    _, club = ctx.store.update_participant(lucia.id, lambda p: p.but(kind="group"))
    reasons = matching.Reasons((20, 20), "", "", "", ())
    pairs = (matching.ProposedPair(maya, tomas, reasons), matching.ProposedPair(leo, club, reasons))
    proposal = matching.Proposal(PARTNERSHIP.id, TOGETHER, pairs, ())
    with pytest.raises(UserError):  # a group's pal is another group
        participants.accept_matches(ctx, proposal)
    assert (_now(ctx, maya).welcomed, _now(ctx, tomas).welcomed) == ((tomas.id,), (maya.id,))
    assert _now(ctx, leo).pals == ()


def test_the_proposal_as_json_names_each_teammate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.toml"
    text = config_text(tmp_path / "data", extra_sections="[matching]\nuneven = 'together'\n")
    path.write_text(text)
    ctx = open_context(config_module.load(path))
    maya, leo = (_enrol(ctx, "riverside", name, 20) for name in ("Maya", "Leo"))
    tomas = _enrol(ctx, "valparaiso", "Tomas", 21)
    run = ["--config", str(path), "match", "--partnership", PARTNERSHIP.id, "--dry-run"]
    assert cli.main([*run, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["uneven"] == "together"
    assert [(p["participants"], p["writes_together_with"]) for p in shown["pairs"]] == [
        ([maya.id, tomas.id], None),
        ([leo.id, tomas.id], maya.id),
    ]
    assert shown["pairs"][1]["explanation"] == (
        "Leo and Maya write together to Tomas; ages 20 and 21; no shared interests"
    )
    assert cli.main([*run[:-1], "--yes", "--json"]) == 0
    accepted = json.loads(capsys.readouterr().out)
    assert accepted["accepted"] is True and accepted["not_paired"] == []
    assert [(p["participants"], p["writes_together_with"]) for p in accepted["paired"]] == [
        ([maya.id, tomas.id], None),
        ([leo.id, tomas.id], maya.id),
    ]
    assert cli.main([*run[:-1], "--yes"]) == 0  # everyone has a pal now
    assert capsys.readouterr().out.splitlines()[0].startswith(f"{PARTNERSHIP.id}: 0 pairs")
