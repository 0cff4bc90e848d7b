"""The recipient check Postfix asks at RCPT (`[smtp] policy_listen`): answers per second and
their latency, on one connection as a Postfix smtpd process keeps it.

Two kinds of request: a paired writer to a pal's masked address (`DUNNO`: one lookup of the
mask, one of the sender), and a guessed address from a new client address each time (`550`:
the same lookups, a log line and an audit entry written through the store). Client
addresses change so that the guessing limit never answers in the check's place.
"""

from __future__ import annotations

import json
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.common import DOMAIN, Installation, Serve, emit, median_spread

REQUESTS = 1000


def _request(sender: str, recipient: str, client: str) -> bytes:
    lines = [
        "request=smtpd_access_policy",
        "protocol_state=RCPT",
        f"sender={sender}",
        f"recipient={recipient}",
        f"client_address={client}",
    ]
    return ("\n".join(lines) + "\n\n").encode()


def _ask_all(port: int, make: Callable[[int], bytes], expected: str) -> list[float]:
    latencies = []
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        reader = connection.makefile("rb")
        for index in range(REQUESTS):
            begin = time.perf_counter()
            connection.sendall(make(index))
            answer = reader.readline().decode()
            reader.readline()  # the empty line ending the answer
            latencies.append(time.perf_counter() - begin)
            if not answer.startswith(expected):
                raise RuntimeError(f"unexpected answer {answer!r}")
    return latencies


def run() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-policy-") as temp:
        installation = Installation(Path(temp)).write_config()
        text = installation.config_path.read_text()
        installation.config_path.write_text(
            text.replace("[smtp]\n", '[smtp]\npolicy_listen = "127.0.0.1:0"\n', 1)
        )
        writer, mask = installation.enroll_pals()
        serve = Serve(installation)
        serve.start()
        try:
            ready = json.loads((installation.data_dir / "run" / "serve.json").read_text())
            port = int(ready["policy"].rsplit(":", 1)[1])
            cases: list[tuple[str, Callable[[int], bytes], str]] = [
                ("paired", lambda i: _request(writer, mask, "192.0.2.1"), "action=DUNNO"),
                (
                    "guessed",
                    lambda i: _request(writer, f"guess-{i}@{DOMAIN}", f"10.0.{i // 256}.{i % 256}"),
                    "action=550",
                ),
            ]
            for case, make, expected in cases:
                begin = time.perf_counter()
                latencies = _ask_all(port, make, expected)
                seconds = time.perf_counter() - begin
                median, _fastest, slowest = median_spread([s * 1000 for s in latencies])
                latencies.sort()
                emit(
                    "policy",
                    case=case,
                    requests=REQUESTS,
                    per_second=round(REQUESTS / seconds),
                    median_ms=round(median, 2),
                    p99_ms=round(latencies[int(REQUESTS * 0.99)] * 1000, 2),
                    max_ms=round(slowest, 2),
                )
        finally:
            serve.stop()
