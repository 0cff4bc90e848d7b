"""Proposing pals: the age gap, everyone once before anyone twice, the same proposal for the
same participants, and the words staff read; then `penpal-relay match` on a real store."""

from __future__ import annotations

import html
import json
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from relay import cli, matching, participants
from relay import config as config_module
from relay.config import MatchingSettings, Partnership
from relay.context import open_context
from relay.errors import ConfigError, UserError
from relay.store.records import LEFT, PAUSED, Participant
from relay.web.pages import Pages
from tests.conftest import MODERATOR_B, Relay, config_text
from tests.support.people import TODAY, person

PARTNERSHIP = Partnership("riverside+valparaiso", ("riverside", "valparaiso"))


def _propose(people: list[Participant], **settings: object) -> matching.Proposal:
    return matching.propose(
        PARTNERSHIP,
        people,
        MatchingSettings(**settings),  # type: ignore[arg-type]
        TODAY,
    )


def _pals(proposal: matching.Proposal) -> set[tuple[str, str]]:
    return {(pair.first.id, pair.second.id) for pair in proposal.pairs}


def test_pals_are_never_further_apart_than_the_age_gap() -> None:
    people = [
        person(1, "riverside", 10),
        person(2, "riverside", 15),
        person(3, "valparaiso", 12),
        person(4, "valparaiso", 18),
    ]
    proposal = _propose(people, max_age_gap=2)
    assert _pals(proposal) == {("p1", "p3")}
    left = {u.participant.id: matching.why_not(u, 2) for u in proposal.unmatched}
    assert left == {
        "p2": "no one at valparaiso within 2 years of age 15",
        "p4": "no one at riverside within 2 years of age 18",
    }
    assert _pals(_propose(people, max_age_gap=3)) == {("p1", "p3"), ("p2", "p4")}


def test_as_many_as_possible_get_a_pal_before_the_best_scores() -> None:
    """p1 and p3 would score best together, but then p2 (13) has no one within the gap."""
    people = [
        person(1, "riverside", 10, interests=("football",)),
        person(2, "riverside", 13),
        person(3, "valparaiso", 11, interests=("football",)),
        person(4, "valparaiso", 9, interests=("chess",)),
    ]
    assert _pals(_propose(people)) == {("p1", "p4"), ("p2", "p3")}


def test_everyone_has_a_pal_before_anyone_has_two() -> None:
    riverside = [person(n, "riverside", 10 + n % 3) for n in range(1, 31)]
    valparaiso = [person(n, "valparaiso", 10 + n % 3) for n in range(31, 58)]
    proposal = _propose(riverside + valparaiso, max_age_gap=2, uneven="two-pals")
    counts = Counter(p.id for pair in proposal.pairs for p in (pair.first, pair.second))
    assert set(counts) == {p.id for p in riverside + valparaiso}
    assert all(counts[p.id] == 1 for p in riverside)
    assert sorted(counts[p.id] for p in valparaiso) == [1] * 24 + [2] * 3
    assert sum(1 for pair in proposal.pairs if pair.writes_to_two) == 3
    assert proposal.unmatched == ()

    waiting = _propose(riverside + valparaiso, uneven="leave-out")
    assert len(waiting.pairs) == 27
    assert [matching.why_not(u, 2) for u in waiting.unmatched] == [
        "everyone at valparaiso within the age gap already has a pal; waits for the next match"
    ] * 3


def test_the_same_participants_give_the_same_proposal_in_any_order() -> None:
    people = [
        person(n, "riverside" if n % 2 else "valparaiso", 9 + n % 4, interests=("art",))
        for n in range(1, 21)
    ]
    first = _propose(people)
    assert len(first.pairs) == 10
    assert _propose(list(reversed(people))) == first
    assert _propose(people[5:] + people[:5]) == first


def test_only_active_participants_without_a_pal_are_matched() -> None:
    people = [
        person(1, "riverside", 10),
        person(2, "riverside", 10, status=PAUSED),
        person(3, "riverside", 10, status=LEFT),
        person(4, "riverside", 10, pals=("p9",)),
        person(5, "valparaiso", 10),
        person(6, "lyon", 10),
    ]
    proposal = _propose(people)
    assert _pals(proposal) == {("p1", "p5")}
    assert proposal.unmatched == ()


def test_shared_language_and_interests_are_preferred_and_explained() -> None:
    people = [
        person(1, "riverside", 10, interests=("football", "drawing", "cats")),
        person(2, "riverside", 11, interests=("learning es",)),
        person(3, "valparaiso", 10, interests=("drawing", "football")),
        person(4, "valparaiso", 11, language="en"),
    ]
    proposal = _propose(people)
    words = {(p.first.id, p.second.id): matching.explain(p) for p in proposal.pairs}
    assert words == {
        ("p1", "p3"): "both 10; both like football and drawing",
        ("p2", "p4"): "both 11; both write in English; no shared interests",
    }
    learner = [
        person(7, "riverside", 10, interests=("learning es",)),
        person(8, "valparaiso", 11),
    ]
    assert [matching.explain(p) for p in _propose(learner).pairs] == [
        "ages 10 and 11; Name7 is learning Spanish; no shared interests"
    ]


def test_explanations_name_bands_missing_ages_and_a_second_pal() -> None:
    banded = [
        person(1, "riverside", None, band="9-11", interests=("chess",)),
        person(2, "valparaiso", None, band="9-11", interests=("chess",)),
        person(3, "valparaiso", None, band="9-11"),
        person(4, "riverside", None),
        person(5, "valparaiso", None),
        person(6, "valparaiso", 12),
    ]
    proposal = _propose(banded)
    words = [matching.explain(p) for p in proposal.pairs]
    assert words == [
        "same age band 9-11; both like chess",
        "same age band 9-11; no shared interests; Name1 writes to two",
        "no ages recorded; no shared interests",
    ]
    assert [matching.why_not(u, 2) for u in proposal.unmatched] == [
        "no one at riverside within 2 years of age 12"
    ]


def test_matching_settings_are_read_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    good = "[matching]\nmax_age_gap = 3\nuneven = 'leave-out'\nquiet_weeks = 4\n"
    path.write_text(config_text(tmp_path / "data", extra_sections=good))
    assert config_module.load(path).matching == MatchingSettings(3, "leave-out", 4)
    bad = "[matching]\nmax_age_gap = -1\nuneven = 'random'\nquiet_weeks = 0\n"
    path.write_text(config_text(tmp_path / "data", extra_sections=bad))
    with pytest.raises(ConfigError) as raised:
        config_module.load(path)
    assert [p.split(":")[0] for p in raised.value.problems] == [
        "matching.max_age_gap",
        "matching.uneven",
        "matching.quiet_weeks",
    ]
    shipped = config_module.load(Path(__file__).resolve().parents[2] / "config.toml")
    assert shipped.matching == MatchingSettings()


def test_match_on_the_command_line(
    relay_factory: Callable[..., Relay],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    relay = relay_factory()
    ctx = relay.context()
    year = datetime.now(UTC).year
    maya, leo, tomas = (
        participants.enroll(
            ctx,
            library,
            name,
            f"{name.lower()}@example.org",
            guardian=f"parent.{name.lower()}@example.org",
            details=participants.Details(birth_year=year - age - 1, interests=likes),
        )
        for library, name, age, likes in (
            ("riverside", "Maya", 10, "football"),
            ("riverside", "Leo", 16, ""),
            ("valparaiso", "Tomas", 11, "football, chess"),
        )
    )
    partnership = "riverside+valparaiso"
    shown = relay.cli("match", "--partnership", partnership, "--dry-run").stdout
    assert shown.splitlines() == [
        f"{partnership}: 1 pair proposed, 1 without a pal (max_age_gap 2, uneven two-pals)",
        f"  {maya.id} Maya <{maya.masked}>  +  {tomas.id} Tomas <{tomas.masked}>",
        "      ages 10 and 11; both like football",
        "without a pal:",
        f"  {leo.id} Leo <{leo.masked}>: no one at valparaiso within 2 years of age 16",
    ]
    assert all(p.pals == () for p in relay.context().store.participants())

    run = ["--config", str(relay.config_path), "match", "--partnership"]
    assert cli.main([*run, "nowhere", "--dry-run"]) == 1
    assert capsys.readouterr().err == (
        "penpal-relay: --partnership: no partnership 'nowhere' (known: riverside+valparaiso)\n"
    )
    monkeypatch.setattr("builtins.input", lambda prompt: "no")
    assert cli.main([*run, partnership]) == 1
    assert capsys.readouterr().err == "penpal-relay: nothing paired (answer yes, or pass --yes)\n"
    assert cli.main([*run, partnership, "--json"]) == 1
    assert capsys.readouterr().err.startswith("penpal-relay: --json: add --dry-run")

    assert cli.main([*run, partnership, "--yes", "--by", "someone@example.org"]) == 1
    assert capsys.readouterr().err == (
        "penpal-relay: --by: someone@example.org is not listed as staff of "
        "riverside+valparaiso's libraries\n"
    )
    assert cli.main([*run, partnership, "--yes", "--json", "--by", MODERATOR_B]) == 0
    accepted = json.loads(capsys.readouterr().out)
    assert accepted["accepted"] is True
    assert [p["participants"] for p in accepted["pairs"]] == [[maya.id, tomas.id]]
    assert accepted["pairs"][0]["explanation"] == "ages 10 and 11; both like football"
    assert accepted["unmatched"][0]["reason"] == "age-gap"
    found = {p.id: p.pals for p in relay.context().store.participants()}
    assert found == {maya.id: (tomas.id,), leo.id: (), tomas.id: (maya.id,)}
    paired = [e for e in relay.context().store.audit_log() if e["event"] == "paired"]
    assert [(e["participants"], e["via"], e["by"]) for e in paired] == [
        ([maya.id, tomas.id], "match", MODERATOR_B)
    ]


def test_an_accepted_proposal_skips_whoever_changed_since(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(config_text(tmp_path / "data"))
    ctx = open_context(config_module.load(path))
    maya = participants.enroll(ctx, "riverside", "Maya", "maya@example.org")
    tomas = participants.enroll(ctx, "valparaiso", "Tomas", "tomas@example.org")
    lucia = participants.enroll(ctx, "valparaiso", "Lucia", "lucia@example.org")
    proposal = matching.propose(PARTNERSHIP, ctx.store.participants(), MatchingSettings(), TODAY)
    assert sorted(_pals(proposal)) == [(maya.id, tomas.id), (maya.id, lucia.id)]
    participants.pause(ctx, tomas)
    made, skipped = participants.accept_matches(ctx, proposal)
    assert [(p.first.id, p.second.id) for p in made] == [(maya.id, lucia.id)]
    assert [(p.first.id, p.second.id) for p in skipped] == [(maya.id, tomas.id)]
    assert {p.id: p.pals for p in ctx.store.participants()} == {
        maya.id: (lucia.id,),
        tomas.id: (),
        lucia.id: (maya.id,),
    }


def test_the_matching_page_words_name_languages_and_say_group_for_a_group() -> None:
    learner = _propose(
        [
            person(1, "riverside", 10, interests=("learning es",)),
            person(2, "valparaiso", 11),
            person(3, "riverside", 10, language="es"),
            person(4, "valparaiso", 10),
            person(5, "riverside", 10, language="de"),
            person(6, "valparaiso", 10, language="de"),
        ]
    ).pairs
    class_alone = matching.Unmatched(
        person(9, "riverside", 16, kind="group"), "age-gap", 16, "valparaiso"
    )
    pages = Pages(None)
    expected = {
        "en": (
            "Name1 is learning Spanish",
            "both write in Spanish",
            "both write in de",
            "no group at Valparaíso within 2 years of age 16",
        ),
        "es": (
            "Name1 aprende español",
            "ambos escriben en español",
            "ambos escriben en de",
            "ningún grupo en Valparaíso con 2 años o menos de diferencia con la edad 16",
        ),
        "fr": (
            "Name1 apprend l'espagnol",
            "tous deux écrivent en espagnol",
            "tous deux écrivent en de",
            "aucun groupe à Valparaíso avec 2 ans d'écart ou moins avec l'âge 16",
        ),
    }
    for language, (learns, same, unknown, alone) in expected.items():
        words = pages.words(language)
        said = [html.unescape(words["match_reasons"](pair)) for pair in learner]
        assert learns in said[0] and same in said[1] and unknown in said[2], said
        reason = class_alone.reason
        assert html.unescape(words["why_not"](reason, 16, 2, "Valparaíso", True)) == alone
    assert [matching.explain(pair) for pair in learner][:2] == [
        html.unescape(pages.words("en")["match_reasons"](pair)) for pair in learner[:2]
    ]


def test_one_confirmation_asks_before_matching_erasing_and_closing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers = iter([" YES\n", "y", EOFError()])

    def answer(question: str) -> str:
        given = next(answers)
        if isinstance(given, EOFError):
            raise given
        return given

    monkeypatch.setattr("builtins.input", answer)
    cli._confirm("Pair these 3 pairs? Type yes: ", "nothing paired")
    for _ in range(2):  # "y" is not yes; no terminal to answer from is not yes
        with pytest.raises(UserError, match=r"^nothing paired \(answer yes, or pass --yes\)$"):
            cli._confirm("Pair these 3 pairs? Type yes: ", "nothing paired")
