"""The end of a program year on a store in a temporary folder: the goodbye in each language
(the pal's first name, the letters that reached the pal, the stay-in-touch offer only when
configured, no real address), and closing twice sending one goodbye."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes
from email.policy import default
from pathlib import Path

import pytest

from relay import cli, closing, participants, reports
from relay import config as config_module
from relay.context import Context, open_context
from relay.store.records import Letter
from relay.web.audit import Names, sentence
from relay.web.pages import Pages
from tests.conftest import LYON, config_text
from tests.support.past_letters import record_letter

STAY = """
[program]
stay_in_touch = true
"""
PARTNERSHIP = "riverside+valparaiso"
REAL = ("family-mail.example.net", "correo.example.cl", "courriel.example.fr")


def _context(tmp_path: Path, extra: str = "") -> Context:
    tmp_path.mkdir(exist_ok=True)
    path = tmp_path / "config.toml"
    path.write_text(config_text(tmp_path / "data", extra_libraries=LYON, extra_sections=extra))
    return open_context(config_module.load(path))


def _farewell(ctx: Context, library: str, name: str, language: str) -> closing.Farewell:
    person = participants.enroll(
        ctx, library, name, f"{name.lower()}@family-mail.example.net", language=language
    )
    return closing.Farewell(person, ("Tomás", "Sofía"), 3, guardian_copy=False)


@pytest.mark.parametrize(
    ("language", "library", "says"),
    [
        (
            "en",
            "riverside",
            ["Thank you for writing, Maya!", "Tomás and Sofía", "You sent 3 letters"],
        ),
        (
            "es",
            "valparaiso",
            ["¡Gracias por escribir, Maya!", "Tomás y Sofía", "enviaste 3 cartas"],
        ),
        ("fr", "lyon", ["Merci d'avoir écrit, Maya !", "Tomás et Sofía", "tu as envoyé 3 lettres"]),
    ],
)
def test_the_goodbye_in_each_language(
    tmp_path: Path, language: str, library: str, says: list[str]
) -> None:
    plain = _context(tmp_path / "plain")
    staying = _context(tmp_path / "staying", STAY)
    subject, text = closing.goodbye(plain, _farewell(plain, library, "Maya", language))
    _, offered = closing.goodbye(staying, _farewell(staying, library, "Maya", language))
    assert f"{subject}\n{text}".count(says[0]) == 1
    for words in says[1:]:
        assert words in text and words in offered
    assert f"/privacy?lang={language}" in text
    assert "Test Pen Pals" in text
    library_name = plain.config.library(library).name  # type: ignore[union-attr]
    # The offer names the library that will write; without the setting it is not there.
    assert offered.count(library_name) == 2 and text.count(library_name) == 1
    assert not any(domain in text + offered for domain in REAL)


def test_a_goodbye_without_pal_or_letters_says_neither(tmp_path: Path) -> None:
    ctx = _context(tmp_path)
    person = participants.enroll(ctx, "riverside", "Leo", "leo@family-mail.example.net")
    _, text = closing.goodbye(ctx, closing.Farewell(person, (), 0, guardian_copy=False))
    assert "writing to" not in text and "You sent" not in text
    _, one = closing.goodbye(ctx, closing.Farewell(person, ("Ana",), 1, guardian_copy=False))
    assert "writing to Ana." in one and "You sent one letter this year." in one


def test_closing_twice_sends_one_goodbye(tmp_path: Path) -> None:
    ctx = _context(tmp_path)
    maya = participants.enroll(
        ctx,
        "riverside",
        "Maya Smith",
        "maya@family-mail.example.net",
        guardian="mum@family-mail.example.net",
    )
    tomas = participants.enroll(ctx, "valparaiso", "Tomás", "tomas@correo.example.cl")
    claire = participants.enroll(ctx, "lyon", "Claire", "claire@courriel.example.fr")
    participants.pair(ctx, maya, tomas)
    ctx.store.save_letter(
        Letter(
            id=1,
            spool_id="s1",
            sender=tomas.id,
            recipient=maya.id,
            sender_masked=tomas.masked,
            recipient_masked=maya.masked,
            sender_library="valparaiso",
            recipient_library="riverside",
            subject="Hola",
            received_at="2026-01-02T10:00:00+00:00",
            status="delivered",
        )
    )
    partnership = next(p for p in ctx.config.partnerships if p.id == PARTNERSHIP)
    farewells = closing.plan(ctx, partnership)
    assert [(f.participant.id, f.pals, f.letters, f.guardian_copy) for f in farewells] == [
        (maya.id, ("Tomás",), 0, True),
        (tomas.id, ("Maya Smith",), 1, False),
    ]
    assert closing.close(ctx, partnership, farewells, by="", via="cli") == closing.Closed(2, 1, 2)
    for person in (maya, tomas):
        now = ctx.store.participant(person.id)
        assert now is not None and (now.status, now.pause_reason) == ("paused", "program-closed")
    assert ctx.store.participant(claire.id).status == "active"  # type: ignore[union-attr]
    assert sorted(item.id for item in ctx.spool.outbox()) == [
        f"goodbye-{maya.id}-1",
        f"goodbye-{maya.id}-1-guardian",
        f"goodbye-{tomas.id}-1",
    ]
    # Run again, as after a crash with the plan made before it: nobody is sent a second one.
    assert closing.close(ctx, partnership, farewells, by="", via="cli") == closing.Closed(0, 0, 0)
    assert closing.plan(ctx, partnership) == []
    audit = [e for e in ctx.store.audit_log() if e["event"] == "program-closed"]
    assert [(e["goodbyes"], e["paused"], e["participants"]) for e in audit] == [
        (2, 2, [maya.id, tomas.id]),
        (0, 0, [maya.id, tomas.id]),
    ]
    assert not any(domain in str(audit) for domain in REAL)


def test_the_command_shows_who_gets_what_and_names_a_wrong_argument(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ctx = _context(tmp_path)
    maya = participants.enroll(
        ctx,
        "riverside",
        "Maya",
        "maya@family-mail.example.net",
        guardian="mum@family-mail.example.net",
    )
    tomas = participants.enroll(ctx, "valparaiso", "Tomás", "tomas@correo.example.cl")
    participants.pair(ctx, maya, tomas)
    waiting = participants.enroll(
        ctx,
        "valparaiso",
        "Sofía",
        "sofia@correo.example.cl",
        guardian="papa@correo.example.cl",
        details=participants.Details(birth_year=datetime.now(UTC).year - 9),
    )
    assert waiting.consent == "pending"
    queued_before = len(ctx.spool.outbox())  # the guardian's consent request
    command = ["--config", str(ctx.config.path), "program", "close", "--dry-run"]
    month = datetime.now(UTC).strftime("%Y-%m")

    assert cli.main([*command, "--partnership", PARTNERSHIP]) == 0
    shown = capsys.readouterr().out
    assert "3 active participants" in shown
    said = "goodbye in en (pal Tomás, 0 letters delivered), a copy to their guardian"
    assert f"{maya.id} Maya <{maya.masked}>: {said}\n" in shown
    assert f"{waiting.id} Sofía <{waiting.masked}>: no goodbye (a guardian's consent" in shown
    assert not any(domain in shown for domain in REAL)
    assert len(ctx.spool.outbox()) == queued_before
    assert {p.status for p in ctx.store.participants()} == {"active"}

    for wrong, flag in (
        (["--partnership", "nowhere"], "--partnership"),
        (["--partnership", PARTNERSHIP, "--output", str(tmp_path)], "--output"),
        (["--partnership", PARTNERSHIP, "--output", str(tmp_path / "no" / "r.html")], "--output"),
        (["--partnership", PARTNERSHIP, "--by", "claire@bm-lyon.example.org"], "--by"),
    ):
        assert cli.main([*command, *wrong]) == 1
        error = capsys.readouterr().err
        assert error.startswith(f"penpal-relay: {flag}: ") and error.count("\n") == 1

    # Closing, then closing again: the second run finds nobody to send a goodbye to.
    closing_ = ["--config", str(ctx.config.path), "program", "close", "--partnership", PARTNERSHIP]
    report = tmp_path / "final.md"
    assert cli.main([*closing_, "--yes", "--output", str(report)]) == 0
    assert "sent 2 goodbyes and 1 copy to guardians; paused 3\n" in capsys.readouterr().out
    assert report.read_text().startswith(f"# Program report, {reports.year_ending(month)} to")
    assert cli.main([*closing_, "--yes", "--output", str(report)]) == 0
    again = capsys.readouterr().out
    assert "nobody is active" in again and "sent 0 goodbyes and 0 copies" in again
    assert len(ctx.spool.outbox()) == queued_before + 3


@pytest.mark.parametrize(
    ("language", "closed", "paused"),
    [
        (
            "en",
            "Ana closed the program year: goodbyes sent, participants paused",
            "Maya (Riverside) was paused: the program year ended",
        ),
        (
            "es",
            "Ana cerró el año del programa: despedidas enviadas, participantes en pausa",
            "Maya (Riverside) quedó en pausa: terminó el año del programa",
        ),
        (
            "fr",
            "Ana a clos l'année du programme : adieux envoyés, participants en pause",
            "Maya (Riverside) a été mis en pause : l'année du programme est finie",
        ),
    ],
)
def test_the_audit_page_reads_a_close(language: str, closed: str, paused: str) -> None:
    names = Names(
        staff={"ana@riverside.example.org": "Ana"},
        participants={"p1": ("Maya", "riverside")},
        libraries={"riverside": "Riverside"},
    )
    words = Pages(None).words(language)
    entries = [
        {"event": "program-closed", "participants": ["p1"], "goodbyes": 1,
         "by": "ana@riverside.example.org", "via": "cli"},
        {"event": "paused", "participant": "p1", "library": "riverside", "via": "cli",
         "reason": "program-closed"},
    ]  # fmt: skip
    read = [sentence(e, words["audit_sentences"], names, words["events"]) for e in entries]
    assert read == [closed, paused]


def test_a_close_ends_only_its_own_pairs_and_a_later_close_sends_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ctx = _context(tmp_path)
    maya = participants.enroll(ctx, "riverside", "Maya", "maya@family-mail.example.net")
    lea = participants.enroll(ctx, "lyon", "Léa", "lea@courriel.example.fr", language="fr")
    participants.pair(ctx, maya, lea)  # riverside is in two partnerships
    club = participants.enroll(
        ctx, "riverside", "Reading Club", "club@family-mail.example.net",
        guardian="leader@family-mail.example.net",
    )  # fmt: skip
    ana = participants.enroll(ctx, "valparaiso", "Ana María", "ana@correo.example.cl")
    participants.pair(ctx, club, ana)
    record_letter(ctx, club, ana, datetime(2026, 5, 2, 10, tzinfo=UTC))
    record_letter(ctx, club, ana, datetime(2026, 6, 2, 10, tzinfo=UTC))
    record_letter(ctx, club, ana, datetime(2025, 5, 2, 10, tzinfo=UTC))  # the year before
    partnership = next(p for p in ctx.config.partnerships if p.id == PARTNERSHIP)
    now = datetime(2026, 7, 1, tzinfo=UTC)

    farewells = closing.plan(ctx, partnership, now)
    assert [(f.participant.id, f.pals, f.letters) for f in farewells] == [
        (club.id, ("Ana María",), 2),
        (ana.id, ("Reading Club",), 0),
    ]
    assert [p.id for p in closing.kept(ctx, partnership)] == [maya.id]
    _, copy = closing.goodbye(ctx, farewells[0], copy_for="Reading Club")
    assert "This is a copy for Reading Club's guardian" in copy
    assert "You sent 2 letters this year." in copy and "writing to Ana María." in copy
    _, own = closing.goodbye(ctx, farewells[0])
    assert "This is a copy" not in own

    command = ["--config", str(ctx.config.path), "program", "close", "--partnership", PARTNERSHIP]
    assert cli.main([*command, "--dry-run"]) == 0
    shown = capsys.readouterr().out
    assert f"{maya.id} Maya <{maya.masked}>: kept: paired in another partnership\n" in shown
    assert closing.close(ctx, partnership, farewells, by="", via="cli") == closing.Closed(2, 1, 2)
    assert ctx.store.participant(maya.id).status == "active"  # type: ignore[union-attr]
    sent = ctx.spool.message("outbox", f"goodbye-{club.id}-1-guardian")
    body = message_from_bytes(sent, policy=default).get_body(("plain",))
    assert "This is a copy for Reading Club's guardian" in body.get_content()  # type: ignore[union-attr]

    # Resumed, and closed again months later: a new goodbye, not one taken for the first.
    for person in (club, ana):
        participants.resume(ctx, person)
    again = closing.plan(ctx, partnership)
    assert closing.close(ctx, partnership, again, by="", via="cli") == closing.Closed(2, 1, 2)
    assert f"goodbye-{ana.id}-2" in {item.id for item in ctx.spool.outbox()}
