"""Signed session cookies and the CSRF token that rides in them.

The cookie holds who signed in (staff email and library), a random CSRF token and when the
visitor was last seen, signed with HMAC-SHA256 under a key derived from the relay's secret.
Nothing is kept server-side, so a restart keeps everyone signed in; the idle limit and the
check that the address is still listed as staff (on every request, against the current
configuration) are what end a session. Visitors who have not signed in get a cookie too,
with an empty email, so the sign-in forms carry a CSRF token as well.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, replace

COOKIE = "penpal_session"
REFRESH_SECONDS = 60  # re-sign the cookie at most once a minute, not on every request


@dataclass(frozen=True)
class Session:
    email: str  # "" until signed in
    library: str
    csrf: str
    seen: float

    @property
    def signed_in(self) -> bool:
        return bool(self.email)

    def touched(self, now: float) -> Session:
        return replace(self, seen=now)


def anonymous(now: float | None = None) -> Session:
    return Session("", "", secrets.token_urlsafe(32), now or time.time())


def signed_in(email: str, library: str) -> Session:
    # A fresh CSRF token at sign-in: a token seen before signing in is worth nothing after.
    return Session(email, library, secrets.token_urlsafe(32), time.time())


def session_key(secret: bytes) -> bytes:
    return hmac.new(secret, b"penpal-relay dashboard session", hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode(session: Session, key: bytes) -> str:
    body = json.dumps(
        {"e": session.email, "l": session.library, "c": session.csrf, "t": session.seen}
    ).encode()
    payload = _b64(body)
    signature = _b64(hmac.new(key, payload.encode(), hashlib.sha256).digest())
    return f"{payload}.{signature}"


def decode(cookie: str, key: bytes, *, idle_seconds: float, now: float) -> Session | None:
    """The session in a cookie, or None if it is forged, damaged or idle too long."""
    payload, _, signature = cookie.partition(".")
    expected = _b64(hmac.new(key, payload.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(signature, expected):
        return None
    try:
        data = json.loads(_unb64(payload))
        session = Session(str(data["e"]), str(data["l"]), str(data["c"]), float(data["t"]))
    except (ValueError, KeyError, TypeError, binascii.Error):
        return None
    if session.signed_in and now - session.seen > idle_seconds:
        return None
    return session


def csrf_ok(session: Session, submitted: str) -> bool:
    return bool(submitted) and hmac.compare_digest(session.csrf, submitted)
