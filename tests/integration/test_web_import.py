"""Checking a CSV of patrons line by line against the real store, before anything is written."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from relay.web import importing
from tests.conftest import Pals, Relay


def _kinds(plan: importing.Plan) -> dict[int, str]:
    return {problem.line: problem.kind for problem in plan.problems}


def test_each_bad_line_is_named_and_the_good_ones_are_kept(relay: Relay, pals: Pals) -> None:
    text = (
        "Email;Name;Pal\n"
        "ana@example.net;Ana;\n"
        "ana@example.net;Ana;\n"
        f"{pals.maya.email};Maya;\n"
        "ben@example.net;;\n"
        f"ben@example.net;Ben;{pals.leo.masked}\n"
        f"cleo@example.net;Cleo;{pals.tomas.id}\n"
        "\n"
    )
    plan = importing.plan(relay.context(), "riverside", text)
    assert [(row.line, row.name) for row in plan.rows] == [(2, "Ana"), (7, "Cleo")]
    assert plan.rows[1].pal is not None and plan.rows[1].pal.id == pals.tomas.id
    assert _kinds(plan) == {3: "twice", 4: "enrolled", 5: "name", 6: "pal-library"}


def test_a_file_without_a_header_is_refused_whole(relay: Relay) -> None:
    plan = importing.plan(relay.context(), "riverside", "Ana,ana@example.net\n")
    assert plan.rows == [] and _kinds(plan) == {1: "columns"}


def test_windows_spreadsheets_are_read_too() -> None:
    assert importing.decoded("name,email\nZoé,z@example.net\n".encode("cp1252")).startswith(
        "name,email\nZoé"
    )
    assert importing.decoded("\ufeffname".encode()) == "name"


def test_a_spanish_excel_file_with_guardians_is_read_and_each_problem_names_its_column(
    relay: Relay,
) -> None:
    """Excel on a Spanish Windows: Windows-1252, semicolons, Spanish headers in any case."""
    text = (
        "Nombre;Correo;Año de nacimiento;Intereses;Nombre del tutor;Correo del tutor;Copias\n"
        "Inés;ines@example.net;2016;Fútbol, dibujo;Rosa Díaz;rosa@example.net;sí\n"
        "Iker;iker@example.net;2016;;;;\n"
        "Lía;lia@example.net;2016;;Eva;eva-at-example.net;\n"
        "Saúl;saul@example.net;20016;;;;\n"
        "Olga;olga@example.net;2000;cine;;;quizás\n"
        "Pau;pau@example.net;;lectura;;;\n"
    )
    today = date(2026, 11, 30)
    plan = importing.plan(
        relay.context(), "riverside", importing.decoded(text.encode("cp1252")), today=today
    )
    ines, pau = plan.rows
    assert (ines.name, ines.age, ines.enrolment.needs_consent) == ("Inés", 9, True)
    assert ines.enrolment.interests == ("fútbol", "dibujo")
    assert (ines.enrolment.guardian_name, ines.enrolment.guardian) == (
        "Rosa Díaz",
        "rosa@example.net",
    )
    assert ines.enrolment.guardian_copies is True
    assert (pau.age, pau.enrolment.needs_consent) == (None, False)
    columns = {p.line: (p.kind, p.column) for p in plan.problems}
    assert columns == {
        3: ("guardian-required", "guardian_email"),
        4: ("guardian", "guardian_email"),
        5: ("birth_year", "birth_year"),
        6: ("guardian_copies", "guardian_copies"),
    }
    assert importing.plan(relay.context(), "riverside", "Prénom,Courriel\nZoé,z@example.net\n").rows


def test_the_shipped_example_imports_without_a_problem(relay: Relay) -> None:
    example = Path(__file__).resolve().parents[2] / "docs" / "examples" / "class-import.csv"
    plan = importing.plan(relay.context(), "riverside", importing.decoded(example.read_bytes()))
    assert plan.problems == [] and len(plan.rows) == 5
    assert [row.name for row in plan.rows if row.enrolment.needs_consent] == ["Maya", "Leo", "Ava"]
