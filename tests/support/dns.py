"""A real DNS server on loopback serving the test zones: Debian's dnsmasq, answering only
from the records a test gives it (no upstream, no hosts file), so SPF, DKIM and DMARC are
checked against real DNS answers.

    with dns_server({"example.org": ["v=spf1 ip4:127.0.0.1 -all"]}, zones=["example.org"]) as
        resolver:  # "127.0.0.1:<port>"
        ...

Names inside `zones` that have no record answer NXDOMAIN (as a real authoritative server
would), so "no DMARC record" is a real answer, not an error.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from tests.support.system import ensure_package
from tests.support.waiting import wait_for

TXT_CHUNK = 255  # one character-string of a TXT record (RFC 1035 3.3.14)


def _free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (dnsmasq listens on both)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port


def _txt_line(name: str, text: str) -> str:
    """A txt-record line of dnsmasq's configuration file (where quoting is understood, so
    commas and semicolons stay inside a string)."""
    chunks = [text[i : i + TXT_CHUNK] for i in range(0, len(text), TXT_CHUNK)] or [""]
    quoted = ",".join('"' + c.replace("\\", "\\\\").replace('"', '\\"') + '"' for c in chunks)
    return f"txt-record={name},{quoted}\n"


def _answers(port: int, name: str) -> bool:
    import dns.resolver

    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = port
    resolver.lifetime = 0.5
    try:
        resolver.resolve(name, "TXT")
    except dns.resolver.NXDOMAIN:
        return True
    except Exception:
        return False
    return True


@contextlib.contextmanager
def dns_server(
    txt: Mapping[str, Sequence[str]],
    *,
    zones: Sequence[str],
    hosts: Mapping[str, str] | None = None,
) -> Iterator[str]:
    """dnsmasq on 127.0.0.1:<free port> answering `txt` (name -> TXT strings) and `hosts`
    (name -> IPv4 address) for `zones`; yields "127.0.0.1:<port>" and stops it after."""
    binary = ensure_package("dnsmasq", "dnsmasq-base")
    port = _free_port()
    folder = Path(tempfile.mkdtemp(prefix="zones-"))
    conf = folder / "dnsmasq.conf"
    lines = [f"local=/{zone}/\n" for zone in zones]
    lines += [_txt_line(name, text) for name, texts in txt.items() for text in texts]
    lines += [f"host-record={name},{address}\n" for name, address in (hosts or {}).items()]
    conf.write_text("".join(lines), encoding="utf-8")
    args = [
        binary,
        "--keep-in-foreground",
        f"--conf-file={conf}",
        "--no-resolv",
        "--no-hosts",
        "--no-poll",
        "--pid-file=",
        "--bind-interfaces",
        "--listen-address=127.0.0.1",
        f"--port={port}",
        "--user=root",
    ]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        probe = f"ready-probe.{zones[0]}" if zones else "ready-probe.invalid"

        def answering() -> bool:
            if process.poll() is not None:
                error = process.stderr.read().decode() if process.stderr else ""
                raise RuntimeError(f"dnsmasq did not start: {error.strip()}")
            return _answers(port, probe)

        wait_for(answering, timeout=10, what="dnsmasq to answer")
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr:
            process.stderr.close()
        shutil.rmtree(folder, ignore_errors=True)
