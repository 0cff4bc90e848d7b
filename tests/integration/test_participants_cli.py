"""`penpal-relay participants ...`, `pair` and `unpair` as staff type them."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from tests.conftest import MAYA, TOMAS, Pals, Relay

PARENT = "ann.smith@family-mail.example.net"


def test_field_errors_name_the_flag(relay: Relay) -> None:
    bad = relay.cli(
        "participants", "add", "--library", "riverside", "--name", "Maya", "--email", "nope",
        check=False,
    )  # fmt: skip
    assert bad.returncode == 1
    assert bad.stderr.startswith("penpal-relay: --email: ")
    unknown = relay.cli(
        "participants", "add", "--library", "atlantis", "--name", "Maya", "--email", MAYA,
        check=False,
    )  # fmt: skip
    assert unknown.stderr.startswith("penpal-relay: --library: no library 'atlantis'")


def test_enrolment_details_added_shown_and_edited(relay: Relay) -> None:
    """A child under Riverside's consent age (13, US) is enrolled with a guardian, who is
    asked for consent; the details can be changed later, and the audit log names fields."""
    year = str(datetime.now(UTC).year - 9)
    born = relay.cli(
        "participants", "add", "--library", "riverside", "--name", "Maya", "--email", MAYA,
        "--birth-year", "20l6", check=False,
    )  # fmt: skip
    assert born.returncode == 1
    assert born.stderr.startswith("penpal-relay: --birth-year: '20l6' is not a year of birth")
    assert len(born.stderr.strip().splitlines()) == 1
    added = relay.cli(
        "participants", "add", "--library", "riverside", "--name", "Maya", "--email", MAYA,
        "--birth-year", year, "--interests", "Football, drawing", "--guardian", PARENT,
        "--guardian-name", "Ann Smith", "--no-guardian-copies", "--json",
    )  # fmt: skip
    maya = json.loads(added.stdout)
    assert (maya["birth_year"], maya["interests"]) == (int(year), ["football", "drawing"])
    assert (maya["guardian"], maya["guardian_name"], maya["guardian_copies"]) == (
        PARENT,
        "Ann Smith",
        False,
    )
    assert maya["consent"] == "pending"

    relay.cli(
        "participants", "edit", maya["id"], "--interests", "chess", "--birth-year", "",
        "--age-band", "9-11",
    )  # fmt: skip
    relay.cli("participants", "guardian", maya["id"], PARENT, "--name", "Ann Jones")
    shown = relay.cli("participants", "show", maya["id"]).stdout
    assert "interests: chess" in shown and "age band:  9-11" in shown
    assert f"guardian:  Ann Jones <{PARENT}> (copies)" in shown
    assert "consent:   pending" in shown
    entries = [e for e in relay.context().store.audit_log() if e["event"] == "details-changed"]
    assert [e["fields"] for e in entries] == [
        "birth_year,age_band,interests",
        "guardian_name,guardian_copies",
    ]
    assert PARENT not in str(entries) and "Ann" not in str(entries)
    assert PARENT not in (relay.data_dir / "relay.log").read_text()


def test_pause_resume_leave_guardian_and_unpair(relay: Relay, pals: Pals) -> None:
    paused = relay.cli("participants", "pause", pals.maya.masked)
    assert paused.stdout.strip() == f"{pals.maya.id} ({pals.maya.masked}) is paused"
    assert "is active" in relay.cli("participants", "resume", MAYA).stdout
    assert "is left" in relay.cli("participants", "leave", pals.maya.id).stdout
    refused = relay.cli("participants", "pause", pals.maya.id, check=False)
    assert refused.returncode == 1 and "has left the program" in refused.stderr
    relay.cli("participants", "resume", pals.maya.id)

    relay.cli("participants", "guardian", pals.maya.id, "parent.smith@family-mail.example.net")
    bad = relay.cli("participants", "guardian", pals.maya.id, "mum", check=False)
    assert bad.returncode == 1 and bad.stderr.startswith("penpal-relay: --guardian: ")
    neither = relay.cli("participants", "guardian", pals.maya.id, check=False)
    assert neither.returncode == 1
    relay.cli("participants", "guardian", pals.maya.id, "--clear")

    relay.cli("unpair", pals.maya.id, TOMAS)
    again = relay.cli("unpair", pals.maya.id, TOMAS, check=False)
    assert again.returncode == 1 and "not pals" in again.stderr
    across = relay.cli("pair", pals.maya.id, pals.leo.id, check=False)
    assert across.returncode == 1 and "not in partner libraries" in across.stderr

    listed = json.loads(relay.cli("participants", "list", "--json").stdout)
    maya = next(p for p in listed if p["id"] == pals.maya.id)
    assert (maya["status"], maya["guardian"], maya["pals"]) == ("active", "", [])
    events = [e["event"] for e in relay.context().store.audit_log()]
    assert events[4:] == [
        "paused",
        "resumed",
        "left",
        "resumed",
        "guardian-set",
        "guardian-cleared",
        "unpaired",
    ]
    log = (relay.data_dir / "relay.log").read_text()
    assert f"left participant={pals.maya.id} library=riverside via=cli" in log
    assert MAYA not in log and "parent.smith" not in log
