"""A running relay follows its config file, and keeps a good one when the new one is bad."""

from __future__ import annotations

import signal

from tests.conftest import MODERATOR_A, MODERATOR_B, Pals, Relay, letter_bytes, wait_for


def _deliver_one(relay: Relay, pals: Pals, subject: str) -> str:
    relay.send(
        pals.maya.email,
        [pals.tomas.masked],
        letter_bytes(pals.maya.email, pals.tomas.masked, subject=subject),
    )
    held = wait_for(lambda: [q for q in relay.queue() if q["subject"] == subject])[0]
    relay.cli("queue", "approve", str(held["id"]), "--by", MODERATOR_A)
    message = wait_for(
        lambda: [m for m in relay.delivered(pals.tomas.email) if m["Subject"] == subject]
    )[0]
    text: str = message.get_body(("plain",)).get_content()
    return text


def test_bad_edit_keeps_running_config_and_tells_coordinators(relay: Relay, pals: Pals) -> None:
    relay.start()
    good = relay.config_path.read_text()
    relay.cli_config = relay.root / "good.toml"  # staff keep working from a good copy
    relay.cli_config.write_text(good)
    relay.config_path.write_text(
        good.replace("[smtp]", 'colour = "blue"\n\n[smtp]', 1).replace(
            "America/Santiago", "Mars/Base"
        )
    )
    wait_for(lambda: "config not reloaded" in relay.log(), what="reload attempt")
    log = relay.log()
    assert "config not reloaded: relay.colour: unknown key" in log
    assert "config not reloaded: libraries[1].timezone: unknown time zone 'Mars/Base'" in log
    notices = wait_for(
        lambda: m if len(m := relay.delivered()) == 2 else None, what="a notice to each coordinator"
    )
    assert sorted(n["To"].addresses[0].addr_spec for n in notices) == sorted(
        [MODERATOR_A, MODERATOR_B]
    )
    body = notices[0].get_body(("plain",)).get_content()
    assert "relay.colour: unknown key" in body and "previous configuration" in body
    # Still running on the previous configuration.
    assert "Test Pen Pals" in _deliver_one(relay, pals, "Still here")

    relay.config_path.write_text(good.replace("Test Pen Pals", "Riverside & Severín Pals"))
    relay.cli_config = None
    wait_for(lambda: "config reloaded" in relay.log(), what="reload")
    assert "Riverside & Severín Pals" in _deliver_one(relay, pals, "After the edit")


def test_sighup_reloads(relay: Relay, pals: Pals) -> None:
    relay.start()
    text = relay.config_path.read_text().replace("Test Pen Pals", "Renamed Program")
    relay.config_path.write_text(text)
    assert relay.process is not None
    relay.process.send_signal(signal.SIGHUP)
    wait_for(lambda: "config reloaded" in relay.log())
    assert "Renamed Program" in _deliver_one(relay, pals, "After SIGHUP")
