"""Returned messages read from the samples in tests/messages/returned: each format's outcome,
status and failing recipient."""

from __future__ import annotations

from pathlib import Path

import pytest

from relay import dsn

RETURNED = Path(__file__).resolve().parents[1] / "messages" / "returned"
PAL = "tomas.perez@correo.example.net"

EXPECTED = {
    "postfix-dsn-failed.eml": ("failed", "5.1.1", "rfc3464"),
    "gmail-dsn-failed.eml": ("failed", "5.1.1", "rfc3464"),
    "microsoft-ndr-failed.eml": ("failed", "5.1.10", "rfc3464"),
    "postfix-text-failed.eml": ("failed", "5.1.1", "flufl.bounce"),
    "exim-text-failed.eml": ("failed", "5.1.1", "flufl.bounce"),
    "qmail-text-failed.eml": ("failed", "5.1.1", "flufl.bounce"),
    "postfix-dsn-delayed.eml": ("delayed", "4.4.1", "rfc3464"),
}


def _sample(name: str) -> bytes:
    return (RETURNED / name).read_bytes().replace(b"@@RETURN_PATH@@", b"bounces@pals.example.org")


def test_every_sample_is_expected() -> None:
    names = {p.name for p in RETURNED.glob("*.eml")}
    assert names == set(EXPECTED) | {"outlook-out-of-office.eml", "vacation-reply.eml"}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_report_names_its_outcome_status_and_recipient(name: str) -> None:
    outcome, status, source = EXPECTED[name]
    assert dsn.read(_sample(name)) == dsn.Returned(outcome, (PAL,), status, source)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["outlook-out-of-office.eml", "vacation-reply.eml"])
def test_an_automatic_reply_is_not_a_bounce(name: str) -> None:
    assert dsn.read(_sample(name)).outcome == "auto-reply"


def test_an_out_of_office_subject_alone_is_an_auto_reply() -> None:
    raw = b"From: a@example.net\r\nSubject: Out of Office: Hello\r\n\r\nBack on Monday.\r\n"
    assert dsn.read(raw).outcome == "auto-reply"


def test_a_person_writing_to_a_return_path_is_unknown() -> None:
    raw = b"From: a@example.net\r\nSubject: Re: Hello\r\n\r\nWho is this?\r\n"
    assert dsn.read(raw) == dsn.Returned("unknown")
