"""What every command works with: configuration, store, spool, templates, the secret key and
the DKIM signer.

Built once by `serve` (and again, with the same store and spool, on each reload) and once by
each CLI command. Passed in, never imported as a global.
"""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

from relay.config import Config
from relay.dkim_signing import Signer, open_signer
from relay.spool import Spool
from relay.store import Store
from relay.store.files import write_atomic
from relay.wording import Templates

log = logging.getLogger("relay")


@dataclass(frozen=True)
class Context:
    config: Config
    store: Store
    spool: Spool
    templates: Templates
    secret: bytes

    @cached_property
    def dkim(self) -> Signer | None:
        """The DKIM signer (its key made if missing), read when first needed: loading an RSA
        key costs about 50 ms, which a command that sends nothing should not pay. None:
        signing turned off ([dkim] sign = false)."""
        return open_signer(self.config)

    def with_config(self, config: Config) -> Context:
        """The same store and spool with a new configuration; the DKIM key is read again
        when next needed (a key replaced with `dkim keygen --force` is used from the reload
        on; a new selector's key is made if missing)."""
        return replace(self, config=config, templates=Templates(config.relay.templates_dir))


def _secret(data_dir: Path) -> bytes:
    """The key behind Message-IDs and bounce addresses; made once, kept private."""
    path = data_dir / "secret.key"
    if not path.exists():
        write_atomic(path, secrets.token_hex(32).encode())
        os.chmod(path, 0o600)
    return bytes.fromhex(path.read_text().strip())


def open_context(config: Config) -> Context:
    data_dir = config.relay.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(data_dir / "store")  # first: a store of a newer relay is refused untouched
    return Context(
        config=config,
        store=store,
        spool=Spool(data_dir / "spool"),
        templates=Templates(config.relay.templates_dir),
        secret=_secret(data_dir),
    )
