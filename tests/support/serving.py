"""`penpal-relay serve` started for a test and ended with everything it started."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.conftest import Relay


@contextlib.contextmanager
def serving(relay: Relay, env: dict[str, str] | None = None) -> Iterator[str]:
    """`relay serve` in its own process group, ended with everything it started (intake
    processes included) even when the test fails; yields the dashboard's "host:port"."""
    try:
        relay.start(env, own_group=True)
        yield relay.web
    finally:
        process = relay.process
        if process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(30)
            relay.process = None
