"""Where log lines go: stderr for `serve`, and the `[relay] log_file` for every command.

The log file is opened anew on SIGHUP (`reopen`): logrotate renames `relay.log` and then
signals the relay, and from that moment new lines go to a fresh file at the configured path
instead of following the renamed one. A reload that changes `log_file` or `log_level` is
applied the same way, without a restart.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from relay.config import Config

FORMAT = "%(asctime)s %(levelname)s %(message)s"


class LogFile(logging.FileHandler):
    """The configured log file; `reopen` closes it and opens the path again."""

    def reopen(self) -> None:
        self.acquire()
        try:
            if self.stream is not None:
                self.stream.close()
            self.stream = self._open()
        finally:
            self.release()


def _open_log_file(path: Path) -> LogFile:
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = LogFile(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(FORMAT))
    return handler


def setup_logging(config: Config, *, to_stderr: bool) -> None:
    """Log lines go to stderr for `serve` and, when `[relay] log_file` is set, to that file
    for every command, so `grep 'letter=41 '` finds a letter's whole story in one place."""
    handlers: list[logging.Handler] = []
    if to_stderr:
        stderr = logging.StreamHandler(sys.stderr)
        stderr.setFormatter(logging.Formatter(FORMAT))
        handlers.append(stderr)
    if config.relay.log_file is not None:
        handlers.append(_open_log_file(config.relay.log_file))
    logging.basicConfig(level=config.relay.log_level, handlers=handlers or [logging.NullHandler()])
    # aiosmtpd logs every SMTP command at INFO, real addresses included.
    logging.getLogger("mail.log").setLevel(logging.WARNING)


def _log_files() -> list[LogFile]:
    return [h for h in logging.getLogger().handlers if isinstance(h, LogFile)]


def reopen() -> None:
    """Open the log file again at its path (after logrotate renamed it)."""
    for handler in _log_files():
        handler.reopen()


def apply(config: Config) -> None:
    """Follow a reloaded configuration: its log level, and its log file when it moved."""
    root = logging.getLogger()
    root.setLevel(config.relay.log_level)
    logging.getLogger("relay").setLevel(config.relay.log_level)
    wanted = config.relay.log_file
    current = _log_files()
    if [Path(h.baseFilename) for h in current] == ([wanted.absolute()] if wanted else []):
        return
    for handler in current:
        root.removeHandler(handler)
        handler.close()
    if wanted is not None:
        root.addHandler(_open_log_file(wanted))
