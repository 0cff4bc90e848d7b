"""A real Postfix in front of the relay, configured by deploy/postfix/install.sh as a
volunteer would, but as a private instance: its own configuration, queue and log folders
under /tmp, its own loopback ports, started and stopped by the test. The machine's own
Postfix (if any) is not touched.

    with postfix_front(domain, relay="127.0.0.1:2525", policy=..., outbound_port=...,
                       onward="127.0.0.1:<sink port>") as front:
        smtplib.SMTP("127.0.0.1", front.port)  # the public listener (port 25 in production)

What the test sets beyond install.sh is only what makes it a private instance on loopback:
folders, ports, no chroot (the chroot would need copies of /etc files), no DNS, and
`relayhost` pointing at the test's sink instead of the internet.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.dovecot import free_port
from tests.support.system import ensure_package
from tests.support.waiting import wait_for

INSTALL = Path(__file__).resolve().parents[2] / "deploy" / "postfix" / "install.sh"
DEBIAN_MAIN = Path("/usr/share/postfix/main.cf.debian")
DEBIAN_MASTER = Path("/usr/share/postfix/master.cf.dist")


@dataclass
class PostfixFront:
    folder: Path
    port: int  # the public listener
    install_args: tuple[str, ...] = ()

    def install(self) -> str:
        """Run deploy/postfix/install.sh on this instance's configuration (not started)."""
        return subprocess.run(
            ["sh", str(INSTALL), *self.install_args, "--config-dir", str(self.config_dir)],
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout

    @property
    def config_dir(self) -> Path:
        return self.folder / "etc"

    def log(self) -> str:
        path = self.folder / "maillog"
        return path.read_text(errors="replace") if path.exists() else ""

    def queued(self) -> list[str]:
        """Files in Postfix's queue (incoming, active, deferred, hold): mail it still has."""
        queue = self.folder / "queue"
        return [
            str(p)
            for name in ("incoming", "active", "deferred", "hold", "maildrop")
            for p in (queue / name).rglob("*")
            if p.is_file()
        ]

    def postconf(self, *args: str) -> str:
        return subprocess.run(
            ["postconf", "-c", str(self.config_dir), *args],
            check=True,
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout


def _accepts(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def postfix_instance() -> Iterator[PostfixFront]:
    """A private Postfix configuration from Debian's own files, with its folders under /tmp
    and a free loopback port for its public listener; not started. Removed after."""
    ensure_package("postfix", "postfix")
    # Postfix's daemons run as the postfix user: the folder must be reachable by it (pytest's
    # own temporary folders are not).
    folder = Path(tempfile.mkdtemp(prefix="postfix-front-"))
    try:
        folder.chmod(0o755)
        etc = folder / "etc"
        etc.mkdir()
        (folder / "queue").mkdir()
        (folder / "data").mkdir()
        shutil.chown(folder / "data", "postfix")
        shutil.copy(DEBIAN_MAIN, etc / "main.cf")
        shutil.copy(DEBIAN_MASTER, etc / "master.cf")
        front = PostfixFront(folder, free_port())
        front.postconf(
            "-e",
            f"queue_directory = {folder / 'queue'}",
            f"data_directory = {folder / 'data'}",
            f"maillog_file = {folder / 'maillog'}",
            f"maillog_file_prefixes = {folder}",
            "myhostname = mx.test.example.org",
            "mydestination =",
            "inet_interfaces = 127.0.0.1",
            "inet_protocols = ipv4",
            "mynetworks = 127.0.0.0/8",
            "alias_maps =",
            "alias_database =",
            "smtp_dns_support_level = disabled",
            "smtputf8_enable = no",
        )
        yield front
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def postfix_front(
    domain: str, *, relay: str, policy: str, outbound_port: int, onward: str
) -> Iterator[PostfixFront]:
    """Postfix configured by install.sh and started, relaying onward to `onward` (the
    test's sink, standing for the internet); stopped after."""
    with postfix_instance() as front:
        host, _, port = onward.rpartition(":")
        front.postconf("-e", f"relayhost = [{host}]:{port}")
        front.install_args = (
            domain,
            "--relay",
            relay,
            "--policy",
            policy,
            "--outbound",
            f"127.0.0.1:{outbound_port}",
            "--no-start",
        )
        front.install()
        # The public listener on a loopback port instead of 25; no chroot for a private
        # instance (it would need copies of /etc files inside the queue folder).
        listener = f"127.0.0.1:{front.port}"
        front.postconf("-MX", "smtp/inet")
        front.postconf("-M", f"{listener}/inet={listener} inet n - n - - smtpd")
        front.postconf("-F", "*/*/chroot = n")
        if not front.postconf("-M", "postlog/unix-dgram").strip():
            front.postconf("-M", "postlog/unix-dgram=postlog unix-dgram n - n - 1 postlogd")
        etc = str(front.config_dir)
        master = subprocess.Popen(
            ["postfix", "-c", etc, "start-fg"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:

            def listening() -> bool:
                if master.poll() is not None:
                    raise AssertionError(f"Postfix did not start:\n{front.log()}")
                return _accepts(front.port) and _accepts(outbound_port)

            wait_for(listening, 20, "Postfix to listen")
            yield front
        finally:
            subprocess.run(["postfix", "-c", etc, "stop"], capture_output=True, timeout=60)
            try:
                master.wait(30)
            except subprocess.TimeoutExpired:
                master.kill()
                master.wait()
