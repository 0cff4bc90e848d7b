"""RFC 8601 Authentication-Results: only trusted authserv-ids count, and only for the sender."""

from __future__ import annotations

import pytest

from relay.authresults import authenticated, parse

TRUSTED = ("mx.pals.example.org",)
ANA = "ana.lopez@riverside-library.example.org"


def test_parse_reads_methods_properties_and_ignores_comments() -> None:
    parsed = parse(
        "mx.pals.example.org 1; spf=pass (sender IP is 198.51.100.7) "
        "smtp.mailfrom=ana.lopez@riverside-library.example.org; dkim=pass (2048-bit key) "
        'header.d=riverside-library.example.org header.s="k1"; dmarc=fail header.from=x.org'
    )
    assert parsed is not None and parsed.authserv_id == "mx.pals.example.org"
    assert [(r.method, r.result) for r in parsed.results] == [
        ("spf", "pass"),
        ("dkim", "pass"),
        ("dmarc", "fail"),
    ]
    assert parsed.results[1].properties["header.d"] == "riverside-library.example.org"


@pytest.mark.parametrize(
    "header",
    [
        "mx.pals.example.org; dmarc=pass header.from=riverside-library.example.org",
        "mx.pals.example.org; dkim=pass header.d=riverside-library.example.org",
        "mx.pals.example.org; dkim=pass header.i=@riverside-library.example.org",
        "mx.pals.example.org; dkim=pass header.d=example.org",  # parent domain signs
        f"mx.pals.example.org; spf=pass smtp.mailfrom={ANA}",
        f"MX.PALS.EXAMPLE.ORG; spf=pass smtp.mailfrom={ANA.upper()}",
    ],
)
def test_trusted_passes_authenticate(header: str) -> None:
    assert authenticated([header], ANA, TRUSTED)


@pytest.mark.parametrize(
    "headers",
    [
        [],
        ["evil.example.net; dmarc=pass header.from=riverside-library.example.org"],
        ["mx.pals.example.org; dkim=pass header.d=other-library.example.org"],
        ["mx.pals.example.org; dkim=pass header.d=library.example.org.evil.net"],
        ["mx.pals.example.org; spf=pass smtp.mailfrom=someone@elsewhere.example.net"],
        ["mx.pals.example.org; spf=softfail smtp.mailfrom=" + ANA],
        ["mx.pals.example.org; dmarc=pass header.from=elsewhere.example.net"],
        ["mx.pals.example.org; none"],
        ["mx.pals.example.org.evil.net; dmarc=pass header.from=riverside-library.example.org"],
        ["; dmarc=pass"],
    ],
)
def test_everything_else_does_not(headers: list[str]) -> None:
    assert not authenticated(headers, ANA, TRUSTED)
