"""A reload's log level and log file are applied without a restart; SIGHUP reopens."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from relay import config as config_module
from relay import logfile
from tests.conftest import config_text


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield root
    for handler in root.handlers:
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)
    logging.getLogger("relay").setLevel(logging.NOTSET)


def _config(tmp_path: Path) -> config_module.Config:
    path = tmp_path / "config.toml"
    path.write_text(config_text(tmp_path / "data"))
    return config_module.load(path)


def test_apply_follows_the_level_and_the_file(tmp_path: Path, root_logger: logging.Logger) -> None:
    config = _config(tmp_path)
    logfile.apply(config)
    logging.getLogger("relay").info("first line")
    first = tmp_path / "data" / "relay.log"
    assert "INFO first line" in first.read_text()

    moved = tmp_path / "data" / "other.log"
    quiet = replace(config, relay=replace(config.relay, log_level="ERROR", log_file=moved))
    logfile.apply(quiet)
    logging.getLogger("relay").info("not written")
    logging.getLogger("relay").error("second line")
    assert "second line" in moved.read_text() and "not written" not in moved.read_text()
    assert "second line" not in first.read_text()
    assert len([h for h in root_logger.handlers if isinstance(h, logfile.LogFile)]) == 1


def test_reopen_starts_a_new_file_after_a_rename(
    tmp_path: Path, root_logger: logging.Logger
) -> None:
    logfile.apply(_config(tmp_path))
    path = tmp_path / "data" / "relay.log"
    logging.getLogger("relay").info("before")
    path.rename(path.with_name("relay.log.1"))
    logfile.reopen()
    logging.getLogger("relay").info("after")
    assert "after" in path.read_text() and "before" not in path.read_text()
    assert "after" not in path.with_name("relay.log.1").read_text()
