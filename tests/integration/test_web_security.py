"""The dashboard keeps letters and patrons to their own library, and forms to their own pages.

Plain HTTP against the real dashboard beside a real relay: what a browser would never send
(a form without its CSRF token, a link used twice) is sent on purpose here.
"""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from tests.browser.dashboard import Dashboard, Visitor, start_dashboard
from tests.conftest import MODERATOR_A, MODERATOR_B, Pals, Relay, letter_bytes

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


@pytest.fixture
def dashboard(relay: Relay) -> Dashboard:
    return start_dashboard(relay)


def _held_letter(dashboard: Dashboard, pals: Pals) -> int:
    relay = dashboard.relay
    message = letter_bytes(pals.maya.email, pals.tomas.masked)
    relay.send(pals.maya.email, [pals.tomas.masked], message)
    (held,) = relay.wait_held(1)
    return int(held["id"])


def test_every_answer_carries_the_security_headers(dashboard: Dashboard) -> None:
    visitor = Visitor(dashboard)
    for path in ("/healthz", "/login", "/queue", "/static/dashboard.js", "/nowhere"):
        answer = visitor.request(path)
        for name, value in SECURITY_HEADERS.items():
            assert answer.headers.get(name) == value, (path, name)
        policy = answer.headers["content-security-policy"]
        assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert "unsafe-inline" not in policy
    assert visitor.request("/healthz").status == 200
    assert visitor.request("/queue").headers["location"] == "/login"


def test_a_form_without_its_csrf_token_is_refused(dashboard: Dashboard, pals: Pals) -> None:
    letter_id = _held_letter(dashboard, pals)
    visitor = Visitor(dashboard)
    visitor.sign_in(MODERATOR_A)
    assert visitor.request(f"/letters/{letter_id}/approve", {}).status == 403
    forged = {"csrf": "guessed-token"}
    assert visitor.request(f"/letters/{letter_id}/approve", forged).status == 403
    assert visitor.request("/logout", {}).status == 403
    assert dashboard.relay.queue()[0]["status"] == "held"


def test_staff_of_the_other_library_get_404_for_its_letters_and_patrons(
    dashboard: Dashboard, pals: Pals
) -> None:
    letter_id = _held_letter(dashboard, pals)
    carmen = Visitor(dashboard)  # a moderator at valparaiso; the letter was written at riverside
    carmen.sign_in(MODERATOR_B)
    csrf = carmen.csrf("/participants")
    assert carmen.request(f"/letters/{letter_id}").status == 404
    assert carmen.request(f"/letters/{letter_id}/edit").status == 404
    assert carmen.request(f"/letters/{letter_id}/approve", {"csrf": csrf}).status == 404
    reject = {"csrf": csrf, "reason_text": "no"}
    assert carmen.request(f"/letters/{letter_id}/reject", reject).status == 404
    assert carmen.request(f"/participants/{pals.maya.id}").status == 404
    pause = {"csrf": csrf, "status": "paused"}
    assert carmen.request(f"/participants/{pals.maya.id}/status", pause).status == 404
    details = {"csrf": csrf, "interests": "x", "guardian_email": "carmen@example.net"}
    assert carmen.request(f"/participants/{pals.maya.id}/details", details).status == 404
    assert pals.maya.email not in carmen.request(f"/participants/{pals.tomas.id}").text
    assert dashboard.relay.queue()[0]["status"] == "held"
    assert pals.maya.masked not in carmen.request("/queue").text


def test_a_sign_in_link_works_once_and_not_after_it_expires(dashboard: Dashboard) -> None:
    first = Visitor(dashboard)
    first.sign_in(MODERATOR_A)
    used = next(iter(dashboard.seen_links))
    again = Visitor(dashboard)
    assert again.request(used).status == 410
    assert again.request(used, {"csrf": again.csrf("/login")}).status == 410

    again.ask_for_link(MODERATOR_A)
    link = dashboard.sign_in_link(MODERATOR_A)
    store = dashboard.relay.context().store
    secret = link.rsplit("/", 1)[1]
    found = store.sign_in_link(secret)
    assert found is not None
    store.record_sign_in_link(secret, replace(found, expires=time.time() - 1))
    answer = again.request(link)
    assert answer.status == 410 and "expired" in answer.text
    assert again.request("/queue").status == 303


def test_the_sign_in_page_says_the_same_for_unknown_addresses(dashboard: Dashboard) -> None:
    visitor = Visitor(dashboard)
    listed = visitor.ask_for_link(MODERATOR_A)
    unknown = visitor.ask_for_link("someone@elsewhere.example.net")
    assert listed.status == unknown.status == 200
    assert listed.text.replace(MODERATOR_A, "X") == unknown.text.replace(
        "someone@elsewhere.example.net", "X"
    )
    dashboard.sign_in_link(MODERATOR_A)
    mail = [str(m["To"]) for m in dashboard.relay.delivered()]
    assert not any("elsewhere" in to for to in mail)


def test_too_many_sign_in_requests_get_a_friendly_429(dashboard: Dashboard) -> None:
    visitor = Visitor(dashboard)
    answers = [visitor.ask_for_link("nobody@elsewhere.example.net").status for _ in range(6)]
    assert answers == [200] * 5 + [429]
