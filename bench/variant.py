"""Intake on two cores, as a prototype of the `serve` change proposed in docs/benchmarks.md.

    python -m bench.variant serve --config PATH      serve, SMTP port shared (SO_REUSEPORT),
                                                     also holding what other processes spooled
    python -m bench.variant worker --config PATH --port N   an intake process that only spools
                                                     (the same as `python -m relay.intake.smtp`)

With BENCH_SERVE_LISTENS=0 in the environment, `serve` binds the port without listening, so
every connection goes to the intake processes and `serve` only holds letters.
`serve` itself is unchanged on disk; this module applies the proposed change to it at run time
so that the benchmark can measure it before it is adopted.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from typing import Any

from relay import app
from relay.cli import main as cli_main
from relay.intake.smtp import intake_worker_main

RESCAN_SECONDS = 0.1


class _Reserved:
    """Stands in for serve's SMTP server: the port is bound (SO_REUSEPORT) but not listened on."""

    def __init__(self, host: str, port: int) -> None:
        self.sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM)]
        self.sockets[0].setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        self.sockets[0].bind((host, port))

    def close(self) -> None:
        self.sockets[0].close()


def _patch_serve(listens: bool) -> None:
    loop_class: Any = asyncio.base_events.BaseEventLoop
    create_server = loop_class.create_server
    first = [True]

    async def shared_port(self: Any, *args: Any, **kwargs: Any) -> Any:
        if first[0] and not listens:  # the first server `serve` makes is SMTP intake
            first[0] = False
            return _Reserved(kwargs["host"], kwargs["port"])
        first[0] = False
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
        incoming = self.ctx.spool.incoming(item_id)
        if incoming is not None:
            app.process_incoming(self.ctx, item_id, incoming)

    app.Server._process_incoming = with_rescan  # type: ignore[method-assign]
    app.Server._process_one = process_one  # type: ignore[method-assign]


def main() -> int:
    if sys.argv[1:2] == ["worker"]:
        return intake_worker_main(sys.argv[2:])
    _patch_serve(listens=os.environ.get("BENCH_SERVE_LISTENS", "1") == "1")
    return cli_main([*sys.argv[2:], "serve"])


if __name__ == "__main__":
    sys.exit(main())
