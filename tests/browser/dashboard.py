"""Running the dashboard for tests: the real relay (`serve`, which runs SMTP intake, delivery
and the dashboard in one process) and a real browser. `start_dashboard` starts `serve` and
returns the dashboard's base URL, read from `<data_dir>/run/serve.json`.
"""

from __future__ import annotations

import http.cookiejar
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from playwright.sync_api import Page

from tests.conftest import Relay, Smarthost, read_maildir, wait_for

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


def sign_in_at_smarthost(page: Page, url: str, smarthost: Smarthost, staff_email: str) -> None:
    """Sign in as a librarian does, with a relay that sends its mail to an SMTP sink: ask
    for a link, open the latest one the sink received for `staff_email`, confirm."""
    page.goto(url + "/")
    page.fill("#email", staff_email)
    page.click("button[type=submit]")
    page.wait_for_selector("#link-sent")

    def link() -> str | None:
        for received in smarthost.received:
            if received.to(staff_email):
                body = received.message.get_body(("plain",))
                found = LINK.findall(str(body.get_content()) if body is not None else "")
                if found:
                    return str(found[-1])
        return None

    page.goto(wait_for(link, 15, "a sign-in link"))
    page.click("#confirm-sign-in")
    page.wait_for_url("**/queue")


@dataclass
class Dashboard:
    relay: Relay
    url: str
    seen_links: set[str] = field(default_factory=set)

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


def start_dashboard(relay: Relay) -> Dashboard:
    """The dashboard of the relay's own `serve` process (its address is in serve.json)."""
    if relay.process is None:
        relay.start()
    info = json.loads((relay.data_dir / "run" / "serve.json").read_text())
    return Dashboard(relay, f"http://{info['web']}")


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
