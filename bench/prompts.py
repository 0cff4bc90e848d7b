"""One month's topic prompt to N participants in four languages, against plain aiosmtplib.

The relay: `penpal-relay serve` delivering through its SMTP transport to a loopback sink, and
`penpal-relay prompts send --month` queueing the month (claims, rendering, leak guard,
outbox); timed from the command's start until the sink holds N messages. The reference:
the same number of pre-rendered messages of the same size, sent with plain aiosmtplib over
the same number of connections as the relay's delivery worker uses. Reports the ratio of
throughputs, the peak resident memory of both relay processes, and duplicates at the sink.
Then the CPU time of DKIM-signing one prompt-sized message, the relay's way and dkimpy's.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiosmtplib
from aiosmtpd.smtp import SMTP, Envelope, Session

from bench.common import ROOT, Installation, Serve, emit, note, wait_for
from relay.app import DELIVERY_CONCURRENCY
from relay.store import PARTICIPANT_SHARDS
from relay.store.records import Participant

LANGUAGES = ("en", "es", "fr", "pt")
TOPIC = """
[prompts]
day = 1
hour = 9

[[prompts.topics]]
month = 1
subject.en = "January: your school"
subject.es = "Enero: tu escuela"
subject.fr = "Janvier : ton école"
subject.pt = "Janeiro: a tua escola"
body.en = "Hello {{ name }}! Tell {{ pals[0].name }} about your school."
body.es = "¡Hola {{ name }}! Cuéntale a {{ pals[0].name }} de tu escuela."
body.fr = "Bonjour {{ name }} ! Raconte ton école à {{ pals[0].name }}."
body.pt = "Olá {{ name }}! Conta a {{ pals[0].name }} como é a tua escola."
"""


class CountingSink:
    """An aiosmtpd server on its own thread that counts messages per recipient."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        future = asyncio.run_coroutine_threadsafe(self._start(), self.loop)
        self.server = future.result(10)
        self.port: int = self.server.sockets[0].getsockname()[1]

    async def _start(self) -> asyncio.Server:
        return await self.loop.create_server(lambda: SMTP(self, decode_data=False), "127.0.0.1", 0)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        for rcpt in envelope.rcpt_tos:
            self.counts[rcpt] += 1
        return "250 2.0.0 OK"

    def total(self) -> int:
        return sum(self.counts.values())

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.server.close)


def _participants(installation: Installation, count: int) -> None:
    """Paired participants written straight into the store's participant shards."""
    folder = installation.data_dir / "store" / "participants"
    folder.mkdir(parents=True, exist_ok=True)
    shards: list[list[str]] = [[] for _ in range(PARTICIPANT_SHARDS)]
    for n in range(1, count + 1):
        pal = n + 1 if n % 2 else n - 1
        person = Participant(
            id=f"p{n}",
            library="riverside" if n % 2 else "valparaiso",
            name=f"Kid {n}",
            email=f"kid{n}@family{n % 997}.example.net",
            language=LANGUAGES[n % 4],
            masked=f"kid-{n}-0000@pals.example.org",
            pals=(f"p{pal}",),
        )
        shards[n % PARTICIPANT_SHARDS].append(f'"{n}":' + json.dumps(person.to_dict()))
    for index, rows in enumerate(shards):
        (folder / f"{index:03d}.json").write_text('{"records":{' + ",".join(rows) + "}}")
    counter = installation.data_dir / "store" / "counters.json"
    counter.write_text(json.dumps({"records": {"1": {"participant": count}}}))


def _vm_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def relay_run(count: int) -> dict[str, float]:
    sink = CountingSink()
    with tempfile.TemporaryDirectory(prefix="penpal-bench-prompts-") as folder:
        installation = Installation(Path(folder)).write_config()
        text = installation.config_path.read_text().replace(
            'transport = "maildir"',
            f'transport = "smtp"\nsmarthost = "127.0.0.1:{sink.port}"\nstarttls = false',
        )
        installation.config_path.write_text(text + TOPIC)
        _participants(installation, count)
        serve = Serve(installation)
        serve.start()
        begin = time.perf_counter()
        command = [
            sys.executable,
            "-m",
            "relay",
            "--config",
            str(installation.config_path),
            "prompts",
            "send",
            "--month",
            "2027-01",
        ]
        subprocess.run(
            command,
            check=True,
            capture_output=True,
            cwd=folder,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            timeout=3600,
        )
        queued = time.perf_counter() - begin
        cli_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        wait_for(lambda: sink.total() >= count, 3600, "every prompt at the sink")
        elapsed = time.perf_counter() - begin
        assert serve.process is not None
        serve_peak = _vm_hwm_mb(serve.process.pid)
        serve.stop()
    duplicates = sum(1 for n in sink.counts.values() if n > 1)
    sink.close()
    return {
        "seconds": elapsed,
        "queue_seconds": queued,
        "per_second": count / elapsed,
        "serve_peak_mb": serve_peak,
        "cli_peak_mb": cli_peak,
        "duplicates": duplicates,
        "received": sink.total(),
    }


async def _plain(port: int, count: int, message: bytes, connections: int) -> None:
    async def one_connection(share: range) -> None:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
        await client.connect()
        for n in share:
            await client.sendmail("bounces@pals.example.org", [f"kid{n}@x.example.net"], message)
        await client.quit()

    await asyncio.gather(
        *(one_connection(range(c, count, connections)) for c in range(connections))
    )


def plain_run(count: int, size: int) -> dict[str, float]:
    sink = CountingSink()
    body = b"".join(b"x" * 74 + b"\r\n" for _ in range(max(1, (size - 60) // 76)))
    message = b"From: program@pals.example.org\r\nSubject: January\r\n\r\n" + body
    begin = time.perf_counter()
    asyncio.run(_plain(sink.port, count, message, DELIVERY_CONCURRENCY))
    elapsed = time.perf_counter() - begin
    sink.close()
    return {"seconds": elapsed, "per_second": count / elapsed}


SIGNED_SAMPLES = 200


def signing_run() -> dict[str, float]:
    """CPU time to DKIM-sign one prompt-sized message: the relay's signer (OpenSSL's RSA)
    and dkimpy's own `sign` (RSA in Python), on the same key and message."""
    import dkim

    from relay.dkim_signing import Signer, new_key

    pem = new_key()
    signer = Signer(pem, "penpal1", "pals.example.org")
    head = (
        b"From: Pen Pals <program@pals.example.org>\r\nTo: kid1@x.example.net\r\n"
        b"Subject: January: your school\r\nDate: Fri, 01 Jan 2027 09:00:00 +0000\r\n"
        b"Message-ID: <prompt-2027-01.p1@pals.example.org>\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\nAuto-Submitted: auto-generated\r\n"
        b"List-Unsubscribe: <https://pals.example.org/u/p1>\r\n"
        b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n\r\n"
    )
    message = head + b"".join(b"x" * 74 + b"\r\n" for _ in range(12))  # about 1.4 KB

    def per_message(sign: Any) -> float:
        begin = time.process_time()
        for _ in range(SIGNED_SAMPLES):
            sign(message)
        return (time.process_time() - begin) / SIGNED_SAMPLES * 1000

    return {
        "relay_ms": per_message(signer.sign),
        "dkimpy_ms": per_message(
            lambda m: dkim.sign(
                m, b"penpal1", b"pals.example.org", pem, canonicalize=(b"relaxed", b"relaxed")
            )
        ),
    }


def run(count: int) -> None:
    note(f"prompts: relay, {count} participants")
    relay = relay_run(count)
    emit("prompts", target="relay", participants=count, **relay)
    note("prompts: plain aiosmtplib")
    plain = plain_run(count, size=1400)  # a composed prompt is about 1.4 KB
    emit("prompts", target="aiosmtplib", participants=count, **plain)
    emit(
        "prompts",
        target="ratio",
        participants=count,
        ratio=relay["per_second"] / plain["per_second"],
        peak_mb=max(relay["serve_peak_mb"], relay["cli_peak_mb"]),
        duplicates=relay["duplicates"],
    )
    note("prompts: DKIM signing, CPU time per message")
    emit("prompts", target="signing", samples=SIGNED_SAMPLES, **signing_run())
