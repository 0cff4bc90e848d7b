"""The program report on a fixture program built in a temporary store: exact figures, a
letter reduced by retention still counted, no personal data in any format, and the CLI."""

from __future__ import annotations

import base64
import csv
import io
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from relay import cli, participants, reports
from relay import config as config_module
from relay.context import Context, open_context
from relay.store.files import append_lines
from relay.store.records import Letter, Participant, Step
from relay.web import report as report_page
from relay.web.pages import Pages
from tests.conftest import LYON, config_text

PARTNERSHIP = "riverside+valparaiso"
PEOPLE = (  # library, name, real address, language, year of birth, age band
    ("riverside", "Maya", "maya.smith@family-mail.example.net", "en", 2015, ""),
    ("valparaiso", "Tomás", "tomas.rojas@correo.example.cl", "es", 0, "12-14"),
    ("riverside", "Leo", "leo.park@family-mail.example.net", "en", 0, ""),
    ("valparaiso", "Ana", "ana.vidal@correo.example.cl", "es", 2000, ""),
    ("lyon", "Claire", "claire.martin@courriel.example.fr", "fr", 2014, ""),
    ("riverside", "Sam", "sam.lee@family-mail.example.net", "en", 2013, ""),
)
SUBJECT = "My dog Rex"
ENROLLED = "2025-12-01T10:00:00+00:00"


@pytest.fixture
def program(tmp_path: Path) -> tuple[Context, list[Participant]]:
    path = tmp_path / "config.toml"
    path.write_text(config_text(tmp_path / "data", extra_libraries=LYON))
    ctx = open_context(config_module.load(path))
    people = []
    for library, name, email, language, born, band in PEOPLE:
        person = participants.enroll(ctx, library, name, email, language=language)
        ctx.store.update_participant(
            person.id,
            lambda p, year=born, ages=band: p.but(
                birth_year=year, age_band=ages, created_at=ENROLLED
            ),
        )
        people.append(person)
    participants.leave(ctx, people[5])  # before the period
    ctx.store.update_participant(people[5].id, lambda p: p.but(left_at="2025-12-20T10:00:00+00:00"))
    maya, tomas, leo, ana, claire, sam = people

    def letter(
        number: int,
        writer: Participant,
        pal: Participant,
        status: str,
        steps: list[tuple[str, str]],
    ) -> Letter:
        return Letter(
            id=number,
            spool_id=f"spool-{number}",
            sender=writer.id,
            recipient=pal.id,
            sender_masked=writer.masked,
            recipient_masked=pal.masked,
            sender_library=writer.library,
            recipient_library=pal.library,
            subject=SUBJECT,
            received_at=steps[0][1],
            status=status,  # type: ignore[arg-type]
            decided_at=next((at for event, at in steps if event in ("approved", "rejected")), ""),
            history=tuple(Step(at, event) for event, at in steps),  # type: ignore[arg-type]
        )

    def day(text: str) -> str:
        return f"2026-{text}:00+00:00"

    records = [
        # January: Maya writes, Tomás answers; Leo's letter is rejected.
        letter(
            1,
            maya,
            tomas,
            "delivered",
            [
                ("held", day("01-05T10:00")),
                ("approved", day("01-05T12:00")),
                ("delivered", day("01-05T12:01")),
            ],
        ),
        letter(
            2,
            tomas,
            maya,
            "delivered",
            [
                ("held", day("01-10T09:00")),
                ("approved", day("01-10T13:00")),
                ("delivered", day("01-10T13:01")),
            ],
        ),
        letter(
            3,
            leo,
            ana,
            "rejected",
            [
                ("held", day("01-20T08:00")),
                ("rejected", day("01-20T09:00")),
            ],
        ),
        # reduced by retention below: counted in letters and approval time only
        letter(
            6,
            leo,
            ana,
            "delivered",
            [
                ("held", day("01-15T10:00")),
                ("approved", day("01-15T16:00")),
                ("delivered", day("01-15T16:01")),
            ],
        ),
        # February: Maya writes the day after the prompt; it is delivered, then bounces.
        letter(
            4,
            maya,
            tomas,
            "bounced",
            [
                ("held", day("02-02T10:00")),
                ("approved", day("02-03T10:00")),
                ("delivered", day("02-03T10:01")),
                ("bounced", day("02-03T11:00")),
            ],
        ),
        letter(
            5,
            ana,
            leo,
            "approved",
            [
                ("held", day("02-20T10:00")),
                ("approved", day("02-20T11:00")),
            ],
        ),
        # outside the period: before and after
        letter(
            7,
            maya,
            tomas,
            "delivered",
            [
                ("held", "2025-12-30T10:00:00+00:00"),
                ("approved", "2025-12-30T11:00:00+00:00"),
                ("delivered", "2025-12-30T11:01:00+00:00"),
            ],
        ),
        letter(9, tomas, maya, "held", [("held", day("03-02T10:00"))]),
        # another library's letter, outside the partnership
        letter(8, claire, maya, "held", [("held", day("01-07T10:00"))]),
    ]
    for record in records:
        ctx.store.save_letter(record)
    assert [x.id for x in ctx.store.reduce_letters([6], day("06-01T00:00"))] == [6]
    journal = ctx.config.relay.data_dir / "prompts" / "2026-02.jsonl"
    journal.parent.mkdir(parents=True, exist_ok=True)
    append_lines(
        journal,
        [
            {"p": maya.id, "s": "claimed"},
            {"p": maya.id, "s": "queued"},
            {"p": maya.id, "s": "sent"},
            {"p": tomas.id, "s": "claimed"},  # never sent
            {"p": claire.id, "s": "sent"},  # another partnership
            {"p": sam.id, "s": "sent"},  # who left since
        ],
    )
    return ctx, people


def _counts(**given: int) -> dict[str, int]:
    return {event: given.get(event, 0) for event in reports.EVENTS}


def test_figures_of_a_partnership_are_exact(program: tuple[Context, list[Participant]]) -> None:
    ctx, _ = program
    report = reports.build(ctx.config, ctx.store, "2026-01", "2026-02", PARTNERSHIP)
    assert report.months == ("2026-01", "2026-02")
    assert report.libraries == ("riverside", "valparaiso")
    assert report.letters == {
        ("2026-01", "riverside"): _counts(held=3, approved=2, rejected=1, delivered=2),
        ("2026-01", "valparaiso"): _counts(held=1, approved=1, delivered=1),
        ("2026-02", "riverside"): _counts(held=1, approved=1, delivered=1, bounced=1),
        ("2026-02", "valparaiso"): _counts(held=1, approved=1),
    }
    # waits: riverside 2, 6 (the reduced letter) and 24 hours; valparaiso 4 and 1
    assert report.approval_hours == 4
    assert report.approval_hours_by_library == {"riverside": 6, "valparaiso": 2.5}
    # Maya and Tomás; the reduced letter's pair is not known any more
    assert report.active_pairs == 1
    # letters 1 and 2 were answered; letter 4's answer came after the period
    assert (report.delivered, report.answered) == (3, 2)
    assert report.reply_rate == pytest.approx(2 / 3)
    # Sam left; Maya is 10 at the end of February 2026 (born 2015), Ana 25
    assert report.age_bands == {
        "0-8": 0,
        "9-11": 1,
        "12-14": 1,
        "15-17": 0,
        "18+": 1,
        "unknown": 1,
    }
    assert report.languages == {"en": 2, "es": 2}
    assert report.prompts == {"2026-01": 0, "2026-02": 2}
    assert report.after_prompts == {"2026-01": 0, "2026-02": 1}


def test_a_partnership_counts_its_own_letters_and_who_took_part_in_the_period(
    program: tuple[Context, list[Participant]],
) -> None:
    ctx, people = program
    maya, _, leo, ana, claire, _ = people
    # riverside is also paired with lyon: Maya's letter to Claire is not this partnership's
    ctx.store.save_letter(
        Letter(
            id=20, spool_id="spool-20", sender=maya.id, recipient=claire.id,
            sender_masked=maya.masked, recipient_masked=claire.masked,
            sender_library="riverside", recipient_library="lyon", subject=SUBJECT,
            received_at="2026-01-08T10:00:00+00:00", status="held",
        )
    )  # fmt: skip
    # Leo left in February (he took part), Ana enrolled in March (she did not yet)
    ctx.store.update_participant(
        leo.id, lambda p: p.but(status="left", left_at="2026-02-10T10:00:00+00:00")
    )
    ctx.store.update_participant(ana.id, lambda p: p.but(created_at="2026-03-01T10:00:00+00:00"))
    report = reports.build(ctx.config, ctx.store, "2026-01", "2026-02", PARTNERSHIP)
    assert report.letters[("2026-01", "riverside")] == _counts(
        held=3, approved=2, rejected=1, delivered=2
    )
    assert report.languages == {"en": 2, "es": 1}
    assert report.age_bands["18+"] == 0 and report.age_bands["unknown"] == 1
    everyone = reports.build(ctx.config, ctx.store, "2026-01", "2026-01")
    assert everyone.letters[("2026-01", "riverside")]["held"] == 4


def test_every_library_without_a_partnership(program: tuple[Context, list[Participant]]) -> None:
    ctx, _ = program
    report = reports.build(ctx.config, ctx.store, "2026-01", "2026-01")
    assert report.libraries == ("riverside", "valparaiso", "lyon")
    assert report.letters[("2026-01", "lyon")] == _counts(held=1)
    assert report.languages == {"en": 2, "es": 2, "fr": 1}
    assert report.prompts == {"2026-01": 0}


def test_no_personal_data_in_any_format_in_the_staff_language(
    program: tuple[Context, list[Participant]],
) -> None:
    ctx, people = program
    report = reports.build(ctx.config, ctx.store, "2026-01", "2026-02", PARTNERSHIP)
    texts = {form: reports.render(report, form, _wording(ctx)) for form in reports.FORMATS}
    for person in people:
        for private in (person.name, person.email, person.masked, person.masked.split("@")[0]):
            assert all(private not in text for text in texts.values()), private
    assert all(SUBJECT not in text for text in texts.values())
    markdown = texts["md"]
    assert "| 2026-02 | Riverside Public Library | 1 | 1 | 0 | 1 | 1 | 0 |" in markdown
    assert "| Median hours from writing to approval | 4 |" in markdown
    assert "| Reply rate (delivered letters the pal answered) | 67% (2 of 3) |" in markdown
    lines = list(csv.reader(io.StringIO(texts["csv"])))
    assert lines[0] == ["figure", "month", "library", "group", "value"]
    assert ["letters", "2026-01", "riverside", "held", "3"] in lines
    assert ["reply_rate", "", "", "", "0.6667"] in lines
    assert ["letters_after_prompt", "2026-02", "", "", "1"] in lines
    page = texts["html"]
    assert page.count('src="data:image/png;base64,') == 2
    first = page.split('src="data:image/png;base64,')[1].split('"')[0]
    assert base64.b64decode(first).startswith(b"\x89PNG")
    assert "<script" not in page and "http" not in page
    # In the staff member's language, libraries by name
    spanish = reports.render(report, "md", _wording(ctx, "es"))
    assert spanish.startswith(
        "# Informe del programa, de 2026-01 a 2026-02, "
        "Riverside Public Library ⇄ Biblioteca Santiago Severín\n"
    )
    assert "| Mes | Biblioteca | Escritas | Aprobadas |" in spanish
    assert (
        "| Tasa de respuesta (cartas entregadas que el amigo respondió) | 67 % (2 de 3) |"
        in spanish
    )
    assert "| sin registrar | 1 |" in spanish and "riverside" not in spanish
    french = reports.render(report, "html", _wording(ctx, "fr"))
    assert '<html lang="fr">' in french and "Participants par âge" in french
    assert "Lettres écrites par mois" in french  # a chart's caption
    assert "Biblioteca Santiago Severín" in french and "valparaiso" not in french


def _wording(ctx: Context, language: str = "en") -> reports.Wording:
    names = {library.id: library.name for library in ctx.config.libraries}
    return reports.Wording(Pages(None).words(language), language, names)


def test_cli_writes_the_report_and_names_a_bad_month(
    program: tuple[Context, list[Participant]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ctx, _ = program
    output = tmp_path / "board.csv"
    command = [sys.executable, "-m", "relay", "--config", str(ctx.config.path), "report"]
    done = subprocess.run(
        [*command, "--from", "2026-01", "--to", "2026-02", "--partnership", PARTNERSHIP,
         "--format", "csv", "--output", str(output)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"report 2026-01 to 2026-02 written to {output}\n"
    assert "active_pairs,,,,1\n" in output.read_text()

    def run(*args: str) -> tuple[int, str, str]:
        code = cli.main(["--config", str(ctx.config.path), "report", *args])
        printed = capsys.readouterr()
        return code, printed.out, printed.err

    code, out, _ = run("--to", "2026-02")  # the twelve months up to --to
    assert code == 0
    assert out.startswith("# Program report, 2025-03 to 2026-02, all libraries\n")
    assert run("--from", "2026-13") == (
        1, "", "penpal-relay: --from: expected YYYY-MM, not '2026-13'\n"
    )  # fmt: skip
    assert run("--from", "2026-03", "--to", "2026-02")[2] == (
        "penpal-relay: --from: 2026-03 is after --to 2026-02\n"
    )
    code, out, _ = run("--to", "2026-02", "--language", "es", "--partnership", "lyon+riverside")
    assert out.startswith("# Informe del programa, de 2025-03 a 2026-02, ")
    code, out, _ = run("--to", "2026-02", "--partnership", "lyon+riverside")
    assert out.startswith("# Rapport du programme, de 2025-03 à 2026-02, ")  # its first library
    assert run("--language", "de")[2] == (
        "penpal-relay: --language: expected one of en, es, fr, not 'de'\n"
    )
    assert run("--from", "1000-01", "--to", "1999-12")[2] == (
        "penpal-relay: --from: 1000-01 is before 2000\n"
    )
    assert run("--from", "2000-01", "--to", "2099-12")[2] == (
        "penpal-relay: --from/--to: 2000-01 to 2099-12 is more than 60 months\n"
    )
    assert reports.period_problem("2021-03", "2026-02") == ""  # 60 months
    assert run("--partnership", "riverside+lyon")[2] == (
        "penpal-relay: --partnership: no partnership 'riverside+lyon' in the config\n"
    )
    assert run("--output", str(tmp_path))[2] == f"penpal-relay: --output: {tmp_path} is a folder\n"


def test_the_page_refuses_a_period_too_long_or_too_early(
    program: tuple[Context, list[Participant]],
) -> None:
    ctx, _ = program
    today = datetime(2026, 3, 15, tzinfo=UTC)
    for values, problem in (
        ({"from": "2000-01", "to": "2099-12"}, "long"),
        ({"from": "1000-01", "to": "1999-12"}, "early"),
        ({"from": "2021-01", "to": "2026-01"}, "long"),  # 61 months
    ):
        wanted = report_page.asked(ctx.config, values, today)
        assert (wanted.start, wanted.end, wanted.problem) == ("2025-04", "2026-03", problem)
    assert report_page.asked(ctx.config, {"from": "2021-02", "to": "2026-01"}, today).problem == ""
    pages = Pages(None)
    for language, field in (("en", "“From”"), ("es", "“Desde”"), ("fr", "« Du mois »")):
        problems = pages.words(language)["report_problems"]
        assert field in problems["long"] and field in problems["early"]
