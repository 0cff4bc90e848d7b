"""Installed like a real tool: the wheel carries the templates, word lists and default config."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


# What a build leaves or reads beside the sources, and environments: not copied.
NOT_SOURCES = shutil.ignore_patterns(
    ".git", ".venv*", "build", "dist", "*.egg-info", "var", "test-output", "__pycache__",
    ".*_cache", ".hypothesis",
)  # fmt: skip


def _wheel(folder: Path) -> Path:
    """The wheel of a copy of this checkout's sources. Built from a copy: a build in the
    checkout rewrites its penpal_relay.egg-info, which the tests running beside this one
    read the package's version from, and a stale build/ or SOURCES.txt there could slip
    files into the wheel."""
    sources = folder / "sources"
    shutil.copytree(ROOT, sources, ignore=NOT_SOURCES)
    command = ["pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(folder)]
    subprocess.run(
        [sys.executable, "-m", *command, str(sources)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = folder.glob("penpal_relay-*.whl")
    return wheel


def test_wheel_ships_templates_words_and_the_default_config(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    for template in (ROOT / "templates").rglob("*"):
        if template.is_file():
            assert f"relay/templates/{template.relative_to(ROOT / 'templates')}" in names
    assert "relay/words/adjectives.txt" in names and "relay/words/animals.txt" in names
    assert any(n.endswith(".data/data/share/penpal-relay/config.toml") for n in names)
    for module in (ROOT / "relay").rglob("*.py"):
        assert str(module.relative_to(ROOT)) in names, module


def test_installed_relay_works_from_any_folder(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path / "dist")
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target)}
    script = (
        "import relay, relay.wording as w; "
        "print(relay.__file__); "
        "print(w.Templates(None).email('es', 'rejected', name='Ana', pal_name='Leo', "
        "subject='Hola', reason='r', library_name='L', program_name='P')[0])"
    )
    shown = subprocess.run(
        [sys.executable, "-c", script],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert shown.splitlines()[0].startswith(str(target))  # the installed copy, not the tree
    assert shown.splitlines()[1] == "Tu carta para Leo no se envió"
