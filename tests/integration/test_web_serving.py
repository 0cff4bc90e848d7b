"""`serve_web` runs on the caller's event loop, says where it listens, and stops when told.

This is how `serve` runs the dashboard: same loop, its own signal handlers left in place.
"""

from __future__ import annotations

import asyncio
import signal
import urllib.request
from collections.abc import Callable

import pytest

from relay.config_web import WebSettings
from relay.web.app import build_app, start_web
from tests.conftest import Relay


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 -- 127.0.0.1
        return answer.status, answer.read().decode()


async def test_the_dashboard_serves_on_the_running_loop_and_stops_on_the_event(
    relay_factory: Callable[..., Relay],
) -> None:
    ctx = relay_factory().context()
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    loop.add_signal_handler(signal.SIGHUP, stopping.set)  # serve's own handler
    app = build_app(lambda: ctx, WebSettings(), blocking=asyncio.to_thread)
    task, address = await asyncio.wait_for(start_web(app, "127.0.0.1", 0, stopping), 10)
    try:
        status, text = await asyncio.to_thread(_get, f"http://{address}/healthz")
        assert (status, text) == (200, "ok")
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        stopping.set()
        await asyncio.wait_for(task, 10)
        loop.remove_signal_handler(signal.SIGHUP)
    assert task.done() and task.exception() is None


async def test_an_address_in_use_is_an_error_not_a_hang(
    relay_factory: Callable[..., Relay],
) -> None:
    ctx = relay_factory().context()
    stopping = asyncio.Event()
    app = build_app(lambda: ctx, WebSettings(), blocking=asyncio.to_thread)
    task, address = await start_web(app, "127.0.0.1", 0, stopping)
    port = int(address.rsplit(":", 1)[1])
    second = build_app(lambda: ctx, WebSettings(), blocking=asyncio.to_thread)
    try:
        with pytest.raises(OSError):
            await asyncio.wait_for(start_web(second, "127.0.0.1", port, stopping), 10)
    finally:
        stopping.set()
        await task
