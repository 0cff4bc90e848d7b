"""`penpal-relay serve`: intake, processing, delivery and configuration reload in one loop.

One process, one event loop. Store writes go through one worker thread (the store's single
owner inside this process); spool writes and lookups use the default thread pool, so intake
never waits behind a slow store write. Work that was durably accepted but not finished when
the process stopped (incoming messages not yet held, approved letters not yet queued, queued
messages not yet delivered) is found on disk and finished at start.

Signals: SIGHUP reloads the configuration (so does a change of the file on disk); SIGTERM
and SIGINT stop accepting connections, let SMTP transactions in flight finish (up to
`[smtp] shutdown_grace_seconds`), finish the delivery in hand, and exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from email.headerregistry import Address
from pathlib import Path
from typing import Any

from relay import config as config_module
from relay import moderation, outcomes, replies
from relay.config import Config
from relay.context import Context, open_context
from relay.errors import ConfigError
from relay.intake.imap import ImapIntake
from relay.intake.smtp import IntakeHandler, RelaySMTP
from relay.outbox.worker import Worker
from relay.process import process_incoming
from relay.schedule import run_scheduled
from relay.store.files import write_atomic
from relay.web.app import build_app, start_web

log = logging.getLogger("relay")

POLL_SECONDS = 1.0
SPOOL_SCAN_SECONDS = 0.1  # how soon a letter spooled by an intake process is held
RETRY_PROCESSING_SECONDS = 60.0
DELIVERY_CONCURRENCY = 4
SCHEDULE_SECONDS = 60.0
SETTLE_TRIES = 5
SETTLE_SECONDS = 0.2


class Server:
    def __init__(self, config_path: Path, config: Config) -> None:
        self.config_path = config_path
        self.ctx = open_context(config)
        self.io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
        self.sessions: set[RelaySMTP] = set()
        self.incoming: asyncio.Queue[str] = asyncio.Queue()
        self.stopping = asyncio.Event()
        self.outbox_changed = asyncio.Event()
        self._config_stamp = self._stamp()
        self._reported_bad_stamp: tuple[int, int] | None = None

    # --- helpers -------------------------------------------------------------------------

    async def store_call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.io, functools.partial(fn, *args, **kwargs))

    async def thread_call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(fn, *args, **kwargs)

    def context(self) -> Context:
        return self.ctx

    def _stamp(self) -> tuple[int, int]:
        try:
            st = self.config_path.stat()
        except OSError:
            return (0, 0)
        return (st.st_mtime_ns, st.st_size)

    # --- run -----------------------------------------------------------------------------

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        removed = await self.store_call(self.ctx.spool.remove_unacknowledged)
        if removed:
            log.info("removed %d unacknowledged partial messages", removed)
        await self.store_call(moderation.reconcile, self.ctx)
        for item in await self.store_call(self.ctx.spool.pending):
            self.incoming.put_nowait(item.id)

        listen = self.ctx.config.smtp.listen
        intake_processes = self.ctx.config.smtp.intake_processes
        handler = IntakeHandler(self.context, self.thread_call, self.incoming.put_nowait)
        if intake_processes:
            # Intake processes accept every connection; serve only holds (the second core).
            reserved = _reserve_port(listen.host, listen.port)
            server: asyncio.Server | socket.socket = reserved
            port = reserved.getsockname()[1]
        else:
            server = await loop.create_server(
                lambda: RelaySMTP(
                    handler,
                    self.sessions,
                    data_size_limit=self.ctx.config.smtp.max_message_bytes,
                    enable_SMTPUTF8=True,
                    decode_data=False,
                    hostname=self.ctx.config.relay.domain,
                    ident="penpal-relay",
                ),
                host=listen.host,
                port=listen.port,
            )
            port = server.sockets[0].getsockname()[1]
        spoolers = []  # intake processes that only spool, on a second core
        for _ in range(intake_processes):
            spoolers.append(await self.thread_call(self._start_intake, port))
        web = self.ctx.config.web
        dashboard = build_app(self.context, web, blocking=self.store_call)
        web_task, web_address = await start_web(
            dashboard, web.listen_host, web.listen_port, self.stopping
        )
        self._write_ready(f"{listen.host}:{port}", web_address)
        log.info(
            "listening smtp=%s:%d web=%s data=%s",
            listen.host,
            port,
            web_address,
            self.ctx.config.relay.data_dir,
        )

        for sig, action in (
            (signal.SIGTERM, self.stopping.set),
            (signal.SIGINT, self.stopping.set),
            (signal.SIGHUP, self._reload_soon),
        ):
            loop.add_signal_handler(sig, action)
        workers = [
            asyncio.create_task(self._process_incoming(), name="process"),
            asyncio.create_task(self._deliver(), name="deliver"),
            asyncio.create_task(self._watch_config(), name="config"),
            asyncio.create_task(self._schedule(), name="schedule"),
        ]
        if spoolers:
            workers.append(asyncio.create_task(self._watch_spool(), name="spool"))
        imap_stop = threading.Event()
        imap_task = None
        if self.ctx.config.imap is not None:
            intake = ImapIntake(self.context, self._accepted_threadsafe(loop), imap_stop)
            imap_task = asyncio.create_task(asyncio.to_thread(intake.run), name="imap")
        await self.stopping.wait()
        log.info("stopping: no new connections")
        imap_stop.set()
        for process in spoolers:
            process.terminate()  # stops accepting, finishes its transactions in flight
        for process in spoolers:
            await self.thread_call(process.wait)
        server.close()
        if imap_task is not None:
            # The worker notices within a second; a message in hand is finished first.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(imap_task, self.ctx.config.smtp.shutdown_grace_seconds)
        await self._drain_sessions()
        await web_task  # stops on the same event; requests in flight finish first
        for task in workers:
            task.cancel()
        for task in workers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.io.shutdown(wait=True)
        self._ready_path().unlink(missing_ok=True)
        log.info("stopped")

    def _accepted_threadsafe(self, loop: asyncio.AbstractEventLoop) -> Any:
        def accepted(item_id: str) -> None:
            loop.call_soon_threadsafe(self.incoming.put_nowait, item_id)

        return accepted

    def _ready_path(self) -> Path:
        return self.ctx.config.relay.data_dir / "run" / "serve.json"

    def _write_ready(self, smtp: str, web: str) -> None:
        path = self._ready_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        ready = {"pid": os.getpid(), "smtp": smtp, "web": web}
        write_atomic(path, json.dumps(ready).encode())

    async def _drain_sessions(self) -> None:
        grace = self.ctx.config.smtp.shutdown_grace_seconds
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while any(s.in_transaction for s in self.sessions) and loop.time() < deadline:
            await asyncio.sleep(0.05)
        for session in list(self.sessions):
            if session.transport is not None:
                with contextlib.suppress(Exception):
                    await session.push(replies.SHUTTING_DOWN)
                session.transport.close()

    # --- workers -------------------------------------------------------------------------

    async def _process_incoming(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            item_id = await self.incoming.get()
            try:
                await self.store_call(self._process_one, item_id)
            except Exception:
                log.exception("processing failed spool=%s; will retry", item_id)
                loop.call_later(RETRY_PROCESSING_SECONDS, self.incoming.put_nowait, item_id)

    def _process_one(self, item_id: str) -> None:
        item = self.ctx.spool.pending_item(item_id)  # None: processed already
        if item is not None:
            process_incoming(self.ctx, item)

    def _start_intake(self, port: int) -> subprocess.Popen[str]:
        """An intake process sharing the SMTP port: it only routes and spools (second core)."""
        command = ["-m", "relay.intake.smtp", "--config", str(self.config_path)]
        process = subprocess.Popen(
            [sys.executable, *command, "--port", str(port)],
            stdout=subprocess.PIPE,
            text=True,
        )
        if process.stdout is None or process.stdout.readline().strip() != "listening":
            process.kill()
            raise RuntimeError("an intake process did not start")
        return process

    async def _watch_spool(self) -> None:
        """Hold what the intake processes spooled: they cannot reach this process's queue."""
        seen: set[str] = set()
        while True:
            await asyncio.sleep(SPOOL_SCAN_SECONDS)
            committed = await self.thread_call(self.ctx.spool.pending_ids)
            for item_id in committed:
                if item_id not in seen:
                    self.incoming.put_nowait(item_id)
            seen = set(committed)

    async def _deliver(self) -> None:
        reactions = outcomes.for_relay(self.context)
        await Worker(
            self.context,
            reactions,
            self.store_call,
            self.thread_call,
            self.outbox_changed,
            DELIVERY_CONCURRENCY,
        ).run()

    async def _schedule(self) -> None:
        """Reminders, prompts and digests: each run sends what is due now, so work missed
        while the relay was down is caught up, not skipped."""
        while True:
            try:
                await self.store_call(run_scheduled, self.ctx, datetime.now(UTC))
                self.outbox_changed.set()
            except Exception:
                log.exception("scheduled work failed; trying again in a minute")
            await asyncio.sleep(SCHEDULE_SECONDS)

    async def _watch_config(self) -> None:
        while True:
            await asyncio.sleep(POLL_SECONDS)
            if self._stamp() != self._config_stamp:
                await self._reload_logged()

    def _reload_soon(self) -> None:
        asyncio.get_running_loop().create_task(self._reload_logged())

    async def _reload_logged(self) -> None:
        try:
            await self.reload()
        except Exception:
            log.exception("config reload failed; the running configuration stays")

    async def _read_settled(self) -> tuple[tuple[int, int], Config]:
        """Load the file once it holds still: an editor may be half-way through writing it."""
        for _ in range(SETTLE_TRIES):
            before = self._stamp()
            try:
                new = await self.thread_call(config_module.load, self.config_path)
            except ConfigError:
                if self._stamp() == before:
                    raise
            else:
                if self._stamp() == before:
                    return before, new
            await asyncio.sleep(SETTLE_SECONDS)
        return self._stamp(), await self.thread_call(config_module.load, self.config_path)

    async def reload(self) -> None:
        stamp = self._stamp()
        self._config_stamp = stamp
        try:
            stamp, new = await self._read_settled()
            self._config_stamp = stamp
        except ConfigError as error:
            for problem in error.problems:
                log.error("config not reloaded: %s", problem)
            if stamp != self._reported_bad_stamp:
                self._reported_bad_stamp = stamp
                await self.store_call(self._tell_coordinators, error.problems)
            return
        old = self.ctx.config
        if new.smtp.listen != old.smtp.listen or new.relay.data_dir != old.relay.data_dir:
            log.warning("config: [smtp] listen and [relay] data_dir take effect after a restart")
        self.ctx = self.ctx.with_config(new)
        logging.getLogger("relay").setLevel(new.relay.log_level)
        log.info("config reloaded from %s", self.config_path)

    def _tell_coordinators(self, problems: list[str]) -> None:
        for index, coordinator in enumerate(self.ctx.config.coordinators):
            subject, text = self.ctx.templates.email(
                coordinator.language,
                "config_invalid",
                staff_name=coordinator.name,
                path=str(self.config_path),
                problems=problems,
                program_name=self.ctx.config.relay.program_name,
            )
            moderation.send_notice(
                self.ctx,
                None,
                Address(coordinator.name, addr_spec=coordinator.email),
                subject,
                text,
                kind=f"config-notice-{index}",
            )
        self.outbox_changed.set()


def _reserve_port(host: str, port: int) -> socket.socket:
    """Bind (never listen on) the SMTP port so that intake processes can share it."""
    reserved = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    reserved.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    reserved.bind((host, port))
    return reserved


def serve(config_path: Path, config: Config) -> None:
    asyncio.run(Server(config_path, config).run())
