"""Maildir transport: deliver into a local Maildir as a local delivery agent would.

Each message is written to `tmp/`, fsynced, then linked into `new/`, and the folder fsynced.
`Return-Path` and `Delivered-To` are added at the top, as an LDA does. The file name carries
the outbox item id, so delivering the same item again after a crash finds it already there
instead of writing a second copy.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from pathlib import Path

from relay.store.files import fsync_dir


class MaildirTransport:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _prepare(self) -> None:
        for sub in ("tmp", "new", "cur"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    def _already(self, item_id: str, index: int) -> bool:
        marker = f".{item_id}-{index}."
        return any(marker in name for sub in ("new", "cur") for name in os.listdir(self.root / sub))

    def deliver(
        self, envelope_from: str, recipients: list[str], message: bytes, item_id: str
    ) -> None:
        self._prepare()
        body = message.replace(b"\r\n", b"\n")
        for index, recipient in enumerate(recipients):
            if self._already(item_id, index):
                continue
            name = f"{int(time.time())}.{item_id}-{index}.{socket.gethostname()}"
            head = f"Return-Path: <{envelope_from}>\nDelivered-To: {recipient}\n".encode()
            temp = self.root / "tmp" / name
            with open(temp, "wb") as handle:
                handle.write(head + body)
                handle.flush()
                os.fsync(handle.fileno())
            os.link(temp, self.root / "new" / name)
            temp.unlink()
            fsync_dir(self.root / "new")

    async def close(self) -> None:
        """Nothing held open between deliveries."""

    async def send(
        self, envelope_from: str, recipients: list[str], message: bytes, item_id: str
    ) -> None:
        await asyncio.to_thread(self.deliver, envelope_from, recipients, message, item_id)
