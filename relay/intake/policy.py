"""The recipient check as a Postfix policy service, so that Postfix refuses at RCPT.

Behind Postfix the relay sees a letter only after Postfix has queued it: a refusal by the
relay then makes Postfix send a bounce to the envelope sender, who may be forged
(backscatter). Postfix asks this service instead while the writer's own server is still
connected (`smtpd_recipient_restrictions = ..., check_policy_service inet:127.0.0.1:10040`),
and the answer is the relay's own RCPT check: the same route lookup, the same reply text
(one for every reason), the same log line and audit entry, and the same slowing down of a
client that keeps guessing addresses, counted per client address as Postfix reports it.

Protocol (Postfix's SMTPD_POLICY_README): a request is `name=value` lines ended by an empty
line; the answer is one `action=...` line and an empty line; Postfix keeps the connection
for further requests. Anything but a recipient on the relay's own domain at the RCPT stage
gets `DUNNO` (no opinion: Postfix's other rules decide), so the service can sit in a
Postfix that serves other domains too. When the relay is down Postfix answers its
`smtpd_policy_service_default_action` (a 4xx): the writer's server tries again later.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from relay import replies
from relay.context import Context
from relay.intake.smtp import Blocking, RefusalLimiter, recipient_route, record_refusal
from relay.route import Refusal

log = logging.getLogger("relay")

NO_OPINION = "DUNNO"
MAX_REQUEST_BYTES = 64 * 1024  # Postfix's requests are a few hundred bytes
MAX_LINE_BYTES = 8 * 1024


class PolicyService:
    """Answers Postfix's access-policy requests with the relay's recipient check."""

    def __init__(self, context: Callable[[], Context], blocking: Blocking) -> None:
        self.context = context  # the current configuration may be reloaded at any time
        self.blocking = blocking
        # Postfix tells the real client's address; no client of Postfix is exempt.
        self.limiter = RefusalLimiter(context, lambda peer: False)

    async def answer(self, request: dict[str, str]) -> str:
        """The action for one request (without `action=`)."""
        if request.get("request") != "smtpd_access_policy":
            return NO_OPINION
        if request.get("protocol_state", "").upper() != "RCPT":
            return NO_OPINION
        ctx = self.context()
        address = request.get("recipient", "")
        if not address.lower().endswith("@" + ctx.config.relay.domain):
            return NO_OPINION
        client = request.get("client_address", "")
        if self.limiter.limited(client):
            return replies.RATE_LIMITED
        try:
            decision = await self.blocking(recipient_route, ctx, request.get("sender", ""), address)
        except Exception:
            log.exception("lookup failed in the policy service")
            return replies.TRY_AGAIN
        if not isinstance(decision, Refusal):
            return NO_OPINION
        await record_refusal(
            ctx, self.blocking, self.limiter, decision, address, client, via="postfix"
        )
        return decision.reply

    async def serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Requests on one connection until Postfix closes it (or sends garbage)."""
        try:
            while True:
                request = await read_request(reader)
                if request is None:
                    return
                action = await self.answer(request)
                writer.write(f"action={action}\n\n".encode())
                await writer.drain()
        except (ConnectionError, ValueError):  # ValueError: a line over the reader's limit
            return
        finally:
            writer.close()


async def read_request(reader: asyncio.StreamReader) -> dict[str, str] | None:
    """One request, or None at the end of the connection or for something not a request
    (too long, not `name=value`, not UTF-8): the connection is then closed."""
    request: dict[str, str] = {}
    size = 0
    while True:
        line = await reader.readline()
        if not line:
            return None  # closed, perhaps mid-request: nothing to answer
        size += len(line)
        if size > MAX_REQUEST_BYTES or not line.endswith(b"\n"):
            return None
        text = line.rstrip(b"\r\n")
        if not text:
            return request if request else None
        name, equals, value = text.partition(b"=")
        if not equals or not name:
            return None
        try:
            request[name.decode("ascii")] = value.decode("utf-8")
        except UnicodeDecodeError:
            return None


async def listen_policy(service: PolicyService, host: str, port: int) -> asyncio.Server:
    """Listen for Postfix on `host:port` (keep it on loopback: the answers tell who is
    enrolled)."""
    return await asyncio.start_server(
        service.serve_connection, host, port, limit=MAX_LINE_BYTES, reuse_address=True
    )
