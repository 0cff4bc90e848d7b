"""RFC 8601 Authentication-Results: the topmost trusted header counts, and only for the
sender's own domain."""

from __future__ import annotations

import pytest

from relay.authresults import UNCHECKED, Verdict, parse, topmost_trusted, vouches

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


def _vouches(headers: list[str], from_address: str = ANA) -> bool:
    found, _ = topmost_trusted(headers, TRUSTED)
    return vouches(found, from_address, ANA)


@pytest.mark.parametrize(
    "header",
    [
        "mx.pals.example.org; dmarc=pass header.from=riverside-library.example.org",
        "mx.pals.example.org; dkim=pass header.d=riverside-library.example.org",
        f"mx.pals.example.org; spf=pass smtp.mailfrom={ANA}",
        f"MX.PALS.EXAMPLE.ORG; spf=pass smtp.mailfrom={ANA.upper()}",
        # no DMARC policy published: an exact SPF or DKIM pass is enough
        "mx.pals.example.org; dmarc=none header.from=riverside-library.example.org; "
        "dkim=pass header.d=riverside-library.example.org",
    ],
)
def test_trusted_passes_for_the_own_domain_vouch(header: str) -> None:
    assert _vouches([header])


@pytest.mark.parametrize(
    "headers",
    [
        [],
        ["evil.example.net; dmarc=pass header.from=riverside-library.example.org"],
        ["mx.pals.example.org; dkim=pass header.d=other-library.example.org"],
        ["mx.pals.example.org; dkim=pass header.d=library.example.org.evil.net"],
        ["mx.pals.example.org; dkim=pass header.d=example.org"],  # a parent domain (attack c)
        ["mx.pals.example.org; dkim=pass header.i=@riverside-library.example.org"],  # no d=
        ["mx.pals.example.org; spf=pass smtp.mailfrom=someone@elsewhere.example.net"],
        ["mx.pals.example.org; spf=softfail smtp.mailfrom=" + ANA],
        ["mx.pals.example.org; dmarc=pass header.from=elsewhere.example.net"],
        ["mx.pals.example.org; dmarc=pass"],  # no header.from (attack d)
        ["mx.pals.example.org; none"],
        ["mx.pals.example.org.evil.net; dmarc=pass header.from=riverside-library.example.org"],
        ["; dmarc=pass"],
        # DMARC failed: an SPF or DKIM pass does not make up for it
        [
            "mx.pals.example.org; dmarc=fail header.from=riverside-library.example.org; "
            f"spf=pass smtp.mailfrom={ANA}"
        ],
        # only the topmost trusted header counts (attack b)
        [
            "mx.pals.example.org; dmarc=fail header.from=riverside-library.example.org",
            "mx.pals.example.org; dmarc=pass header.from=riverside-library.example.org",
        ],
    ],
)
def test_everything_else_does_not(headers: list[str]) -> None:
    assert not _vouches(headers)


def test_the_from_line_must_be_the_address_itself() -> None:
    header = "mx.pals.example.org; dmarc=pass header.from=riverside-library.example.org"
    assert not _vouches([header], "sam.lee@riverside-library.example.org")
    assert not _vouches([header], "")


def test_an_internationalized_domain_vouches_in_either_form() -> None:
    """Stored normalized (Unicode); a mail program and the results may write it in ASCII."""
    stored = "ana@bücher.example"
    for header in ("mx; dmarc=pass header.from=xn--bcher-kva.example",
                   "mx; dmarc=pass header.from=bücher.example",
                   "mx; spf=pass smtp.mailfrom=ana@xn--bcher-kva.example"):  # fmt: skip
        assert vouches(parse(header), "ANA@XN--BCHER-KVA.example", stored), header
        assert vouches(parse(header), stored, stored), header
    assert not vouches(parse("mx; dmarc=pass header.from=xn--bcher-kva.example"),
                       "ana@xn--bcher-kva.example", "ana@bucher.example")  # fmt: skip


def test_topmost_trusted_counts_the_others() -> None:
    found, others = topmost_trusted(
        [
            "other.example.net; dmarc=pass",
            "mx.pals.example.org; spf=pass smtp.mailfrom=x.org",
            "mx.pals.example.org; dmarc=pass header.from=x.org",
        ],
        TRUSTED,
    )
    assert found is not None and found.results[0].method == "spf" and others == 1


def test_a_verdict_survives_the_spool_marker_and_old_markers_read_unchecked() -> None:
    verdict = Verdict(
        "relay", ANA, "pals.example.org; dmarc=pass header.from=riverside-library.example.org"
    )
    assert Verdict.from_meta(verdict.to_meta()) == verdict
    assert verdict.vouches_for(ANA)
    assert Verdict.from_meta(None) == UNCHECKED and not UNCHECKED.vouches_for(ANA)
    assert Verdict("relay", ANA, "pals.example.org; dmarc=temperror").temporary


def test_the_spool_marker_keeps_the_verdict_and_older_markers_read_unchecked() -> None:
    from relay.spool import Incoming

    verdict = Verdict("front", ANA, "mx.pals.example.org; dmarc=fail header.from=x.org")
    incoming = Incoming(ANA, ("a@pals.example.org",), "2026-01-01", "smtp", verdict=verdict)
    assert Incoming.from_meta(incoming.to_meta()) == incoming
    older = {k: v for k, v in incoming.to_meta().items() if k != "verdict"}
    assert Incoming.from_meta(older).verdict == UNCHECKED
