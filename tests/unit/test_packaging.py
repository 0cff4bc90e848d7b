"""Installed like a real tool: the wheel carries the templates, word lists and default config."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_ships_templates_words_and_the_default_config(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("penpal_relay-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for template in (ROOT / "templates").rglob("*"):
        if template.is_file():
            assert f"relay/templates/{template.relative_to(ROOT / 'templates')}" in names
    assert "relay/words/adjectives.txt" in names and "relay/words/animals.txt" in names
    assert any(n.endswith(".data/data/share/penpal-relay/config.toml") for n in names)
    for module in (ROOT / "relay").rglob("*.py"):
        assert str(module.relative_to(ROOT)) in names, module
