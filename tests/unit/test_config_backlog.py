"""`[smtp] max_backlog_letters` and `max_backlog_bytes`: defaults, and errors naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from relay import config as config_module
from relay.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def _load(tmp_path: Path, old: str, new: str) -> config_module.Config:
    text = (ROOT / "config.toml").read_text()
    assert old in text
    path = tmp_path / "config.toml"
    path.write_text(text.replace(old, new, 1))
    return config_module.load(path)


def test_shipped_config_comments_and_sets_the_backlog_limits() -> None:
    text = (ROOT / "config.toml").read_text()
    assert "max_backlog_letters = 2000" in text and "max_backlog_bytes = 209715200" in text
    smtp = config_module.load(ROOT / "config.toml").smtp
    assert (smtp.max_backlog_letters, smtp.max_backlog_bytes) == (2000, 200 * 1024 * 1024)


def test_backlog_limits_default_when_left_out(tmp_path: Path) -> None:
    smtp = _load(tmp_path, "max_backlog_letters = 2000\n", "").smtp
    assert smtp.max_backlog_letters == 2000


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "max_backlog_letters = 2000",
            "max_backlog_letters = 0",
            "smtp.max_backlog_letters: must be greater than 0",
        ),
        (
            "max_backlog_bytes = 209715200",
            'max_backlog_bytes = "200 MB"',
            "smtp.max_backlog_bytes: must be a whole number, not a string",
        ),
    ],
)
def test_a_bad_backlog_limit_is_named(tmp_path: Path, old: str, new: str, expected: str) -> None:
    with pytest.raises(ConfigError) as error:
        _load(tmp_path, old, new)
    assert expected in error.value.problems
