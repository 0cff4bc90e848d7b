"""/healthz of a running `serve`, over real HTTP: what a container health check or a service
monitor sees when the relay works, and when a part of it has stopped."""

from __future__ import annotations

import os
import signal
import urllib.error
import urllib.request
from collections.abc import Callable

from tests.conftest import Relay
from tests.support.serving import serving
from tests.support.system import children
from tests.support.waiting import wait_for


def health(web: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://{web}/healthz", timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_healthz_says_ok_while_intake_workers_and_store_work(relay: Relay) -> None:
    with serving(relay) as web:
        assert health(web) == (200, "ok")


def test_healthz_answers_503_while_the_store_cannot_be_read_and_ok_once_it_can(
    relay: Relay,
) -> None:
    with serving(relay) as web:
        shard = relay.data_dir / "store" / "letters" / "01.json"  # where letter 1 is kept
        shard.parent.mkdir(parents=True, exist_ok=True)
        shard.write_bytes(b'{"records": {"1": {"id": 1, "writer_')  # a damaged file
        status, reason = health(web)
        assert (status, reason) == (503, "store: unreadable (JSONDecodeError)")
        shard.unlink()
        assert health(web) == (200, "ok")


def test_healthz_answers_503_when_an_intake_process_has_died(
    relay_factory: Callable[..., Relay],
) -> None:
    relay = relay_factory()
    relay.config_path.write_text(
        relay.config_path.read_text().replace("[smtp]\n", "[smtp]\nintake_processes = 1\n", 1)
    )
    with serving(relay) as web:
        assert health(web) == (200, "ok")
        assert relay.process is not None
        (intake,) = children(relay.process.pid, "relay.intake.smtp")
        os.kill(intake, signal.SIGKILL)
        wait_for(lambda: health(web)[0] == 503, what="/healthz to notice the dead intake")
        assert health(web) == (503, "smtp: an intake process stopped")
