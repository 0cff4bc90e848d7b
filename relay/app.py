"""`penpal-relay serve`: intake, processing, delivery and configuration reload in one loop.

One process, one event loop. Store writes go through one worker thread (the store's single
owner inside this process); spool writes and lookups use the default thread pool, so intake
never waits behind a slow store write.

Start-up listens first: SMTP and the web app accept connections before any recovery work.
Work that was durably accepted but not finished when the process stopped (incoming messages
not yet held, approved letters not yet queued, queued messages not yet delivered) is then
found on disk and finished by the workers, beside new mail. Approved letters whose outbox
entries are missing (a CLI killed between recording the decision and queueing the letter)
are looked for again every `RECONCILE_SECONDS`, not only at start.

Signals: SIGHUP opens the log file anew (logrotate renamed it) and reloads the
configuration (so does a change of the file on disk); SIGTERM
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
from relay import faults, letters, logfile, notices, outcomes
from relay.backup import hold_serve_lock
from relay.config import Config
from relay.context import Context, open_context
from relay.errors import ConfigError
from relay.intake.imap import ImapIntake
from relay.intake.policy import PolicyService, listen_policy
from relay.intake.smtp import IntakeHandler, RelaySMTP, finish_sessions, listen_smtp
from relay.outbox.worker import Worker
from relay.process import process_incoming
from relay.schedule import run_purge, run_scheduled
from relay.store.files import write_atomic
from relay.web.app import build_app, start_web

log = logging.getLogger("relay")

POLL_SECONDS = 1.0
SPOOL_SCAN_SECONDS = 0.1  # how soon a letter spooled by an intake process is held
RETRY_PROCESSING_SECONDS = 60.0
# Failed attempts at processing one incoming message (counted on disk, across restarts)
# before it is set aside in spool/unprocessed/ and the coordinators are told.
MAX_PROCESSING_ATTEMPTS = 3
DELIVERY_CONCURRENCY = 4
SCHEDULE_SECONDS = 60.0
SETTLE_TRIES = 5
SETTLE_SECONDS = 0.2
RECONCILE_SECONDS = 5.0  # how soon an approved letter that was never queued is queued
RECONCILE_SETTLE_SECONDS = 2.0  # an approval this recent may still be queueing its letter
PAUSE_POLL_SECONDS = 0.05
# /healthz waits this long for the store's thread to read a record; longer is "not answering".
HEALTH_STORE_SECONDS = 5.0


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
        self.smtp_server: asyncio.Server | socket.socket | None = None
        self.policy_server: asyncio.Server | None = None
        self.intake_processes: list[subprocess.Popen[str]] = []
        self.web_task: asyncio.Task[None] | None = None
        self.workers: list[asyncio.Task[None]] = []
        self.imap_stop = threading.Event()
        self.imap_task: asyncio.Future[None] | None = None

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
        self._announce_dkim()  # the key made (first start) or read, a bad one refused, first
        await self._remove_unacknowledged()
        smtp_port = await self._listen_smtp()
        await self._start_intake_processes(smtp_port)
        policy_address = await self._listen_policy()
        web_address = await self._start_web()
        self._handle_signals()  # before "ready": a SIGHUP right after it must not kill serve
        self._announce(smtp_port, web_address, policy_address)
        self._start_workers()
        await self.stopping.wait()
        await self._stop()

    async def _remove_unacknowledged(self) -> None:
        """Before listening: a body without its marker now can only be a leftover of a crash,
        never a message being written."""
        removed = await self.store_call(self.ctx.spool.remove_unacknowledged)
        if removed:
            log.info("removed %d unacknowledged partial messages", removed)

    async def _listen_smtp(self) -> int:
        """Listen on the SMTP port; returns the port (the OS picks one for port 0)."""
        listen = self.ctx.config.smtp.listen
        if self.ctx.config.smtp.intake_processes:
            # Intake processes accept every connection; serve only holds (the second core).
            reserved = _reserve_port(listen.host, listen.port)
            self.smtp_server = reserved
            bound: int = reserved.getsockname()[1]
            return bound
        handler = IntakeHandler(self.context, self.thread_call, self.incoming.put_nowait)
        server = await listen_smtp(self.context, handler, self.sessions, listen.host, listen.port)
        self.smtp_server = server
        port: int = server.sockets[0].getsockname()[1]
        return port

    async def _start_intake_processes(self, port: int) -> None:
        for _ in range(self.ctx.config.smtp.intake_processes):
            self.intake_processes.append(await self._start_intake(port))

    async def _start_intake(self, port: int) -> subprocess.Popen[str]:
        """An intake process sharing the SMTP port: it only routes and spools (second core).

        Started from this (the main) thread: Linux ends an intake process when the thread
        that started it ends (see `end_with_parent`), and a pool thread may end any time.
        """
        command = ["-m", "relay.intake.smtp", "--config", str(self.config_path)]
        process = subprocess.Popen(
            [sys.executable, *command, "--port", str(port), "--parent", str(os.getpid())],
            stdout=subprocess.PIPE,
            text=True,
        )
        said = await self.thread_call(process.stdout.readline) if process.stdout else ""
        if said.strip() != "listening":
            process.kill()
            await self.thread_call(process.wait)
            raise RuntimeError("an intake process did not start")
        return process

    async def _listen_policy(self) -> str:
        """The recipient check for Postfix ([smtp] policy_listen); "" when not offered."""
        listen = self.ctx.config.smtp.policy_listen
        if listen is None:
            return ""
        service = PolicyService(self.context, self.thread_call)
        self.policy_server = await listen_policy(service, listen.host, listen.port)
        port = self.policy_server.sockets[0].getsockname()[1]
        return f"{listen.host}:{port}"

    async def _start_web(self) -> str:
        web = self.ctx.config.web
        dashboard = build_app(self.context, web, blocking=self.store_call, liveness=self.liveness)
        self.web_task, address = await start_web(
            dashboard, web.listen_host, web.listen_port, self.stopping
        )
        return address

    async def liveness(self) -> str | None:
        """Why the relay is not doing its work, or None (for /healthz; no addresses, no paths).

        Intake listening, every worker running (each loops until stopped, so a finished one
        has failed), and the store's thread reading a record within `HEALTH_STORE_SECONDS`.
        """
        if self.stopping.is_set():
            return "stopping"
        problem = self._intake_problem()
        if problem is not None:
            return problem
        for task in self.workers:
            if task.done():
                return f"worker stopped: {task.get_name()}"
        try:
            await asyncio.wait_for(self.store_call(self.ctx.store.letter, 1), HEALTH_STORE_SECONDS)
        except TimeoutError:
            return "store: not answering"
        except Exception as error:
            return f"store: unreadable ({type(error).__name__})"
        return None

    def _intake_problem(self) -> str | None:
        if isinstance(self.smtp_server, asyncio.Server) and not self.smtp_server.is_serving():
            return "smtp: not listening"
        if any(process.poll() is not None for process in self.intake_processes):
            return "smtp: an intake process stopped"
        if self.policy_server is not None and not self.policy_server.is_serving():
            return "policy: not listening"
        if self.imap_task is not None and self.imap_task.done():
            return "imap: intake stopped"
        return None

    def _announce(self, smtp_port: int, web_address: str, policy_address: str) -> None:
        listen = self.ctx.config.smtp.listen
        self._write_ready(f"{listen.host}:{smtp_port}", web_address, policy_address)
        log.info(
            "listening smtp=%s:%d web=%s%s data=%s",
            listen.host,
            smtp_port,
            web_address,
            f" policy={policy_address}" if policy_address else "",
            self.ctx.config.relay.data_dir,
        )

    def _announce_dkim(self) -> None:
        signer = self.ctx.dkim
        if signer is None:
            log.warning("dkim: signing is off ([dkim] sign = false); mail leaves unsigned")
            return
        log.info(
            "dkim: signing as %s; publish the TXT record %s (`penpal-relay dkim record`)",
            self.ctx.config.relay.domain,
            signer.record.name,
        )

    def _handle_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig, action in (
            (signal.SIGTERM, self.stopping.set),
            (signal.SIGINT, self.stopping.set),
            (signal.SIGHUP, self._reload_soon),
        ):
            loop.add_signal_handler(sig, action)

    def _start_workers(self) -> None:
        """Recovery work happens here, in the workers, once intake is already listening."""
        self.workers = [
            asyncio.create_task(self._process_incoming(), name="process"),
            asyncio.create_task(self._reconcile(), name="reconcile"),
            asyncio.create_task(self._deliver(), name="deliver"),
            asyncio.create_task(self._watch_config(), name="config"),
            asyncio.create_task(self._schedule(), name="schedule"),
        ]
        if self.intake_processes:
            self.workers.append(asyncio.create_task(self._watch_spool(), name="spool"))
        if self.ctx.config.imap is not None:
            loop = asyncio.get_running_loop()
            intake = ImapIntake(self.context, self._accepted_threadsafe(loop), self.imap_stop)
            self.imap_task = asyncio.ensure_future(asyncio.to_thread(intake.run))

    async def _stop(self) -> None:
        log.info("stopping: no new connections")
        self.imap_stop.set()
        await self._stop_intake_processes()
        if self.smtp_server is not None:
            self.smtp_server.close()
        if self.policy_server is not None:
            self.policy_server.close()  # Postfix answers its default action (4xx) meanwhile
        await self._stop_imap()
        await finish_sessions(self.sessions, self.ctx.config.smtp.shutdown_grace_seconds)
        if self.web_task is not None:
            await self.web_task  # stops on the same event; requests in flight finish first
        await self._stop_workers()
        self.io.shutdown(wait=True)
        self._ready_path().unlink(missing_ok=True)
        log.info("stopped")

    async def _stop_intake_processes(self) -> None:
        for process in self.intake_processes:
            process.terminate()  # stops accepting, finishes its transactions in flight
        for process in self.intake_processes:
            await self.thread_call(process.wait)

    async def _stop_imap(self) -> None:
        if self.imap_task is not None:
            # The worker notices within a second; a message in hand is finished first.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.imap_task, self.ctx.config.smtp.shutdown_grace_seconds)

    async def _stop_workers(self) -> None:
        for task in self.workers:
            task.cancel()
        for task in self.workers:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _accepted_threadsafe(self, loop: asyncio.AbstractEventLoop) -> Any:
        def accepted(item_id: str) -> None:
            loop.call_soon_threadsafe(self.incoming.put_nowait, item_id)

        return accepted

    def _ready_path(self) -> Path:
        return self.ctx.config.relay.data_dir / "run" / "serve.json"

    def _write_ready(self, smtp: str, web: str, policy: str) -> None:
        path = self._ready_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        ready = {"pid": os.getpid(), "smtp": smtp, "web": web, "policy": policy}
        write_atomic(path, json.dumps(ready).encode())

    # --- workers -------------------------------------------------------------------------

    async def _process_incoming(self) -> None:
        """Hold every incoming message: first those left from before the start, then each
        one as intake accepts it (a message queued twice is held once)."""
        loop = asyncio.get_running_loop()
        for item_id in await self.thread_call(self.ctx.spool.pending_ids):
            self.incoming.put_nowait(item_id)
        while True:
            item_id = await self.incoming.get()
            while faults.paused("hold"):
                await asyncio.sleep(PAUSE_POLL_SECONDS)
            try:
                await self.store_call(self._process_one, item_id)
            except Exception:
                log.exception("processing failed spool=%s", item_id)
                try:
                    retry = await self.store_call(self._failed, item_id)
                except Exception:
                    log.exception("could not count a failed attempt spool=%s", item_id)
                    retry = True
                if retry:
                    loop.call_later(RETRY_PROCESSING_SECONDS, self.incoming.put_nowait, item_id)

    def _failed(self, item_id: str) -> bool:
        """Count a failed attempt; True to try again later, False once it was set aside."""
        attempts = self.ctx.spool.failed_attempt(item_id)
        if attempts < MAX_PROCESSING_ATTEMPTS:
            log.warning("will retry spool=%s attempt=%d", item_id, attempts)
            return True
        received = self.ctx.spool.received_at(item_id)
        self.ctx.spool.set_aside(item_id)
        log.error("set aside spool=%s attempts=%d (see spool/unprocessed/)", item_id, attempts)
        self.ctx.store.audit("set-aside", spool=item_id, attempts=attempts)
        notices.tell_coordinators(
            self.ctx,
            f"set-aside-{item_id}",
            "set_aside",
            item=item_id,
            attempts=attempts,
            received_at=received or "-",
        )
        return False

    def _process_one(self, item_id: str) -> None:
        incoming = self.ctx.spool.incoming(item_id)  # None: processed already
        if incoming is not None:
            process_incoming(self.ctx, item_id, incoming)

    async def _reconcile(self) -> None:
        """Queue the copies of approved letters that are neither in the outbox nor sent: at
        start (a crash may have come anywhere), then every `RECONCILE_SECONDS` (a CLI killed
        between recording an approval and queueing the letter)."""
        while faults.paused("reconcile"):
            await asyncio.sleep(PAUSE_POLL_SECONDS)
        settle = 0.0  # at start no approval can still be on its way into the outbox
        while True:
            try:
                if await self.store_call(letters.reconcile, self.ctx, settle_seconds=settle):
                    self.outbox_changed.set()
            except Exception:
                log.exception("queueing approved letters again failed; trying again shortly")
            settle = RECONCILE_SETTLE_SECONDS
            await asyncio.sleep(RECONCILE_SECONDS)

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
            now = datetime.now(UTC)
            try:
                await self.store_call(run_scheduled, self.ctx, now)
                self.outbox_changed.set()
            except Exception:
                log.exception("scheduled work failed; trying again in a minute")
            await self.thread_call(run_purge, self.ctx, now)
            await asyncio.sleep(SCHEDULE_SECONDS)

    async def _watch_config(self) -> None:
        while True:
            await asyncio.sleep(POLL_SECONDS)
            if self._stamp() != self._config_stamp:
                await self._reload_logged()

    def _reload_soon(self) -> None:
        """SIGHUP: new log lines go to a new file at the configured path, then reload."""
        logfile.reopen()
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
        if (new.smtp.listen, new.smtp.policy_listen, new.relay.data_dir) != (
            old.smtp.listen,
            old.smtp.policy_listen,
            old.relay.data_dir,
        ):
            log.warning(
                "config: [smtp] listen, [smtp] policy_listen and [relay] data_dir take effect "
                "after a restart"
            )
        self.ctx = self.ctx.with_config(new)
        logfile.apply(new)
        log.info("config reloaded from %s", self.config_path)
        if (new.dkim, new.relay.domain) != (old.dkim, old.relay.domain):
            self._announce_dkim()

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
            notices.send_notice(
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
    server = Server(config_path, config)  # a store of a newer relay is refused untouched
    lock = hold_serve_lock(config.relay.data_dir)  # held until the process ends
    try:
        asyncio.run(server.run())
    finally:
        os.close(lock)
