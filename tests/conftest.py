"""Shared fixtures: a real relay process, a real SMTP sink, and a program to run them with.

The relay under test is `python -m relay serve` in its own process, listening on a port the
OS picked (written by `serve` to `<data_dir>/run/serve.json`). Participants are enrolled with
`relay.participants`, as every channel does; decisions go through the real CLI in a subprocess.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import os
import signal
import smtplib
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from relay import config as config_module
from relay.context import Context, open_context
from relay.participants import enroll, pair
from relay.store.records import Participant
from tests.support.waiting import wait_for

MODERATOR_A = "ana.lopez@riverside-library.example.org"
MODERATOR_A2 = "sam.lee@riverside-library.example.org"
MODERATOR_B = "carmen.rojas@biblioteca-severin.example.org"
DOMAIN = "pals.example.org"
# A January topic in English and Spanish, for the tests of monthly prompts.
JANUARY = """
[prompts]
day = 1
hour = 9

[[prompts.topics]]
month = 1
subject = { en = "January: your school", es = "Enero: tu escuela" }
body.en = "Hello {{ name }}! Tell {{ pals[0].name }} about school."
body.es = "¡Hola {{ name }}! Cuéntale a {{ pals[0].name }} de tu escuela."
"""

# A third library, in France, paired with riverside too (riverside is in two partnerships).
LYON = """
[[libraries]]
id = "lyon"
name = "Bibliothèque de Lyon"
country = "FR"
language = "fr"
timezone = "Europe/Paris"
staff = [ { email = "claire@bm-lyon.example.org", name = "Claire", roles = ["moderator"] } ]

[[partnerships]]
libraries = ["lyon", "riverside"]
"""

FRONT_AUTHSERV_ID = "mx.test.example.org"  # the front server the tests play (from 127.0.0.1)


def config_text(
    data_dir: Path,
    *,
    transport: str = "maildir",
    smarthost: str = "127.0.0.1:25",
    extra_relay: str = "",
    extra_libraries: str = "",
    extra_moderation: str = "",
    extra_sections: str = "",
    extra_smtp: str = "",
    authentication: str = 'front_servers = ["127.0.0.1"]',
) -> str:
    return textwrap.dedent(
        f"""
        [relay]
        domain = "{DOMAIN}"
        data_dir = "{data_dir}"
        program_name = "Test Pen Pals"
        log_level = "INFO"
        log_file = "{data_dir}/relay.log"
        {extra_relay}

        [smtp]
        listen = "127.0.0.1:0"
        max_message_bytes = 10485760
        shutdown_grace_seconds = 10
        {extra_smtp}

        [delivery]
        transport = "{transport}"
        maildir = "{data_dir}/maildir"
        smarthost = "{smarthost}"
        starttls = false
        timeout_seconds = 5
        retry_first_seconds = 0.2
        retry_max_seconds = 0.5
        give_up_after_hours = 1

        [moderation]
        {extra_moderation}

        [authentication]
        trusted_authserv_ids = ["{FRONT_AUTHSERV_ID}"]
        {authentication}

        [[libraries]]
        id = "riverside"
        name = "Riverside Public Library"
        country = "US"
        language = "en"
        timezone = "America/New_York"
        staff = [
          {{ email = "{MODERATOR_A}", name = "Ana", roles = ["moderator", "coordinator"] }},
          {{ email = "{MODERATOR_A2}", name = "Sam", roles = ["moderator"] }},
        ]

        [[libraries]]
        id = "valparaiso"
        name = "Biblioteca Santiago Severín"
        country = "CL"
        language = "es"
        timezone = "America/Santiago"
        staff = [
          {{ email = "{MODERATOR_B}", name = "Carmen", roles = ["moderator", "coordinator"] }},
        ]
        {extra_libraries}

        [[partnerships]]
        libraries = ["riverside", "valparaiso"]

        [web]
        listen = "127.0.0.1:0"
        """
    ) + textwrap.dedent(extra_sections)


@dataclass
class Relay:
    """One relay installation: its config, its data, and (while running) its process."""

    root: Path
    config_path: Path
    process: subprocess.Popen[bytes] | None = None
    log_path: Path = field(init=False)
    port: int = 0
    web: str = ""  # the dashboard's "host:port" while running
    cli_config: Path | None = None  # a different file for CLI commands than `serve` reads
    python: str = sys.executable  # the interpreter `serve` runs on

    def __post_init__(self) -> None:
        self.log_path = self.root / "serve.log"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def maildir(self) -> Path:
        return self.data_dir / "maildir"

    def context(self) -> Context:
        return open_context(config_module.load(self.config_path))

    # --- process -------------------------------------------------------------------------

    def start(self, env: dict[str, str] | None = None, *, own_group: bool = False) -> Relay:
        """`serve`, waited for until it listens (`port` and `web` then say where).
        `own_group`: in a process group of its own, so that everything it starts (intake
        processes) can be ended with it (tests/support/serving.py)."""
        ready = self.data_dir / "run" / "serve.json"
        ready.unlink(missing_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [self.python, "-m", "relay", "--config", str(self.config_path), "serve"],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.root,
                env={**os.environ, **(env or {})},
                start_new_session=own_group,
            )

        def started() -> dict[str, Any] | None:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"serve exited early:\n{self.log()}")
            if not ready.exists():
                return None
            info: dict[str, Any] = json.loads(ready.read_text())
            return info if info["pid"] == self.process.pid else None

        info = wait_for(started, 20, "serve to listen")
        self.port = int(info["smtp"].rsplit(":", 1)[1])
        self.web = str(info["web"])
        return self

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.process is not None
        self.process.send_signal(sig)
        code = self.process.wait(30)
        self.process = None
        return code

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    # --- talking to it -------------------------------------------------------------------

    def smtp(self) -> smtplib.SMTP:
        return smtplib.SMTP("127.0.0.1", self.port, timeout=10)

    def send(self, sender: str, recipients: list[str], message: bytes | str) -> dict[str, Any]:
        with self.smtp() as client:
            refused: dict[str, Any] = client.sendmail(sender, recipients, message)
            return refused

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "relay",
                "--config",
                str(self.cli_config or self.config_path),
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=self.root,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"{args} failed ({result.returncode}): {result.stderr}")
        return result

    def queue(self) -> list[dict[str, Any]]:
        listing: list[dict[str, Any]] = json.loads(self.cli("queue", "list", "--json").stdout)
        return listing

    def letter(self, letter_id: int) -> dict[str, Any]:
        shown: dict[str, Any] = json.loads(
            self.cli("queue", "show", str(letter_id), "--json").stdout
        )
        return shown

    def wait_held(self, count: int) -> list[dict[str, Any]]:
        def enough() -> list[dict[str, Any]] | None:
            queue = self.queue()
            return queue if len(queue) >= count else None

        return wait_for(enough, 15, f"{count} held letters")

    def enroll(self, library: str, name: str, address: str) -> Participant:
        return enroll(self.context(), library, name, address)

    def pair(self, first: Participant, second: Participant) -> None:
        pair(self.context(), first, second)

    def delivered(self, to: str | None = None) -> list[EmailMessage]:
        """What the Maildir transport delivered (to one address, when given)."""
        found = read_maildir(self.maildir)
        return [m for m in found if to is None or m["Delivered-To"] == to]


def read_maildir(folder: Path) -> list[EmailMessage]:
    found = []
    for sub in ("new", "cur"):
        for path in sorted((folder / sub).glob("*")) if (folder / sub).exists() else []:
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            assert isinstance(message, EmailMessage)
            found.append(message)
    return found


@pytest.fixture
def relay_factory(tmp_path: Path) -> Iterator[Callable[..., Relay]]:
    made: list[Relay] = []

    def make(**options: Any) -> Relay:
        root = tmp_path / f"relay{len(made)}"
        root.mkdir()
        path = root / "config.toml"
        path.write_text(config_text(root / "data", **options))
        relay = Relay(root, path)
        made.append(relay)
        return relay

    yield make
    for relay in made:
        if relay.process is not None and relay.process.poll() is None:
            relay.process.kill()
            relay.process.wait()


@pytest.fixture
def relay(relay_factory: Callable[..., Relay]) -> Relay:
    return relay_factory()


@dataclass
class Pals:
    maya: Participant  # riverside
    tomas: Participant  # valparaiso
    leo: Participant  # riverside, not paired with tomas


@pytest.fixture
def pals(relay: Relay) -> Pals:
    return enroll_pals(relay)


MAYA = "maya.smith@family-mail.example.net"
TOMAS = "tomas.perez@correo.example.net"


def enroll_pals(relay: Relay) -> Pals:
    maya = relay.enroll("riverside", "Maya", MAYA)
    tomas = relay.enroll("valparaiso", "Tomás", TOMAS)
    leo = relay.enroll("riverside", "Leo", "leo.jones@family-mail.example.net")
    relay.pair(maya, tomas)
    return Pals(maya, tomas, leo)


# --- a real SMTP server standing in for the smarthost ----------------------------------------


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    def to(self, address: str) -> bool:
        return address in self.rcpt_tos

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


class Smarthost:
    """An aiosmtpd server on its own loop and thread; replies to DATA can be scripted."""

    def __init__(self, replies: list[str], for_rcpt: str | None = None) -> None:
        self.replies = list(replies)
        self.for_rcpt = for_rcpt  # scripted replies only for this recipient
        self.received: list[Received] = []
        self.attempts = 0
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        self.port: int = self.server.sockets[0].getsockname()[1]

    async def _start(self) -> asyncio.Server:
        return await self.loop.create_server(lambda: SMTP(self, decode_data=False), "127.0.0.1", 0)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.for_rcpt not in (None, *envelope.rcpt_tos):
            self.received.append(
                Received(
                    str(envelope.mail_from),
                    list(envelope.rcpt_tos),
                    bytes(envelope.original_content or b""),
                )
            )
            return "250 2.0.0 OK"
        self.attempts += 1
        reply = self.replies.pop(0) if self.replies else "250 2.0.0 OK"
        if reply.startswith("250"):
            self.received.append(
                Received(
                    str(envelope.mail_from),
                    list(envelope.rcpt_tos),
                    bytes(envelope.original_content or b""),
                )
            )
        return reply

    def close(self) -> None:
        self.server.close()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture
def smarthost(request: pytest.FixtureRequest) -> Iterator[Smarthost]:
    marker = request.node.get_closest_marker("smarthost")
    replies = list(marker.kwargs.get("replies", [])) if marker else []
    host = Smarthost(replies, marker.kwargs.get("for_rcpt") if marker else None)
    yield host
    host.close()


def letter_bytes(
    sender: str,
    to: str,
    subject: str = "Hello",
    body: str = "Hi! What is school like for you?",
    headers: dict[str, str] | None = None,
    *,
    verified: bool = True,
) -> bytes:
    """A patron's letter; `verified`: as the front server passes it on (its own
    Authentication-Results on top, DMARC passing for the sender's domain)."""
    message = EmailMessage()
    if verified:
        message["Authentication-Results"] = (
            f"{FRONT_AUTHSERV_ID}; dmarc=pass header.from={sender.rpartition('@')[2]}"
        )
    message["From"] = f"Maya Smith <{sender}>"
    message["To"] = to
    message["Subject"] = subject
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(body)
    return message.as_bytes(policy=email.policy.SMTP)


def moderator_reply(
    notice: EmailMessage, *, results: tuple[str, ...] | list[str] = (), sender: str = MODERATOR_A
) -> EmailMessage:
    """A moderator's one-word reply to a held-letter notice, from a phone, with the
    Authentication-Results given (topmost first)."""
    reply = EmailMessage(policy=email.policy.SMTP)
    for value in results:
        reply["Authentication-Results"] = value
    reply["From"] = f"Ana <{sender}>"
    reply["To"] = notice["From"]
    reply["Subject"] = f"Re: {notice['Subject']}"
    domain = sender.rpartition("@")[2]
    reply["Message-ID"] = f"<reply-{notice['Message-ID'].strip('<>')}@{domain}>"
    reply["In-Reply-To"] = notice["Message-ID"]
    reply.set_content("Approve\n\nSent from my phone\n")
    return reply


@pytest.fixture(autouse=True)
def _no_relay_config_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(config_module.ENV_VAR, raising=False)
    os.environ.pop(config_module.ENV_VAR, None)
