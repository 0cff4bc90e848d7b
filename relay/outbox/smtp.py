"""SMTP transport: hand messages to a smarthost with aiosmtplib.

STARTTLS is required unless `[delivery] starttls = false`; AUTH uses the password file.
A 4xx reply or a network error is temporary (`DeliveryError(permanent=False)`), a 5xx reply
is permanent. Replies are reduced to their code and text: a smarthost's reply may quote the
recipient's address, and the caller logs it.

Connections are kept open and reused (up to `POOL` idle ones), so a month's prompts to many
participants do not cost a TCP, TLS and AUTH handshake each. A connection that saw any error
is closed rather than reused, and one the smarthost closed while idle is replaced.
"""

from __future__ import annotations

import contextlib

import aiosmtplib

from relay.addresses import on_the_wire, without_addresses
from relay.config import DeliverySettings
from relay.errors import DeliveryError, DeliveryTimeout

POOL = 8


class SmtpTransport:
    def __init__(self, settings: DeliverySettings) -> None:
        self.settings = settings
        self._idle: list[aiosmtplib.SMTP] = []

    def _password(self) -> str | None:
        path = self.settings.password_file
        return path.read_text().strip() if path else None

    async def _connect(self) -> aiosmtplib.SMTP:
        s = self.settings
        client = aiosmtplib.SMTP(
            hostname=s.smarthost.host,
            port=s.smarthost.port,
            start_tls=s.starttls,
            use_tls=False,
            timeout=s.timeout_seconds,
        )
        await client.connect()
        if s.username:
            await client.login(s.username, self._password() or "")
        return client

    async def _client(self) -> aiosmtplib.SMTP:
        while self._idle:
            client = self._idle.pop()
            if client.is_connected:
                return client
        return await self._connect()

    async def _release(self, client: aiosmtplib.SMTP, *, healthy: bool) -> None:
        if healthy and len(self._idle) < POOL:
            self._idle.append(client)
            return
        with contextlib.suppress(Exception):
            client.close()

    async def close(self) -> None:
        while self._idle:
            await self._release(self._idle.pop(), healthy=False)

    async def send(
        self, envelope_from: str, recipients: list[str], message: bytes, item_id: str
    ) -> None:
        try:
            await self._send(envelope_from, recipients, message)
        except aiosmtplib.SMTPServerDisconnected:
            # An idle connection the smarthost had closed: once more on a fresh one.
            await self._send(envelope_from, recipients, message, fresh=True)

    async def _send(
        self, envelope_from: str, recipients: list[str], message: bytes, *, fresh: bool = False
    ) -> None:
        client: aiosmtplib.SMTP | None = None
        healthy = False
        try:
            client = await (self._connect() if fresh else self._client())
            await client.sendmail(envelope_from, [on_the_wire(r) for r in recipients], message)
            healthy = True
        except aiosmtplib.SMTPServerDisconnected:
            if not fresh:
                raise
            raise DeliveryError("smarthost closed the connection", permanent=False) from None
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
                f"smarthost answered {error.code} {without_addresses(error.message)[:200]}",
                permanent=error.code >= 500,
                code=error.code,
            ) from None
        except (aiosmtplib.SMTPException, OSError) as error:
            raise DeliveryError(
                f"smarthost unreachable: {type(error).__name__}", permanent=False
            ) from None
        finally:
            if client is not None:
                await self._release(client, healthy=healthy)
