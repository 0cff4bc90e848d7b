"""`penpal-relay serve` started for a test and ended with everything it started."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from tests.support.waiting import wait_for

if TYPE_CHECKING:
    from tests.conftest import Relay


@contextmanager
def serving(relay: Relay) -> Iterator[str]:
    """`relay serve` in its own process group (ended with all it started); yields the
    dashboard's "host:port"."""
    ready = relay.data_dir / "run" / "serve.json"
    ready.unlink(missing_ok=True)
    with open(relay.log_path, "ab") as log:
        relay.process = subprocess.Popen(
            [sys.executable, "-m", "relay", "--config", str(relay.config_path), "serve"],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=relay.root,
            start_new_session=True,
        )
    process = relay.process
    try:

        def listening() -> str | None:
            if process.poll() is not None:
                raise AssertionError(f"serve exited early:\n{relay.log()}")
            if not ready.exists():
                return None
            info = json.loads(ready.read_text())
            return str(info["web"]) if info["pid"] == process.pid else None

        yield wait_for(listening, 20, "serve to listen")
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(30)
        relay.process = None
