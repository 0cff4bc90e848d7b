"""Running the dashboard for tests: the real relay, the real web process, a real browser.

`start_dashboard` starts `serve` (SMTP intake and delivery) and the dashboard beside it,
then returns the dashboard's base URL. Until `serve` runs the dashboard itself, the
dashboard is `python -m relay.web`, which writes its address to `run/web.json`; once it
does, flip `SERVE_RUNS_DASHBOARD` and the address is read from `serve.json` instead.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from tests.conftest import Relay, read_maildir, wait_for

SERVE_RUNS_DASHBOARD = False
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-gpu",
    "--disable-quic",
    "--disable-sync",
]
LINK = re.compile(r"https?://\S+/signin/[A-Za-z0-9_\-]+")


@dataclass
class Dashboard:
    relay: Relay
    url: str
    process: subprocess.Popen[bytes] | None = None
    seen_links: set[str] = field(default_factory=set)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(15)

    def sign_in_link(self, staff_email: str) -> str:
        """The newest sign-in link emailed to this address (delivered into the Maildir)."""

        def fresh() -> str | None:
            for message in read_maildir(self.relay.maildir):
                if staff_email in str(message["To"]):
                    found = LINK.findall(_text(message))
                    new = [link for link in found if link not in self.seen_links]
                    if new:
                        return new[-1]
            return None

        link: str = wait_for(fresh, 15, f"a sign-in link for {staff_email}")
        self.seen_links.add(link)
        return link


def _text(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    return str(body.get_content()) if body is not None else ""


def _web_process(relay: Relay) -> subprocess.Popen[bytes]:
    log = open(relay.root / "web.log", "ab")  # noqa: SIM115 -- closed with the process
    return subprocess.Popen(
        [sys.executable, "-m", "relay.web", "--config", str(relay.config_path)]
        + ["--listen", "127.0.0.1:0"],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=relay.root,
    )


def start_dashboard(relay: Relay) -> Dashboard:
    if relay.process is None:
        relay.start()
    if SERVE_RUNS_DASHBOARD:
        info = json.loads((relay.data_dir / "run" / "serve.json").read_text())
        return Dashboard(relay, f"http://{info['web']}")
    process = _web_process(relay)
    ready = relay.data_dir / "run" / "web.json"

    def listening() -> dict[str, Any] | None:
        if process.poll() is not None:
            raise AssertionError((relay.root / "web.log").read_text())
        info: dict[str, Any] = json.loads(ready.read_text()) if ready.exists() else {}
        return info if info.get("pid") == process.pid else None

    info = wait_for(listening, 20, "the dashboard to listen")
    return Dashboard(relay, f"http://{info['web']}", process)


def stop_all(dashboards: list[Dashboard]) -> Iterator[None]:
    yield
    for dashboard in dashboards:
        dashboard.stop()


def output_folder() -> Path:
    """Where a person looks at screenshots after a run."""
    folder = Path(__file__).resolve().parents[2] / "test-output"
    folder.mkdir(exist_ok=True)
    return folder
