"""`penpal-relay serve` started for a test and ended with everything it started."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

from tests.support.waiting import wait_for

if TYPE_CHECKING:
    from tests.conftest import Relay


@contextlib.contextmanager
def serving(relay: Relay, env: dict[str, str] | None = None) -> Iterator[str]:
    """`relay serve` in its own process group, ended with everything it started (intake
    processes included) even when the test fails; sets `relay.port` and yields the
    dashboard's "host:port"."""
    ready = relay.data_dir / "run" / "serve.json"
    ready.unlink(missing_ok=True)
    with open(relay.log_path, "ab") as log:
        relay.process = subprocess.Popen(
            [sys.executable, "-m", "relay", "--config", str(relay.config_path), "serve"],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=relay.root,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
    process = relay.process
    try:

        def listening() -> dict[str, str] | None:
            if process.poll() is not None:
                raise AssertionError(f"serve exited early:\n{relay.log()}")
            if not ready.exists():
                return None
            info: dict[str, str] = json.loads(ready.read_text())
            return info if info["pid"] == process.pid else None

        info = wait_for(listening, 20, "serve to listen")
        relay.port = int(info["smtp"].rsplit(":", 1)[1])
        yield info["web"]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(30)
        relay.process = None
