"""What the benchmarks share: result lines, statistics, a relay installation to load."""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from relay import config as config_module
from relay.context import Context, open_context
from relay.participants import enroll, pair

ROOT = Path(__file__).resolve().parents[1]
DOMAIN = "pals.example.org"
MODERATOR_A = "ana.lopez@riverside-library.example.org"
MODERATOR_B = "carmen.rojas@biblioteca-severin.example.org"
WRITER = "maya.smith@family-mail.example.net"
PAL = "tomas.perez@correo.example.net"

RESULTS: list[dict[str, Any]] = []


def emit(bench: str, **fields: Any) -> dict[str, Any]:
    """One JSON line per result on stdout; kept for the report as well."""
    record = {"bench": bench, **fields}
    RESULTS.append(record)
    print(json.dumps(record, ensure_ascii=False), flush=True)
    return record


def note(text: str) -> None:
    print(f"# {text}", file=sys.stderr, flush=True)


def median_spread(values: list[float]) -> tuple[float, float, float]:
    return statistics.median(values), min(values), max(values)


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def config_text(data_dir: Path) -> str:
    return textwrap.dedent(
        f"""
        [relay]
        domain = "{DOMAIN}"
        data_dir = "{data_dir}"
        program_name = "Bench Pen Pals"
        log_level = "INFO"
        log_file = "{data_dir}/relay.log"

        [smtp]
        listen = "127.0.0.1:0"
        max_message_bytes = 10485760
        shutdown_grace_seconds = 10

        [delivery]
        transport = "maildir"
        maildir = "{data_dir}/maildir"

        [authentication]
        trusted_authserv_ids = ["mx.bench.example.org"]

        [[libraries]]
        id = "riverside"
        name = "Riverside Public Library"
        country = "US"
        language = "en"
        timezone = "America/New_York"
        staff = [{{ email = "{MODERATOR_A}", name = "Ana", roles = ["moderator", "coordinator"] }}]

        [[libraries]]
        id = "valparaiso"
        name = "Biblioteca Santiago Severín"
        country = "CL"
        language = "es"
        timezone = "America/Santiago"
        staff = [{{ email = "{MODERATOR_B}", name = "Carmen", roles = ["moderator"] }}]

        [[partnerships]]
        libraries = ["riverside", "valparaiso"]

        [web]
        listen = "127.0.0.1:0"
        """
    )


@dataclass
class Installation:
    """A relay configuration and data folder under a temporary directory."""

    root: Path

    @property
    def config_path(self) -> Path:
        return self.root / "config.toml"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    def write_config(self) -> Installation:
        self.root.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(config_text(self.data_dir))
        return self

    def context(self) -> Context:
        return open_context(config_module.load(self.config_path))

    def enroll_pals(self) -> tuple[str, str]:
        """Maya (riverside) paired with Tomás (valparaiso); returns (Maya's email, his mask)."""
        ctx = self.context()
        maya = enroll(ctx, "riverside", "Maya", WRITER)
        tomas = enroll(ctx, "valparaiso", "Tomás", PAL)
        pair(ctx, maya, tomas)
        return maya.email, tomas.masked


class Serve:
    """`penpal-relay serve` in its own process, as an administrator would run it."""

    def __init__(
        self, installation: Installation, env: dict[str, str] | None = None, workers: int = 0
    ) -> None:
        self.installation = installation
        self.env = env or {}
        self.workers = workers  # intake processes beside serve (bench.variant)
        self.process: subprocess.Popen[bytes] | None = None
        self.worker_processes: list[subprocess.Popen[str]] = []
        self.port = 0

    def start(self, timeout: float = 60.0) -> float:
        """Start and wait until it listens; returns the seconds that took."""
        ready = self.installation.data_dir / "run" / "serve.json"
        ready.unlink(missing_ok=True)
        log = open(self.installation.root / "serve.log", "ab")  # noqa: SIM115
        env = {**os.environ, "PYTHONPATH": str(ROOT), **self.env}
        begin = time.perf_counter()
        config = str(self.installation.config_path)
        program = ["-m", "bench.variant", "serve"] if self.workers else ["-m", "relay"]
        self.process = subprocess.Popen(
            [sys.executable, *program, "--config", config] + ([] if self.workers else ["serve"]),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.installation.root,
            env=env,
        )
        log.close()
        process = self.process

        def started() -> dict[str, Any] | None:
            if process.poll() is not None:
                raise RuntimeError("serve exited early; see serve.log")
            try:
                info: dict[str, Any] = json.loads(ready.read_text())
            except (OSError, ValueError):
                return None
            return info if info["pid"] == process.pid else None

        deadline = time.monotonic() + timeout
        while (info := started()) is None:
            if time.monotonic() > deadline:
                raise TimeoutError("serve did not start")
            time.sleep(0.005)
        elapsed = time.perf_counter() - begin
        self.port = int(info["smtp"].rsplit(":", 1)[1])
        for _ in range(self.workers):
            command = ["-m", "bench.variant", "worker", "--config", config]
            worker = subprocess.Popen(
                [sys.executable, *command, "--port", str(self.port)],
                stdout=subprocess.PIPE,
                cwd=self.installation.root,
                env=env,
                text=True,
            )
            self.worker_processes.append(worker)
            if worker.stdout is None or worker.stdout.readline().strip() != "listening":
                raise RuntimeError("intake worker did not start")
        return elapsed

    def stop(self) -> None:
        for worker in self.worker_processes:
            worker.send_signal(signal.SIGTERM)
            worker.wait(60)
        self.worker_processes = []
        if self.process is not None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None
