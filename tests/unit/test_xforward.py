"""XFORWARD's attribute list, as Postfix's smtp client writes it (XFORWARD_README)."""

from __future__ import annotations

import pytest

from relay.intake.smtp import parse_xforward


def test_postfixs_own_example_is_read() -> None:
    assert parse_xforward("NAME=spike.porcupine.org ADDR=168.100.189.2 PROTO=ESMTP") == {
        "NAME": "spike.porcupine.org",
        "ADDR": "168.100.189.2",
        "PROTO": "ESMTP",
    }


def test_an_ipv6_address_loses_its_prefix_and_xtext_is_decoded() -> None:
    found = parse_xforward("addr=IPV6:2001:db8::1 HELO=odd+2Bname+3Dx SOURCE=REMOTE")
    assert found == {"ADDR": "2001:db8::1", "HELO": "odd+name=x", "SOURCE": "REMOTE"}


def test_unavailable_is_kept_as_no_address() -> None:
    assert parse_xforward("ADDR=[UNAVAILABLE] NAME=[TEMPUNAVAIL]") == {
        "ADDR": "[UNAVAILABLE]",
        "NAME": "[TEMPUNAVAIL]",
    }


@pytest.mark.parametrize(
    "arg", ["", "ADDR", "=1.2.3.4", "FOO=bar", "ADDR=1.2.3.4 junk", "HELO=" + "x" * 256]
)
def test_malformed_attribute_lists_are_refused(arg: str) -> None:
    assert parse_xforward(arg) is None
