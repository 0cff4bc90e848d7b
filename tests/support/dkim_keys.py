"""DKIM keys made for a test: a sender's domain signing its mail, its key as a TXT record."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import dkim


class Signer:
    """An RSA key pair made with openssl, its public half as a DKIM TXT record."""

    def __init__(self, folder: Path, domain: str, selector: str = "k1") -> None:
        self.domain, self.selector = domain, selector
        key = folder / f"{domain}.pem"
        subprocess.run(
            ["openssl", "genrsa", "-out", str(key), "1024"], check=True, capture_output=True
        )
        self.private = key.read_bytes()
        der = subprocess.run(
            ["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"],
            check=True,
            capture_output=True,
        ).stdout
        self.record = f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}"

    @property
    def name(self) -> str:
        return f"{self.selector}._domainkey.{self.domain}"

    def sign(self, raw: bytes) -> bytes:
        signature = dkim.sign(
            raw,
            self.selector.encode(),
            self.domain.encode(),
            self.private,
            include_headers=[b"from", b"to", b"subject", b"message-id", b"in-reply-to"],
        )
        return signature + raw
