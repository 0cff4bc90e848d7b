"""`python -m relay.web --config PATH`: the dashboard alone, beside a running `serve`.

For trying the dashboard before `serve` runs it itself. Store writes go through one thread,
as in `serve`, and the file lock keeps them apart from `serve`'s. The configuration is
loaded again when the file changes. When listening, `<data_dir>/run/web.json` says where
(`{"pid": ..., "web": "host:port"}`), the same key `serve` uses in its `serve.json`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from relay import config as config_module
from relay.cli import setup_logging
from relay.context import Context, open_context
from relay.errors import ConfigError
from relay.store.files import write_atomic
from relay.web.app import build_app, serve_web
from relay.web.settings import WebSettings


class Reloading:
    """The context, rebuilt when the config file changes; a bad file keeps the old one."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.stamp = self._stamp()
        self.ctx = open_context(config_module.load(path))

    def _stamp(self) -> tuple[int, int]:
        st = self.path.stat()
        return (st.st_mtime_ns, st.st_size)

    def __call__(self) -> Context:
        stamp = self._stamp()
        if stamp != self.stamp:
            self.stamp = stamp
            # serve reports a bad file to the coordinators; here the old configuration stays
            with contextlib.suppress(ConfigError):
                self.ctx = self.ctx.with_config(config_module.load(self.path))
        return self.ctx


def settings_of(ctx: Context, listen: str | None) -> WebSettings:
    found = getattr(ctx.config, "web", None)  # present once [web] is part of Config
    settings = found if isinstance(found, WebSettings) else WebSettings()
    if listen:
        host, _, port = listen.rpartition(":")
        settings = WebSettings(
            **{**settings.__dict__, "listen_host": host, "listen_port": int(port)}
        )
    return settings


async def run(path: Path, listen: str | None) -> None:
    contexts = Reloading(path)
    ctx = contexts()
    setup_logging(ctx.config, to_stderr=True)
    settings = settings_of(ctx, listen)
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")

    async def blocking(fn: Any, *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(writer, functools.partial(fn, *args))

    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    ready_path = ctx.config.relay.data_dir / "run" / "web.json"

    def ready(address: str) -> None:
        ready_path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(ready_path, json.dumps({"pid": os.getpid(), "web": address}).encode())

    app = build_app(contexts, settings, blocking=blocking)
    await serve_web(app, settings.listen_host, settings.listen_port, stopping, ready=ready)
    ready_path.unlink(missing_ok=True)
    writer.shutdown(wait=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m relay.web", description=__doc__)
    parser.add_argument("--config", help="config file (default: as for penpal-relay)")
    parser.add_argument("--listen", help="HOST:PORT, overriding [web] listen (port 0: any)")
    args = parser.parse_args()
    asyncio.run(run(config_module.locate(args.config), args.listen))


if __name__ == "__main__":
    main()
