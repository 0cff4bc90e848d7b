"""Welcome emails to new pals (each language, never a real address, once per pair, after a
guardian's consent) and the checks an edited proposal passes on the server."""

from __future__ import annotations

import email
import json
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

import pytest
from starlette.datastructures import FormData

from relay import cli, guardians, matching, participants, welcomes
from relay import config as config_module
from relay.config import MatchingSettings, Partnership
from relay.context import Context, open_context
from relay.web import proposals
from relay.web.pages import Pages
from tests.conftest import DOMAIN, MODERATOR_A, config_text
from tests.support.people import TODAY, person

MAYA, MAYA_PARENT = "maya.smith@family-mail.example.net", "parent.smith@family-mail.example.net"
TOMAS, TOMAS_PARENT = "tomas.perez@correo.example.cl", "padre.perez@correo.example.cl"
LEA = "lea.martin@courriel.example.fr"
PARTNERSHIP = Partnership("riverside+valparaiso", ("riverside", "valparaiso"))


@pytest.fixture
def ctx(tmp_path: Path) -> Context:
    path = tmp_path / "config.toml"
    path.write_text(config_text(tmp_path / "data"))
    return open_context(config_module.load(path))


def _welcomes(ctx: Context) -> list[tuple[str, EmailMessage]]:
    found = []
    for item in sorted(ctx.spool.outbox(), key=lambda item: item.id):
        if item.id.startswith("welcome-"):
            raw = ctx.spool.message("outbox", item.id)
            message = email.message_from_bytes(raw, policy=default)
            assert isinstance(message, EmailMessage)
            found.append((item.meta["to"][0], message))
    return found


def _text(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content()).replace("\r\n", "\n")


def test_each_pal_is_welcomed_in_their_language_with_the_pals_masked_address(ctx: Context) -> None:
    maya = participants.enroll(ctx, "riverside", "Maya", MAYA, guardian=MAYA_PARENT)
    tomas = participants.enroll(ctx, "valparaiso", "Tomás", TOMAS, guardian=TOMAS_PARENT)
    lea = participants.enroll(ctx, "valparaiso", "Léa", LEA, language="fr")
    participants.pair(ctx, maya, tomas)
    participants.pair(ctx, maya, lea)
    assert welcomes.welcome(ctx, maya, tomas, by=MODERATOR_A, via="dashboard") == 2
    assert welcomes.welcome(ctx, lea, maya, via="match") == 2
    sent = {(to, str(m["Subject"])): m for to, m in _welcomes(ctx)}
    assert sorted(sent) == sorted(
        [
            (MAYA, "Meet your pen pal Tomás"),
            (MAYA_PARENT, "Meet your pen pal Tomás"),
            (TOMAS, "Te presentamos a tu amigo por correspondencia: Maya"),
            (TOMAS_PARENT, "Te presentamos a tu amigo por correspondencia: Maya"),
            (MAYA, "Meet your pen pal Léa"),
            (MAYA_PARENT, "Meet your pen pal Léa"),
            (LEA, "Voici ton correspondant : Maya"),
        ]
    )
    english = _text(sent[(MAYA, "Meet your pen pal Tomás")])
    assert "Tomás, from Biblioteca Santiago Severín in Chile" in english
    assert f"    {tomas.masked}\n" in english and "a librarian at" in english
    assert "/privacy?lang=en" in english
    spanish = _text(sent[(TOMAS, "Te presentamos a tu amigo por correspondencia: Maya")])
    assert "Maya, de Riverside Public Library, en Estados Unidos" in spanish
    assert maya.masked in spanish and "/privacy?lang=es" in spanish
    french = _text(sent[(LEA, "Voici ton correspondant : Maya")])
    assert "Maya, de Riverside Public Library (aux États-Unis)" in french
    assert maya.masked in french and "/privacy?lang=fr" in french
    copy = _text(sent[(TOMAS_PARENT, "Te presentamos a tu amigo por correspondencia: Maya")])
    assert "Esta es una copia para la persona responsable de Tomás" in copy
    for (to, _), message in sent.items():
        assert message["From"].addresses[0].addr_spec == f"program@{DOMAIN}"
        assert message["Auto-Submitted"] == "auto-generated"
        whole = message.as_string()
        others = {MAYA, MAYA_PARENT, TOMAS, TOMAS_PARENT, LEA} - {to}
        assert not [address for address in others if address in whole], to
        assert "Smith" not in whole and "Perez" not in whole
    # Once per pair: asking again (or pairing again) sends nothing more.
    assert welcomes.welcome(ctx, tomas, maya, via="match") == 0
    assert len(_welcomes(ctx)) == 7
    audited = [e for e in ctx.store.audit_log() if e["event"] == "welcomed"]
    assert [e["participants"] for e in audited] == [
        [maya.id, tomas.id],
        [tomas.id, maya.id],
        [lea.id, maya.id],
        [maya.id, lea.id],
    ]
    assert audited[0]["by"] == MODERATOR_A and audited[0]["via"] == "dashboard"
    kept = json.dumps(audited)
    assert not any(a in kept for a in (MAYA, MAYA_PARENT, TOMAS, TOMAS_PARENT, LEA))


def test_a_pair_waiting_for_consent_is_welcomed_when_it_is_given(ctx: Context) -> None:
    today = datetime.now(UTC).date()
    fourteen = participants.Details(birth_year=today.year - 15)
    maya = participants.enroll(ctx, "riverside", "Maya", MAYA, details=fourteen)
    thirteen = participants.Details(birth_year=today.year - 14)  # under 14 in Chile
    child = participants.enroll(
        ctx, "valparaiso", "Tomás", TOMAS, guardian=TOMAS_PARENT, details=thirteen
    )
    assert (maya.consent, child.consent) == ("", "pending")
    proposal = matching.propose(PARTNERSHIP, ctx.store.participants(), MatchingSettings(), today)
    made, _ = participants.accept_matches(ctx, proposal, by=MODERATOR_A)
    assert len(made) == 1 and _welcomes(ctx) == []  # nobody writes to a pal who cannot answer
    guardians.give(ctx, child, method="paper", by=MODERATOR_A)
    assert sorted(to for to, _ in _welcomes(ctx)) == sorted([MAYA, TOMAS, TOMAS_PARENT])
    assert [e["via"] for e in ctx.store.audit_log() if e["event"] == "welcomed"] == ["cli"] * 2


# --- an edited proposal, checked again -------------------------------------------------------


PEOPLE = [
    person(1, "riverside", 10),
    person(2, "riverside", 11),
    person(3, "riverside", 16),
    person(4, "valparaiso", 10),
    person(5, "valparaiso", 11),
    person(6, "valparaiso", 11, pals=("p9",)),
    person(7, "valparaiso", 10, status="paused"),
]


def _edit(
    asked: list[tuple[str, str]], *, override: bool = False, uneven: str = "two-pals"
) -> tuple[matching.Proposal, list[tuple[str, str, str]]]:
    settings = MatchingSettings(uneven=uneven)  # type: ignore[arg-type]
    proposal, problems = matching.edit(
        PARTNERSHIP, PEOPLE, settings, TODAY, asked, override_age_gap=override
    )
    return proposal, [(p.first, p.second, p.problem) for p in problems]


def test_an_edited_proposal_is_checked_again_on_the_server() -> None:
    proposal, problems = _edit(
        [
            ("p4", "p1"),  # either order
            ("p2", "p4"),  # p4 writes to two
            ("p1", "p2"),  # same library
            ("p1", "p6"),  # p6 has a pal already
            ("p2", "p7"),  # paused
            ("p3", "p5"),  # 16 and 11
            ("p1", "p4"),  # twice
            ("p2", "p5"),  # p2 would write to two, and so does p4, p2's pal
            ("p1", "p5"),  # p1 would write to two, and so does p4, p1's pal
            ("p1", "nobody"),
        ]
    )
    assert [(p.first.id, p.second.id, p.writes_to_two) for p in proposal.pairs] == [
        ("p1", "p4", "p4"),
        ("p2", "p4", "p4"),
    ]
    assert problems == [
        ("p1", "p2", "same-library"),
        ("p1", "p6", "not-waiting"),
        ("p2", "p7", "not-waiting"),
        ("p3", "p5", "age-gap"),
        ("p1", "p4", "twice"),
        ("p2", "p5", "too-many"),
        ("p1", "p5", "too-many"),
        ("p1", "nobody", "not-waiting"),
    ]
    assert [(u.participant.id, u.reason) for u in proposal.unmatched] == [
        ("p3", "age-gap"),
        ("p5", "waiting"),
    ]
    # Staff may allow a wider gap; "leave-out" allows one pal each.
    proposal, problems = _edit([("p3", "p5"), ("p1", "p4"), ("p2", "p4")], override=True)
    assert [(p.first.id, p.second.id) for p in proposal.pairs] == [
        ("p1", "p4"),
        ("p2", "p4"),
        ("p3", "p5"),
    ]
    assert problems == []
    proposal, problems = _edit([("p1", "p4"), ("p2", "p4")], uneven="leave-out")
    assert problems == [("p2", "p4", "too-many")]
    assert [(u.participant.id, u.reason) for u in proposal.unmatched] == [
        ("p2", "not-chosen"),
        ("p3", "age-gap"),
        ("p5", "not-chosen"),
    ]


def test_pairing_by_command_welcomes_only_when_asked(
    ctx: Context, capsys: pytest.CaptureFixture[str]
) -> None:
    maya = participants.enroll(ctx, "riverside", "Maya", MAYA)
    tomas = participants.enroll(ctx, "valparaiso", "Tomás", TOMAS)
    lea = participants.enroll(ctx, "valparaiso", "Léa", LEA, language="fr")
    run = ["--config", str(ctx.config.path), "pair"]
    assert cli.main([*run, maya.id, tomas.id]) == 0
    assert _welcomes(ctx) == []
    assert cli.main([*run, maya.id, lea.masked, "--welcome"]) == 0
    assert capsys.readouterr().out.endswith("welcome emails queued\n")
    assert sorted(to for to, _ in _welcomes(ctx)) == [LEA, MAYA]
    assert cli.main([*run, maya.id, lea.id, "--welcome"]) == 0
    assert capsys.readouterr().out.endswith(
        "no welcome now: both were welcomed to each other before\n"
    )
    # A pair made while one of the two is paused is welcomed when they are resumed.
    leo = participants.enroll(ctx, "riverside", "Leo", "leo@family-mail.example.net")
    ines = participants.enroll(ctx, "valparaiso", "Inés", "ines@family-mail.example.net")
    participants.pause(ctx, leo)
    assert cli.main([*run, leo.id, ines.id, "--welcome"]) == 0
    assert capsys.readouterr().out.endswith(
        f"no welcome now: {leo.id} is paused; the welcomes go when they are resumed\n"
    )
    assert len(_welcomes(ctx)) == 2
    participants.resume(ctx, leo)
    assert sorted(to for to, _ in _welcomes(ctx)[2:]) == [ines.email, leo.email]
    # Resuming someone paired without a welcome (Maya and Tomás above) sends none.
    participants.pause(ctx, maya)
    participants.resume(ctx, maya)
    assert len(_welcomes(ctx)) == 4


def test_the_matching_form_says_which_pairs_staff_kept_changed_and_added() -> None:
    form = FormData(
        [
            ("rows", "3"),
            ("keep-0", "yes"),
            ("first-0", "p1"),
            ("second-0", "p4"),
            ("first-1", "p2"),  # dropped: not kept
            ("second-1", "p5"),
            ("keep-2", "yes"),
            ("first-2", "p3"),
            ("second-2", "p6"),
            ("add-first", "p2"),
            ("add-second", "p7"),
        ]
    )
    assert proposals.asked_pairs(form) == [("p1", "p4"), ("p3", "p6"), ("p2", "p7")]
    assert proposals.asked_pairs(FormData([("rows", "many"), ("add-first", "p1")])) == []


def test_two_writing_together_to_one_pal_are_a_team_in_an_edited_proposal() -> None:
    proposal, problems = _edit([("p4", "p1"), ("p2", "p4"), ("p5", "p2")], uneven="together")
    assert problems == [("p5", "p2", "too-many")]
    teams = [(p.first.id, p.second.id, p.teammate.id if p.teammate else "") for p in proposal.pairs]
    assert teams == [("p1", "p4", ""), ("p2", "p4", "p1")]
    assert matching.explain(proposal.pairs[1]).startswith("Name2 and Name1 write together to Name4")


def test_two_writing_together_are_told_so_and_so_is_their_pal(ctx: Context) -> None:
    maya = participants.enroll(ctx, "riverside", "Maya", MAYA)
    leo = participants.enroll(ctx, "riverside", "Leo", "leo.jones@family-mail.example.net")
    tomas = participants.enroll(ctx, "valparaiso", "Tomás", TOMAS)
    participants.pair(ctx, maya, tomas)
    participants.pair(ctx, leo, tomas)
    ctx.store.team(maya, leo)
    leo, tomas = (ctx.store.participant(p.id) for p in (leo, tomas))  # type: ignore[assignment]
    (to_leo,) = welcomes.words(ctx, leo, tomas)
    assert (
        "\n\nYou and Maya write together to Tomás: each letter Tomás writes to either of you"
        in (to_leo.text)
    )
    (to_tomas,) = welcomes.words(ctx, tomas, leo)
    assert "\n\nLeo escribe junto con Maya: tus cartas a cualquiera de los dos" in to_tomas.text
    assert "together" not in welcomes.words(ctx, maya.but(writes_with=""), tomas)[0].text
    # Maya now writes with Zoe: Leo's record still names Maya, but no letter reaches Leo
    # through her, and his welcome says nothing of writing together.
    zoe = participants.enroll(ctx, "riverside", "Zoe", "zoe@family-mail.example.net")
    participants.pair(ctx, zoe, tomas)
    ctx.store.update_participant(maya.id, lambda p: p.but(writes_with=zoe.id))
    (to_leo,) = welcomes.words(ctx, leo, tomas)
    assert "together" not in to_leo.text
    (to_tomas,) = welcomes.words(ctx, tomas, leo)
    assert "junto" not in to_tomas.text


def test_a_class_is_paired_only_with_a_class_in_an_edited_proposal() -> None:
    people = [*PEOPLE, person(8, "valparaiso", 11, kind="group", members=("Ana", "Luis"))]
    proposal, problems = matching.edit(
        PARTNERSHIP, people, MatchingSettings(), TODAY, [("p1", "p8"), ("p1", "p4")]
    )
    assert [(p.first, p.second, p.problem) for p in problems] == [("p1", "p8", "group-and-person")]
    assert [(u.participant.id, u.reason) for u in proposal.unmatched][-1] == ("p8", "age-gap")


def test_the_matching_page_names_only_the_partnerships_waiting_participants(
    tmp_path: Path,
) -> None:
    lyon = """
        [[libraries]]
        id = "lyon"
        name = "Bibliothèque de Lyon"
        country = "FR"
        language = "fr"
        timezone = "Europe/Paris"
        staff = []
    """
    path = tmp_path / "config.toml"
    path.write_text(config_text(tmp_path / "data", extra_libraries=lyon))
    ctx = open_context(config_module.load(path))
    maya = participants.enroll(ctx, "riverside", "Maya", MAYA)
    juliette = participants.enroll(ctx, "lyon", "Juliette Dubois", LEA, language="fr")
    tomas = participants.enroll(ctx, "valparaiso", "Tomás", TOMAS)
    paused = participants.enroll(ctx, "valparaiso", "Inés Rojas", "ines@correo.example.cl")
    participants.pause(ctx, paused)
    (partnership,) = ctx.config.partnerships
    asked = [(maya.id, juliette.id), (maya.id, paused.id), (maya.id, "p99")]
    shown = proposals._shown(ctx, partnership, asked, False)
    words = Pages(None).words("en")
    said = [
        str(
            words["match_problem"](
                p.problem, shown.names.get(p.first, p.first), shown.names.get(p.second, p.second), 2
            )
        )
        for p in shown.problems
    ]
    not_waiting = "one of them is not waiting for a pal in this partnership"
    assert said == [
        f"Maya and {juliette.id}: {not_waiting}",
        f"Maya and {paused.id}: {not_waiting}",
        f"Maya and p99: {not_waiting}",
    ]
    assert set(shown.names) == {maya.id, tomas.id}


def test_a_group_is_welcomed_in_words_for_its_leader(ctx: Context) -> None:
    group = participants.Details(kind="group", age_band="9-10", members="Ana, Luis")
    four_b = participants.enroll(ctx, "riverside", "Class 4B", MAYA, details=group)
    cinco_a = participants.enroll(ctx, "valparaiso", "Clase 5A", TOMAS, details=group)
    dragons = participants.enroll(
        ctx, "valparaiso", "Les Dragons", LEA, language="fr", details=group
    )
    said = {
        reader.language: welcomes.words(ctx, reader, pal)
        for reader, pal in ((four_b, cinco_a), (cinco_a, four_b), (dragons, four_b))
    }
    assert [len(w) for w in said.values()] == [1, 1, 1]  # a group has no guardian's copy
    (en,), (es,), (fr,) = said["en"], said["es"], said["fr"]
    assert en.subject == "Meet your partner group Clase 5A"
    assert en.text.startswith("Dear leader of Class 4B,\n\n")
    assert "send your group's letters" in en.text and "Happy writing to you all!" in en.text
    assert "Please help your members keep their surnames" in en.text
    assert es.subject == "Les presentamos al grupo con el que se escribirán: Class 4B"
    assert es.text.startswith("Hola, responsable de Clase 5A:\n\n")
    assert "envíe las cartas del grupo" in es.text and "ayude a los miembros" in es.text
    assert fr.subject == "Voici votre groupe correspondant : Class 4B"
    assert "envoyez les lettres du groupe" in fr.text and "Merci d'aider les membres" in fr.text
    to_a_child = ("your surname", "envía un correo", "tu apellido", "envoie un", " ton ")
    assert not [p for words in (en, es, fr) for p in to_a_child if p in words.text]
