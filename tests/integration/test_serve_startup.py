"""`serve` under pressure: it listens before recovering, finishes approvals a crashed CLI left
behind, turns senders away while too much waits to be held, and its intake processes end
with it."""

from __future__ import annotations

import http.client
import json
import os
import signal
import smtplib
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from relay import faults, participants, replies
from relay.spool import FoundRoute, Incoming
from tests.conftest import MODERATOR_A, Pals, Relay, enroll_pals, letter_bytes
from tests.support.serving import serving
from tests.support.system import children
from tests.support.waiting import wait_for


def _web_answers(relay: Relay) -> bool:
    info = json.loads((relay.data_dir / "run" / "serve.json").read_text())
    host, port = info["web"].rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request("GET", "/")
        return connection.getresponse().status < 500
    finally:
        connection.close()


def _accepts_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def _send_letter(relay: Relay, pals: Pals, subject: str) -> None:
    relay.send(
        pals.maya.email,
        [pals.tomas.masked],
        letter_bytes(pals.maya.email, pals.tomas.masked, subject=subject),
    )


def _approve_and_die(relay: Relay, letter_id: int, *, serve_running: bool) -> None:
    """A CLI approval killed right after the decision is recorded, before queueing. A
    running `serve` may find the letter and deliver it before this reads its status."""
    command = [sys.executable, "-m", "relay", "--config", str(relay.config_path)]
    result = subprocess.run(
        [*command, "queue", "approve", str(letter_id), "--by", MODERATOR_A],
        capture_output=True,
        timeout=60,
        cwd=relay.root,
        env={**os.environ, faults.ENV_VAR: "approve-after-decision"},
    )
    assert result.returncode == -signal.SIGKILL
    recorded = ("approved", "delivered") if serve_running else ("approved",)
    assert relay.letter(letter_id)["status"] in recorded


def _delivered_subjects(relay: Relay, pals: Pals) -> list[str]:
    return [str(m["Subject"]) for m in relay.delivered(pals.tomas.email)]


def test_an_approval_whose_cli_died_is_delivered_without_a_restart(relay: Relay) -> None:
    pals = enroll_pals(relay)
    with serving(relay):
        _send_letter(relay, pals, "Approved, then the CLI died")
        (held,) = relay.wait_held(1)
        _approve_and_die(relay, held["id"], serve_running=True)
        wait_for(
            lambda: _delivered_subjects(relay, pals) == ["Approved, then the CLI died"],
            what="the approved letter in the pal's mailbox",
        )
        wait_for(lambda: relay.letter(held["id"])["status"] == "delivered")
        assert f"requeued letter={held['id']}" in relay.log()


def test_serve_listens_before_it_queues_what_it_finds_unqueued(
    relay: Relay, tmp_path: Path
) -> None:
    pals = enroll_pals(relay)
    with serving(relay):
        _send_letter(relay, pals, "Approved while serve was down")
        (held,) = relay.wait_held(1)
    _approve_and_die(relay, held["id"], serve_running=False)  # serve is stopped: nobody queues it

    recovering = tmp_path / "reconcile-paused"
    recovering.touch()
    env = {faults.PAUSE_AT: "reconcile", faults.PAUSE_WHILE: str(recovering)}
    with serving(relay, env):
        # Start-up recovery has not run, yet SMTP and the web app answer.
        _send_letter(relay, pals, "Sent during recovery")
        assert _web_answers(relay)
        assert wait_for(lambda: len(relay.queue()) == 1, what="the new letter held")
        assert _delivered_subjects(relay, pals) == []
        recovering.unlink()
        wait_for(
            lambda: _delivered_subjects(relay, pals) == ["Approved while serve was down"],
            what="the letter approved while serve was down, delivered",
        )


def _with_smtp_settings(relay: Relay, settings: str) -> Relay:
    relay.config_path.write_text(
        relay.config_path.read_text().replace("[smtp]\n", f"[smtp]\n{settings}\n", 1)
    )
    return relay


def test_intake_answers_452_while_too_many_letters_wait_to_be_held(
    relay_factory: Callable[..., Relay], tmp_path: Path
) -> None:
    relay = _with_smtp_settings(relay_factory(), "max_backlog_letters = 3")
    pals = enroll_pals(relay)
    holding = tmp_path / "hold-paused"
    holding.touch()
    env = {faults.PAUSE_AT: "hold", faults.PAUSE_WHILE: str(holding)}
    with serving(relay, env), relay.smtp() as early:
        early.ehlo()
        assert early.mail(pals.maya.email)[0] == 250  # before the backlog filled up
        for number in range(3):
            _send_letter(relay, pals, f"Letter {number}")
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            _send_letter(relay, pals, "One too many")
        code, text = refused.value.smtp_code, refused.value.smtp_error.decode()
        assert f"{code} {text}" == replies.BACKLOG_FULL
        code, said = early.rcpt(pals.tomas.masked)  # a session already open: refused at RCPT
        assert f"{code} {said.decode()}" == replies.BACKLOG_FULL
        early.rset()
        assert relay.queue() == []

        holding.unlink()
        queue = relay.wait_held(3)
        assert sorted(q["subject"] for q in queue) == ["Letter 0", "Letter 1", "Letter 2"]
        incoming = relay.data_dir / "spool" / "incoming"
        wait_for(lambda: not list(incoming.glob("*.json")), what="intake drained")
        _send_letter(relay, pals, "After the rush")
        held = relay.wait_held(4)
        assert "After the rush" in {q["subject"] for q in held}


def test_intake_processes_end_when_serve_is_killed(
    relay_factory: Callable[..., Relay],
) -> None:
    relay = _with_smtp_settings(relay_factory(), "intake_processes = 1")
    pals = enroll_pals(relay)
    with serving(relay):
        assert relay.process is not None
        serve = relay.process.pid
        (child,) = children(serve, "relay.intake.smtp")
        _send_letter(relay, pals, "Before the crash")
        os.kill(serve, signal.SIGKILL)  # serve only, not its process group
        relay.process.wait(30)
        relay.process = None
        wait_for(lambda: not _alive(child), what="the intake process to end")
        assert not _accepts_connections(relay.port)
    with serving(relay):  # what it accepted is held by the next serve
        (held,) = relay.wait_held(1)
        assert held["subject"] == "Before the crash"


def _alive(pid: int) -> bool:
    """Running, and not a zombie waiting for a parent that is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "State:\tZ" not in status


def test_a_route_found_at_rcpt_is_checked_again_when_the_letter_is_held(
    relay: Relay, tmp_path: Path
) -> None:
    """Intake keeps the route it found; a pairing ended before the hold stops the letter."""
    pals = enroll_pals(relay)
    holding = tmp_path / "hold-paused"
    holding.touch()
    env = {faults.PAUSE_AT: "hold", faults.PAUSE_WHILE: str(holding)}
    with serving(relay, env):
        _send_letter(relay, pals, "Before the pairing ended")
        (marker,) = (relay.data_dir / "spool" / "incoming").glob("*.json")
        kept = Incoming.from_meta(json.loads(marker.read_text()))
        assert kept.via == "smtp" and kept.peer == "127.0.0.1" and kept.helo
        assert kept.routes == (FoundRoute(pals.tomas.masked, pals.maya.id, pals.tomas.id),)

        ctx = relay.context()
        participants.unpair(ctx, pals.maya, pals.tomas)
        holding.unlink()
        wait_for(
            lambda: [e for e in ctx.store.audit_log() if e["event"] == "not-held"],
            what="the letter refused at hold",
        )
        (refused,) = [e for e in ctx.store.audit_log() if e["event"] == "not-held"]
        assert refused["reason"] == "not-paired"
        assert relay.queue() == []
