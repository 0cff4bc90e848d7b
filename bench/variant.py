"""Intake on two cores, as a prototype of the `serve` change proposed in docs/benchmarks.md.

    python -m bench.variant serve --config PATH      serve, SMTP port shared (SO_REUSEPORT),
                                                     also holding what other processes spooled
    python -m bench.variant worker --config PATH --port N   an intake process that only spools

`serve` itself is unchanged on disk; this module applies the proposed change to it at run time
so that the benchmark can measure it before it is adopted.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

from relay import app
from relay import config as config_module
from relay.cli import main as cli_main
from relay.context import open_context
from relay.intake.smtp import serve_spool_only

RESCAN_SECONDS = 0.1


def _patch_serve() -> None:
    loop_class: Any = asyncio.base_events.BaseEventLoop
    create_server = loop_class.create_server

    async def shared_port(self: Any, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("reuse_port", True)
        return await create_server(self, *args, **kwargs)

    loop_class.create_server = shared_port
    process_incoming = app.Server._process_incoming

    async def with_rescan(self: app.Server) -> None:
        async def rescan() -> None:
            seen: set[str] = set()
            while True:
                await asyncio.sleep(RESCAN_SECONDS)
                for item_id in await self.thread_call(self.ctx.spool.pending_ids):
                    if item_id not in seen:
                        seen.add(item_id)
                        self.incoming.put_nowait(item_id)

        task = asyncio.create_task(rescan())
        try:
            await process_incoming(self)
        finally:
            task.cancel()

    def process_one(self: app.Server, item_id: str) -> None:
        item = self.ctx.spool.pending_item(item_id)
        if item is not None:
            app.process_incoming(self.ctx, item)

    app.Server._process_incoming = with_rescan  # type: ignore[method-assign]
    app.Server._process_one = process_one  # type: ignore[method-assign]


async def _worker(config_path: Path, port: int) -> None:
    ctx = open_context(config_module.load(config_path))
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    serving = asyncio.create_task(
        serve_spool_only(lambda: ctx, ctx.config.smtp.listen.host, port, stop)
    )
    while not serving.done() and not _listening(port):
        await asyncio.sleep(0.01)
    print("listening", flush=True)
    await serving


def _listening(port: int) -> bool:
    # Two sockets on the port (serve's and ours) show that ours is bound.
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    local = f":{port:04X} "
    return sum(1 for row in rows if local in row.split()[1] + " " and row.split()[3] == "0A") >= 2


def main() -> int:
    if sys.argv[1:2] == ["worker"]:
        parser = argparse.ArgumentParser(prog="python -m bench.variant worker")
        parser.add_argument("--config", type=Path, required=True)
        parser.add_argument("--port", type=int, required=True)
        args = parser.parse_args(sys.argv[2:])
        asyncio.run(_worker(args.config, args.port))
        return 0
    _patch_serve()
    return cli_main([*sys.argv[2:], "serve"])


if __name__ == "__main__":
    sys.exit(main())
