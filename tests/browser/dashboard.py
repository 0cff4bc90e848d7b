"""Running the dashboard for tests: the real relay, the real web process, a real browser.

`start_dashboard` starts `serve` (SMTP intake and delivery) and the dashboard beside it,
then returns the dashboard's base URL. Until `serve` runs the dashboard itself, the
dashboard is `python -m relay.web`, which writes its address to `run/web.json`; once it
does, flip `SERVE_RUNS_DASHBOARD` and the address is read from `serve.json` instead.
"""

from __future__ import annotations

import http.cookiejar
import json
import re
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from tests.conftest import Relay, read_maildir, wait_for

SERVE_RUNS_DASHBOARD = True
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
    command = [sys.executable, "-m", "relay.web", "--config", str(relay.config_path)]
    with open(relay.root / "web.log", "ab") as log:  # the child keeps its own copy
        return subprocess.Popen(
            [*command, "--listen", "127.0.0.1:0"],
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


def output_folder() -> Path:
    """Where a person looks at screenshots after a run."""
    folder = Path(__file__).resolve().parents[2] / "test-output"
    folder.mkdir(exist_ok=True)
    return folder


# --- a client without a browser, for what a browser would not send ---------------------------


class _KeepRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any) -> None:
        return None  # a 303 is an answer to look at, not to follow


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    text: str


def _lower(headers: Any) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in headers.items()}


class Visitor:
    """Cookies and forms over plain HTTP: signs in through the emailed link like a person."""

    def __init__(self, dashboard: Dashboard) -> None:
        self.dashboard = dashboard
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.cookies), _KeepRedirects()
        )

    def request(self, path: str, form: dict[str, str] | None = None) -> Reply:
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        url = path if path.startswith("http") else self.dashboard.url + path
        try:
            request = urllib.request.Request(url, data=data)  # noqa: S310 -- http://127.0.0.1 only
            with self.opener.open(request, timeout=15) as answer:
                return Reply(answer.status, _lower(answer.headers), answer.read().decode())
        except urllib.error.HTTPError as error:
            return Reply(error.code, _lower(error.headers), error.read().decode())

    def csrf(self, path: str) -> str:
        found = re.search(r'name="csrf" value="([^"]+)"', self.request(path).text)
        assert found, f"no form on {path}"
        return found.group(1)

    def ask_for_link(self, email: str) -> Reply:
        return self.request("/login", {"csrf": self.csrf("/login"), "email": email})

    def sign_in(self, email: str) -> None:
        self.ask_for_link(email)
        link = self.dashboard.sign_in_link(email)
        answer = self.request(link, {"csrf": self.csrf(link)})
        assert answer.status == 303 and answer.headers["location"].endswith("/queue"), answer
