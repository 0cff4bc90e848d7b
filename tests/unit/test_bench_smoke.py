"""The benchmark entry point runs end to end at tiny sizes (figures are not looked at)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.__main__ import main
from tests.support.system import ensure_package


def test_store_and_scrub_parts_print_results_and_write_the_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "benchmarks.md"
    report.write_text("# Benchmarks\n\nProse that a run must keep.\n")
    assert main(["store", "--sizes", "40,60", "--repeat", "2", "--report", str(report)]) == 0
    assert main(["scrub", "--repeat", "1", "--report", str(report)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {line["bench"] for line in lines} >= {"store", "store-ratio", "scrub"}
    assert any(line.get("operation") == "serve_ready" for line in lines)
    text = report.read_text()
    assert "Prose that a run must keep." in text
    assert "<!-- bench:store -->" in text and "<!-- bench:scrub -->" in text


def test_intake_part_holds_every_letter_it_accepted(capsys: pytest.CaptureFixture[str]) -> None:
    ensure_package("/usr/sbin/smtp-source", "postfix")  # Postfix's own load generator
    assert (
        main(["intake", "--letters", "10", "--rounds", "1", "--no-postfix", "--workers", "0"]) == 0
    )
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    (relay,) = [line for line in lines if line["bench"] == "intake" and line["target"] == "relay"]
    assert relay["held"] == 10


def test_policy_part_answers_every_request(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    cases = {line["case"]: line for line in lines if line["bench"] == "policy"}
    assert set(cases) == {"paired", "guessed"}
    assert all(case["requests"] == 1000 and case["per_second"] > 0 for case in cases.values())


def test_program_part_matches_everyone_and_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "benchmarks.md"
    arguments = ["program", "--sizes", "40", "--match-sizes", "30", "--report", str(report)]
    assert main(arguments) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    (match,) = [line for line in lines if line.get("operation") == "match"]
    assert (match["participants"], match["pairs"]) == (57, 30)
    (built,) = [line for line in lines if line.get("operation") == "report"]
    assert (built["participants"], built["letters"]) == (40, 400)
    (found,) = [line for line in lines if line.get("operation") == "quiet"]
    assert found["quiet"] == 20  # every pair of the generated store, months after its letters
    assert "<!-- bench:program -->" in report.read_text()
