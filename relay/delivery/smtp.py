"""SMTP transport: hand messages to a smarthost with aiosmtplib.

STARTTLS is required unless `[delivery] starttls = false`; AUTH uses the password file.
A 4xx reply or a network error is temporary (`DeliveryError(permanent=False)`), a 5xx reply
is permanent. Replies are reduced to their code and text: a smarthost's reply may quote the
recipient's address, and the caller logs it.
"""

from __future__ import annotations

import re

import aiosmtplib

from relay.config import DeliverySettings
from relay.errors import DeliveryError, DeliveryTimeout


class SmtpTransport:
    def __init__(self, settings: DeliverySettings) -> None:
        self.settings = settings

    def _password(self) -> str | None:
        path = self.settings.password_file
        return path.read_text().strip() if path else None

    async def send(
        self, envelope_from: str, recipients: list[str], message: bytes, item_id: str
    ) -> None:
        s = self.settings
        try:
            await aiosmtplib.send(
                message,
                sender=envelope_from,
                recipients=recipients,
                hostname=s.smarthost.host,
                port=s.smarthost.port,
                start_tls=s.starttls,
                use_tls=False,
                username=s.username or None,
                password=self._password() if s.username else None,
                timeout=s.timeout_seconds,
            )
        except aiosmtplib.SMTPTimeoutError as error:
            raise DeliveryTimeout(f"smarthost timed out: {type(error).__name__}") from None
        except aiosmtplib.SMTPRecipientsRefused as error:
            codes = [e.code for e in error.recipients]
            permanent = all(code >= 500 for code in codes)
            raise DeliveryError(
                f"smarthost refused the recipient ({', '.join(map(str, codes))})",
                permanent=permanent,
                code=max(codes, default=None),
            ) from None
        except aiosmtplib.SMTPResponseException as error:
            raise DeliveryError(
                f"smarthost answered {error.code} {_without_addresses(error.message)}",
                permanent=error.code >= 500,
                code=error.code,
            ) from None
        except (aiosmtplib.SMTPException, OSError) as error:
            raise DeliveryError(
                f"smarthost unreachable: {type(error).__name__}", permanent=False
            ) from None


def _without_addresses(text: str) -> str:
    return re.sub(r"<?[^\s<>@]+@[^\s<>@]+>?", "[address]", text)[:200]
