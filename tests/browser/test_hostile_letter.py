"""A letter written to attack its moderator runs nothing and loads nothing from elsewhere."""

from __future__ import annotations

import email.policy
from email.message import EmailMessage
from urllib.parse import urlsplit

from playwright.sync_api import Dialog, Page, Request, expect

from tests.browser.conftest import sign_in
from tests.browser.dashboard import Dashboard
from tests.conftest import MODERATOR_A, Pals

EVIL = "http://evil.example.net"
HOSTILE_HTML = f"""<html><head>
<meta http-equiv="refresh" content="0;url={EVIL}/refresh">
<link rel="stylesheet" href="{EVIL}/sheet.css">
<style>@import url({EVIL}/import.css); body {{ background: url({EVIL}/body.png) }}</style>
<base href="{EVIL}/">
</head><body>
<p>Hello <b>pal</b>, <a id="trap" href="javascript:alert('href')">click here</a></p>
<script>alert("script")</script>
<img src="x" onerror="alert('onerror')">
<img src="{EVIL}/track.png">
<svg><image href="{EVIL}/svg.png"/><script>alert('svg')</script></svg>
<div style="background-image: url({EVIL}/style.png)" onmouseover="alert('hover')">styled</div>
<iframe src="{EVIL}/frame"></iframe>
<object data="{EVIL}/object"></object>
<form action="{EVIL}/form"><button>send</button></form>
</body></html>"""
HOSTILE_TEXT = "<script>alert('text')</script> <img src=x onerror=alert('text-img')>"


def _hostile_letter(pals: Pals) -> bytes:
    message = EmailMessage()
    message["From"] = pals.maya.email
    message["To"] = pals.tomas.masked
    message["Subject"] = "<script>alert('subject')</script>"
    message.set_content(HOSTILE_TEXT)
    message.add_alternative(HOSTILE_HTML, subtype="html")
    return message.as_bytes(policy=email.policy.SMTP)


def test_a_hostile_letter_runs_no_script_and_loads_nothing_remote(
    page: Page, dashboard: Dashboard, pals: Pals
) -> None:
    dialogs: list[str] = []
    requests: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    def on_request(request: Request) -> None:
        requests.append(request.url)

    page.on("dialog", on_dialog)
    page.on("request", on_request)
    relay = dashboard.relay
    relay.send(pals.maya.email, [pals.tomas.masked], _hostile_letter(pals))
    relay.wait_held(1)
    sign_in(page, dashboard, MODERATOR_A)

    for path in ("/queue", "/letters/1"):
        page.goto(dashboard.url + path)
        frame = page.frame_locator("iframe.html-letter")
        expect(frame.locator("body")).to_contain_text("Hello pal")
        expect(frame.locator("body")).to_contain_text("styled")
        frame.locator("text=click here").click()
        frame.locator("text=styled").hover()
        expect(page.locator(".subject")).to_have_text("<script>alert('subject')</script>")
        expect(page.locator("pre.text")).to_contain_text("<script>alert('text')</script>")
        page.wait_for_load_state("networkidle")

    assert dialogs == []
    foreign = [url for url in requests if urlsplit(url).hostname not in ("127.0.0.1", None)]
    assert foreign == [], foreign
    assert all(not url.startswith("javascript:") for url in requests)
