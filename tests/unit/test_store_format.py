"""The store's format number: written when a store is made, refused when newer, and the
one place a future layout change goes (`MIGRATIONS`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from relay.store import Store, version


def test_a_new_store_is_numbered(tmp_path: Path) -> None:
    Store(tmp_path / "store")
    written = json.loads((tmp_path / "store" / "format.json").read_text())
    assert written == {"format": version.FORMAT, "written_by": version.package_version()}


def test_a_newer_store_is_refused_and_left_alone(tmp_path: Path) -> None:
    root = tmp_path / "store"
    root.mkdir()
    (root / "format.json").write_text('{"format": 7, "written_by": "3.0"}')
    with pytest.raises(version.NewerStore) as refused:
        Store(root)
    assert f"store format 7; this version reads format {version.FORMAT}" in str(refused.value)
    assert [p.name for p in root.iterdir()] == ["format.json"]


def test_an_unreadable_number_is_named(tmp_path: Path) -> None:
    root = tmp_path / "store"
    root.mkdir()
    (root / "format.json").write_text('{"format": "one"}')
    with pytest.raises(version.UserError, match=r"format\.json: no store format number"):
        Store(root)


def test_an_older_store_is_migrated_one_step_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "store"
    Store(root)  # a format-1 store
    steps: list[int] = []

    def second(folder: Path) -> None:
        steps.append(2)
        (folder / "second.txt").write_text("made by the step to format 2")

    def third(folder: Path) -> None:
        assert json.loads((folder / "format.json").read_text())["format"] == 2
        steps.append(3)

    monkeypatch.setattr(version, "FORMAT", 3)
    monkeypatch.setattr(version, "MIGRATIONS", {1: second, 2: third})
    Store(root)
    Store(root)  # up to date: no step runs again
    assert steps == [2, 3]
    assert json.loads((root / "format.json").read_text())["format"] == 3
    assert (root / "second.txt").exists()
