"""The DKIM key's file, its DNS record, `dkim keygen`, and the signature on a message."""

from __future__ import annotations

import re
import stat
import time
from pathlib import Path

import dkim
import pytest

from relay import config as config_module
from relay.cli import main
from relay.config import DkimSettings
from relay.dkim_signing import DnsRecord, Signer, ensure_key, open_signer
from relay.errors import ConfigError
from tests.conftest import DOMAIN, config_text

LETTER = (
    b"From: Maya <quiet-heron-2841@pals.example.org>\n"
    b"To: tomas.perez@correo.example.net\n"
    b"Subject: Hello\n"
    b"Date: Fri, 01 Jan 2027 09:00:00 +0000\n"
    b"Message-ID: <letter-1.abc@pals.example.org>\n"
    b"MIME-Version: 1.0\n"
    b"Content-Type: text/plain; charset=utf-8\n"
    b"\n"
    b"Hi! What is school like for you?\n"
)


@pytest.fixture(scope="module")
def pem(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return ensure_key(tmp_path_factory.mktemp("key") / "dkim" / "penpal1.key")


def _config(tmp_path: Path, dkim_section: str = "") -> config_module.Config:
    path = tmp_path / "config.toml"
    path.write_text(config_text(tmp_path / "data", extra_sections=dkim_section))
    return config_module.load(path)


def test_shipped_config_signs_with_a_key_in_the_data_folder() -> None:
    config = config_module.load(Path(__file__).resolve().parents[2] / "config.toml")
    key_file = config.relay.data_dir / "dkim" / "penpal1.key"
    assert config.dkim == DkimSettings(sign=True, selector="penpal1", key_file=key_file)


def test_key_made_once_readable_by_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "dkim" / "penpal1.key"
    first = ensure_key(path)
    assert first.startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert ensure_key(path) == first  # kept, never made again


def test_record_is_cut_into_255_character_strings(pem: bytes) -> None:
    record = Signer(pem, "penpal1", DOMAIN).record
    assert record.name == f"penpal1._domainkey.{DOMAIN}"
    assert record.value.startswith("v=DKIM1; k=rsa; p=MIIB")
    assert "".join(record.strings()) == record.value
    assert [len(s) for s in record.strings()][:-1] == [255] * (len(record.strings()) - 1)
    short = DnsRecord("s._domainkey.example.org", "v=DKIM1; p=abc")
    assert short.zone_line() == 's._domainkey.example.org. 3600 IN TXT ( "v=DKIM1; p=abc" )'


def test_lf_and_crlf_messages_are_signed_over_the_same_crlf_bytes(pem: bytes) -> None:
    signer = Signer(pem, "penpal1", DOMAIN)
    lookup = {b"penpal1._domainkey.pals.example.org.": signer.record.value.encode()}
    signed = signer.sign(LETTER)
    assert signed.count(b"\n") == signed.count(b"\r\n")
    assert signed.endswith(LETTER.replace(b"\n", b"\r\n"))
    for copy in (signed, signed.replace(b"\r\n", b"\n")):
        assert dkim.verify(copy, dnsfunc=lambda name, timeout=5: lookup.get(name))
    crlf = signer.sign(LETTER.replace(b"\n", b"\r\n"))
    assert dkim.verify(crlf, dnsfunc=lambda name, timeout=5: lookup.get(name))


def test_headers_signed_and_over_signed(pem: bytes) -> None:
    signed = Signer(pem, "penpal1", DOMAIN).sign(
        LETTER.replace(b"MIME-Version", b"Auto-Submitted: auto-generated\nMIME-Version")
    )
    header = signed.split(b"\r\n\r\n", 1)[0].decode()
    tags = dict(t.split("=", 1) for t in "".join(header.split()).split(";") if "=" in t)
    signed_names = tags["h"].split(":")
    assert signed_names.count("from") == 2 and signed_names.count("subject") == 2
    assert signed_names.count("reply-to") == 1  # absent, listed once: none can be added
    assert {"to", "date", "message-id", "mime-version", "content-type", "auto-submitted"} <= set(
        signed_names
    )
    assert tags["c"] == "relaxed/relaxed" and tags["a"] == "rsa-sha256" and tags["d"] == DOMAIN


def test_signing_off_makes_no_key(tmp_path: Path) -> None:
    config = _config(tmp_path, "[dkim]\nsign = false\n")
    assert open_signer(config) is None
    assert not config.dkim.key_file.exists()


def test_bad_selector_and_bad_key_file_name_their_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        _config(tmp_path, '[dkim]\nselector = "pen pal"\n')
    assert error.value.problems == [
        "dkim.selector: must be a DNS label such as 'penpal1' (letters, digits, dashes), "
        "not 'pen pal'"
    ]
    bad = tmp_path / "not-a-key.pem"
    bad.write_text("hello")
    config = _config(tmp_path, f'[dkim]\nkey_file = "{bad}"\n')
    with pytest.raises(ConfigError) as error:
        open_signer(config)
    assert error.value.problems[0].startswith(f"dkim.key_file: {bad} is not an RSA private key")


def test_keygen_never_replaces_a_key_silently(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path)
    path = str(config.path)
    assert main(["--config", path, "dkim", "keygen"]) == 0
    out = capsys.readouterr().out
    assert f"name:  penpal1._domainkey.{DOMAIN}" in out
    key = config.dkim.key_file.read_bytes()
    assert main(["--config", path, "dkim", "keygen"]) == 1
    assert capsys.readouterr().err == (
        f"penpal-relay: {config.dkim.key_file} exists; use --force to replace it\n"
    )
    assert config.dkim.key_file.read_bytes() == key
    assert main(["--config", path, "dkim", "keygen", "--force"]) == 0
    assert config.dkim.key_file.read_bytes() != key
    # The next key is made beside the current one, under its own selector.
    assert main(["--config", path, "dkim", "keygen", "--selector", "penpal2"]) == 0
    assert 'set [dkim] selector = "penpal2"' in capsys.readouterr().out
    assert (config.relay.data_dir / "dkim" / "penpal2.key").exists()
    assert main(["--config", path, "dkim", "keygen", "--selector", "p2", "--bits", "512"]) == 1
    assert "--bits: must be from 1024 to 4096, not 512" in capsys.readouterr().err


def test_signature_is_byte_for_byte_the_one_dkimpy_makes(
    pem: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the RSA step is OpenSSL's: with the same time, dkimpy's own `sign` writes the
    same header (PKCS#1 v1.5 signatures are deterministic)."""
    monkeypatch.setattr(time, "time", lambda: 1_800_000_000.0)
    message = LETTER.replace(b"\n", b"\r\n")
    ours = Signer(pem, "penpal1", DOMAIN).sign(message).removesuffix(message)
    h = re.search(rb"h=([^;]*);", b"".join(ours.split()))
    assert h is not None
    theirs = dkim.DKIM(message, linesep=b"\r\n").sign(
        b"penpal1",
        DOMAIN.encode(),
        pem,
        canonicalize=(b"relaxed", b"relaxed"),
        include_headers=h.group(1).split(b":"),
    )
    assert ours == theirs
