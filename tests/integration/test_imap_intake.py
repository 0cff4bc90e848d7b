"""IMAP intake against a real Dovecot: catch-up, IDLE, dropped connections, UIDVALIDITY
changes, refusals, and a kill -9 between spooling and MOVE."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

import pytest

from relay import replies
from relay.faults import ENV_VAR as CRASH_AT
from relay.faults import PAUSE_AT, PAUSE_DIR
from tests.conftest import DOMAIN, Relay, enroll_pals, wait_for
from tests.support.dovecot import PASSWORD, USER, Dovecot

TRUSTED = "mx.test.example.org"


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    # Not under pytest's tmp_path: Dovecot's unprivileged processes must reach the folder.
    root = Path(tempfile.mkdtemp(prefix="penpal-dovecot-"))
    server = Dovecot(root).start()
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


def imap_section(dovecot: Dovecot, folder: Path, *, idle_seconds: int = 30) -> str:
    password = folder / "imap-password"
    password.write_text(PASSWORD + "\n")
    return f"""
        [imap]
        host = "127.0.0.1"
        port = {dovecot.port}
        tls = "off"
        username = "{USER}"
        password_file = "{password}"
        folder = "INBOX"
        processed_folder = "Processed"
        failed_folder = "Failed"
        idle_seconds = {idle_seconds}
        timeout_seconds = 5
        retry_max_seconds = 1
        """


@pytest.fixture
def imap_relay(relay_factory: Callable[..., Relay], dovecot: Dovecot, tmp_path: Path) -> Relay:
    return relay_factory(extra_sections=imap_section(dovecot, tmp_path))


def mailbox_copy(sender: str, masked: str, subject: str, *, authenticated: bool = True) -> bytes:
    """A letter as it sits in a hosted catch-all mailbox after the provider took it in."""
    message = EmailMessage(policy=SMTP)
    message["Delivered-To"] = masked
    if authenticated:
        domain = sender.rpartition("@")[2]
        message["Authentication-Results"] = (
            f"{TRUSTED}; spf=pass smtp.mailfrom={sender}; dkim=pass header.d={domain}"
        )
    message["From"] = f"Someone <{sender}>"
    message["To"] = masked
    message["Subject"] = subject
    message["Message-ID"] = f"<{subject.replace(' ', '-').lower()}@family-mail.example.net>"
    message.set_content("Hello from the mailbox!")
    return message.as_bytes()


def _subjects(relay: Relay) -> list[str]:
    return sorted(q["subject"] for q in relay.queue())


def test_catch_up_of_mail_that_arrived_while_the_relay_was_down(
    imap_relay: Relay, dovecot: Dovecot
) -> None:
    pals = enroll_pals(imap_relay)
    for n in range(3):
        dovecot.append(mailbox_copy(pals.maya.email, pals.tomas.masked, f"Waiting {n}"))
    imap_relay.start()
    imap_relay.wait_held(3)
    assert _subjects(imap_relay) == ["Waiting 0", "Waiting 1", "Waiting 2"]
    wait_for(lambda: len(dovecot.uids("Processed")) == 3, what="moved to Processed")
    assert dovecot.uids("INBOX") == []


def test_idle_picks_up_a_new_letter_and_survives_a_server_restart(
    imap_relay: Relay, dovecot: Dovecot
) -> None:
    pals = enroll_pals(imap_relay)
    imap_relay.start()
    wait_for(lambda: "imap connected" in imap_relay.log(), what="IMAP connection")
    dovecot.append(mailbox_copy(pals.maya.email, pals.tomas.masked, "Live one"))
    imap_relay.wait_held(1)  # within seconds, through IDLE
    assert "imap connection lost" not in imap_relay.log()  # news, not a reconnect, woke it

    dovecot.stop()  # the provider drops every connection
    wait_for(lambda: "imap connection lost" in imap_relay.log(), what="the drop noticed")
    dovecot.start()
    dovecot.append(mailbox_copy(pals.maya.email, pals.tomas.masked, "After the drop"))
    imap_relay.wait_held(2)
    assert _subjects(imap_relay) == ["After the drop", "Live one"]
    wait_for(lambda: dovecot.uids("INBOX") == [], what="inbox emptied")
    assert len(dovecot.uids("Processed")) == 2


@pytest.mark.parametrize(
    ("moment", "waiting"),
    [
        # The server announces the letter in its reply to the catch-up SEARCH; whether the
        # result includes it depends on when Dovecot noticed it, and either way it is held.
        ("imap-before-search", 0),
        # The server announces it on entering IDLE, in the same packet as "+ idling".
        ("imap-after-search", 0),
        # The server announces it in its replies to the FETCH and MOVE of a waiting letter.
        ("imap-after-search", 1),
    ],
    ids=["before-search", "before-idle", "while-taking-another"],
)
def test_a_letter_arriving_during_catch_up_is_held_without_waiting_for_idle_renewal(
    relay_factory: Callable[..., Relay],
    dovecot: Dovecot,
    tmp_path: Path,
    moment: str,
    waiting: int,
) -> None:
    # IDLE renews only every ten minutes here, so the letter is held through the server's
    # announcement or not within wait_held's bound at all.
    relay = relay_factory(extra_sections=imap_section(dovecot, tmp_path, idle_seconds=600))
    pals = enroll_pals(relay)
    for n in range(waiting):
        dovecot.append(mailbox_copy(pals.maya.email, pals.tomas.masked, f"Waiting {n}"))
    pauses = tmp_path / "pauses"
    pauses.mkdir()
    relay.start(env={PAUSE_AT: moment, PAUSE_DIR: str(pauses)})
    wait_for(lambda: (pauses / f"{moment}.paused").exists(), what=f"the relay at {moment}")

    dovecot.append(mailbox_copy(pals.maya.email, pals.tomas.masked, "Mid catch-up"))
    (pauses / f"{moment}.resume").touch()

    relay.wait_held(waiting + 1)
    assert _subjects(relay) == ["Mid catch-up"] + [f"Waiting {n}" for n in range(waiting)]
    wait_for(lambda: dovecot.uids("INBOX") == [], what="inbox emptied")
    assert "imap connection lost" not in relay.log()


def test_uidvalidity_change_neither_repeats_nor_skips(imap_relay: Relay, dovecot: Dovecot) -> None:
    pals = enroll_pals(imap_relay)
    first = mailbox_copy(pals.maya.email, pals.tomas.masked, "First")
    dovecot.append(first)
    imap_relay.start()
    imap_relay.wait_held(1)
    wait_for(lambda: dovecot.uids("INBOX") == [])
    imap_relay.stop()

    # While the relay is away the provider renumbers the folder, two new letters arrive,
    # and the first one reappears (restored from a backup).
    dovecot.append(mailbox_copy(pals.maya.email, pals.tomas.masked, "Second"))
    dovecot.append(first)
    dovecot.append(mailbox_copy(pals.maya.email, pals.tomas.masked, "Third"))
    dovecot.reset_uidvalidity()
    imap_relay.start()
    wait_for(lambda: dovecot.uids("INBOX") == [], what="every message moved")
    imap_relay.wait_held(3)
    assert _subjects(imap_relay) == ["First", "Second", "Third"]
    assert "UIDVALIDITY changed" in imap_relay.log()


def test_refused_message_goes_to_failed_and_the_sender_is_told(
    imap_relay: Relay, dovecot: Dovecot
) -> None:
    config = imap_relay.config_path.read_text()
    imap_relay.config_path.write_text(
        config.replace('front_servers = ["127.0.0.1"]', 'patron_policy = "refuse"')
    )
    pals = enroll_pals(imap_relay)
    dovecot.append(mailbox_copy(pals.leo.email, pals.tomas.masked, "Not my pal"))
    dovecot.append(mailbox_copy(pals.maya.email, pals.tomas.masked, "Forged", authenticated=False))
    dovecot.append(mailbox_copy("stranger@elsewhere.example.net", f"nobody-0000@{DOMAIN}", "?"))
    imap_relay.start()
    wait_for(lambda: len(dovecot.uids("Failed")) == 3, what="three refusals moved")
    assert imap_relay.queue() == []
    (note,) = wait_for(lambda: imap_relay.delivered(pals.leo.email), what="Leo's explanation")
    assert note["Subject"] == "Not delivered: Not my pal"
    assert replies.UNKNOWN_ADDRESS in note.get_body(("plain",)).get_content()
    assert note["Auto-Submitted"] == "auto-replied"
    # No answer to an unverified sender (it may be forged) or to an unknown one.
    assert imap_relay.delivered(pals.maya.email) == []
    assert "imap refused uid=2 reason=sender-unverified" in imap_relay.log()


def test_unverified_letter_is_held_with_the_flag_under_the_default_policy(
    imap_relay: Relay, dovecot: Dovecot
) -> None:
    """The mailbox provider is the front: its topmost header is the verdict."""
    pals = enroll_pals(imap_relay)
    forged = mailbox_copy(pals.maya.email, pals.tomas.masked, "Forged", authenticated=False)
    on_top = f"Authentication-Results: {TRUSTED}; dmarc=fail header.from=family-mail.example.net"
    dovecot.append(
        on_top.encode() + b"\r\n" + mailbox_copy(pals.maya.email, pals.tomas.masked, "Checked")
    )
    dovecot.append(forged)
    dovecot.append(mailbox_copy(pals.maya.email, pals.tomas.masked, "Genuine"))
    imap_relay.start()
    held = {q["subject"]: q for q in imap_relay.wait_held(3)}
    for subject in ("Checked", "Forged"):  # a DMARC fail on top wins over a pass below
        assert imap_relay.letter(held[subject]["id"])["sender_check"] == "unverified"
    assert imap_relay.letter(held["Genuine"]["id"])["sender_check"] == "verified"


def test_kill_between_spool_and_move_leaves_no_duplicate(
    imap_relay: Relay, dovecot: Dovecot
) -> None:
    pals = enroll_pals(imap_relay)
    dovecot.append(mailbox_copy(pals.maya.email, pals.tomas.masked, "Crash test"))
    imap_relay.start(env={CRASH_AT: "imap-after-spool"})
    assert imap_relay.process is not None
    assert imap_relay.process.wait(20) == -9  # killed right after spooling
    imap_relay.process = None
    assert len(dovecot.uids("INBOX")) == 1  # not moved yet

    imap_relay.start()
    wait_for(lambda: dovecot.uids("INBOX") == [], what="moved after restart")
    (held,) = imap_relay.wait_held(1)
    assert held["subject"] == "Crash test"
    assert "already spooled" in imap_relay.log()
    assert len(imap_relay.queue()) == 1
