"""OAuth2 access tokens for IMAP (XOAUTH2) at Google Workspace and Microsoft 365.

The refresh is left to each provider's own client library, installed as an optional extra
(`pip install penpal-relay[google]` or `[microsoft]`): they follow their provider's changes
to endpoints and token formats, which code of our own would not. The refresh token and the
client secret are read from files named in `[imap.oauth2]`, never from the config itself.
"""

from __future__ import annotations

import importlib
from typing import Any

from relay.config import OAuth2Settings
from relay.errors import UserError

GOOGLE_SCOPE = "https://mail.google.com/"
MICROSOFT_SCOPE = "https://outlook.office.com/IMAP.AccessAsUser.All"


def _module(name: str, extra: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        raise UserError(
            f"[imap.oauth2] needs the {extra!r} extra: pip install 'penpal-relay[{extra}]'"
        ) from None


def _secret(settings: OAuth2Settings) -> str:
    path = settings.client_secret_file
    return path.read_text().strip() if path else ""


def access_token(settings: OAuth2Settings) -> str:
    refresh_token = settings.refresh_token_file.read_text().strip()
    if settings.provider == "google":
        credentials_module = _module("google.oauth2.credentials", "google")
        requests_module = _module("google.auth.transport.requests", "google")
        credentials = credentials_module.Credentials(
            None,
            refresh_token=refresh_token,
            token_uri="https://oauth2.googleapis.com/token",  # noqa: S106 -- an endpoint
            client_id=settings.client_id,
            client_secret=_secret(settings),
            scopes=[GOOGLE_SCOPE],
        )
        credentials.refresh(requests_module.Request())
        return str(credentials.token)
    msal = _module("msal", "microsoft")
    app = msal.ConfidentialClientApplication(
        settings.client_id,
        authority=f"https://login.microsoftonline.com/{settings.tenant}",
        client_credential=_secret(settings) or None,
    )
    result = app.acquire_token_by_refresh_token(refresh_token, scopes=[MICROSOFT_SCOPE])
    if "access_token" not in result:
        raise UserError(f"Microsoft did not issue a token: {result.get('error', 'unknown')}")
    return str(result["access_token"])
