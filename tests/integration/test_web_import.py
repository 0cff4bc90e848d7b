"""Checking a CSV of patrons line by line against the real store, before anything is written."""

from __future__ import annotations

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
