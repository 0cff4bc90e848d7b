"""A real Dovecot IMAP server on 127.0.0.1 with a throw-away user, for intake tests.

Installs Debian's dovecot-imapd when it is missing (the tests need it; they never skip).
The server runs in the foreground from a configuration written into the test's folder, so
stopping and starting it, or resetting a folder's UIDVALIDITY, is the test's to do.
"""

from __future__ import annotations

import os
import pwd
import socket
import subprocess
from pathlib import Path

from imapclient import IMAPClient

from tests.support.system import ensure_package
from tests.support.waiting import wait_for

USER = "library"
PASSWORD = "pen-pals-test"


def ensure_installed() -> str:
    return ensure_package("/usr/sbin/dovecot", "dovecot-imapd")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Dovecot:
    def __init__(self, root: Path) -> None:
        self.binary = ensure_installed()
        self.root = root
        self.port = free_port()
        self.mail = root / "mail"
        self.process: subprocess.Popen[bytes] | None = None
        self._configure()

    def _configure(self) -> None:
        account = pwd.getpwnam("dovecot")
        for folder in ("run", "state", "mail"):
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        os.chown(self.mail, account.pw_uid, account.pw_gid)
        os.chmod(self.root, 0o755)  # noqa: S103 -- Dovecot's own users must read it
        (self.root / "users").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
        (self.root / "dovecot.conf").write_text(f"""
base_dir = {self.root}/run
state_dir = {self.root}/state
log_path = {self.root}/dovecot.log
listen = 127.0.0.1
protocols = imap
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{self.mail}/%u
first_valid_uid = {account.pw_uid}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.root}/users
}}
userdb {{
  driver = static
  args = uid={account.pw_uid} gid={account.pw_gid} home={self.mail}/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
namespace inbox {{
  inbox = yes
}}
""")

    def start(self) -> Dovecot:
        self.process = subprocess.Popen(
            [self.binary, "-F", "-c", str(self.root / "dovecot.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        process = self.process

        def listening() -> bool:
            if process.poll() is not None:
                log = (self.root / "dovecot.log").read_text(errors="replace")
                raise RuntimeError(f"dovecot exited:\n{log}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            except OSError:
                return False
            return True

        wait_for(listening, 20, "dovecot to listen")
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(20)
            self.process = None

    def client(self) -> IMAPClient:
        client = IMAPClient("127.0.0.1", port=self.port, ssl=False, timeout=10)
        client.login(USER, PASSWORD)
        return client

    def append(self, raw: bytes, folder: str = "INBOX") -> None:
        with self.client() as client:
            client.append(folder, raw)

    def uids(self, folder: str) -> list[int]:
        with self.client() as client:
            if not client.folder_exists(folder):
                return []
            client.select_folder(folder, readonly=True)
            return list(client.search(["ALL"]))

    def reset_uidvalidity(self) -> None:
        """What a provider's migration does: same messages, new UIDVALIDITY and UIDs."""
        was_running = self.process is not None
        self.stop()
        inbox = self.mail / USER
        for name in (
            "dovecot-uidlist",
            "dovecot.index",
            "dovecot.index.log",
            "dovecot.index.cache",
            "dovecot-uidvalidity",
        ):
            (inbox / name).unlink(missing_ok=True)
        for stale in inbox.glob("dovecot-uidvalidity.*"):
            stale.unlink()
        if was_running:
            self.start()
