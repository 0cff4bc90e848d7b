"""Matching two classes on the dashboard, end to end: a coordinator on a phone reads the
proposal for 30 and 27 children, drops a pair, pairs a child by hand, checks the changes and
accepts; the pals are in the store and every child (and guardian) gets a welcome email in
their language with their pal's masked address, never a real address."""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage

from playwright.sync_api import Page, expect

from relay import consent, matching
from tests.browser.conftest import sign_in
from tests.browser.dashboard import Visitor, start_dashboard
from tests.conftest import DOMAIN, MODERATOR_A, MODERATOR_A2, Relay, wait_for
from tests.support.classes import enrol_two_classes

WELCOME_SUBJECTS = {
    "en": "Meet your pen pal ",
    "es": "Te presentamos a tu amigo por correspondencia: ",
}


def _text(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def test_a_coordinator_edits_and_accepts_the_match_of_two_classes(relay: Relay, page: Page) -> None:
    dashboard = start_dashboard(relay)
    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    sign_in(page, dashboard, MODERATOR_A)
    ctx = relay.context()  # the classes are enrolled beside the running relay, as by the CLI
    children = {p.id: p for p in enrol_two_classes(ctx)}
    today = datetime.now(UTC).date()
    (partnership,) = ctx.config.partnerships
    proposal = matching.propose(partnership, children.values(), ctx.config.matching, today)
    assert len(proposal.pairs) == 30 and not proposal.unmatched
    # The pair to drop: a valparaiso child who writes to two keeps their other pal. The
    # riverside child left alone is paired by hand with a child who has one pal so far.
    dropped = next(p for p in proposal.pairs if p.writes_to_two == p.second.id)
    alone = dropped.first
    ages = {
        pid: consent.youngest_age(p.birth_year, p.age_band, today) for pid, p in children.items()
    }
    counts = {p.second.id: 0 for p in proposal.pairs}
    for pair in proposal.pairs:
        counts[pair.second.id] += 1
    chosen = next(
        pid
        for pid, count in sorted(counts.items(), key=lambda item: children[item[0]].number)
        if count == 1 and abs((ages[pid] or 0) - (ages[alone.id] or 0)) <= 2
    )

    page.click("nav a[href='/matching']")
    expect(page.locator("#matching-summary")).to_contain_text("30 pairs proposed, 0 without a pal")
    cards = page.locator("#pairs li.pair")
    expect(cards).to_have_count(30)
    first = proposal.pairs[0]
    card = page.locator(f"li[data-pair='{first.first.id}+{first.second.id}']")
    expect(card.locator(".why")).to_have_text(matching.explain(first))
    expect(card.locator(".pals")).to_contain_text(f"{first.first.name} {first.first.id}")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    html = page.content()
    assert not [c.email for c in children.values() if c.email in html]  # both libraries see it

    page.locator(f"li[data-pair='{alone.id}+{dropped.second.id}'] input[type=checkbox]").uncheck()
    page.select_option("select[name=add-first]", alone.id)
    page.select_option("select[name=add-second]", chosen)
    page.click("#review")
    expect(page.locator("#reviewed")).to_be_visible()
    expect(page.locator("#matching-summary")).to_contain_text("30 pairs proposed, 0 without a pal")
    expect(page.locator(f"li[data-pair='{alone.id}+{dropped.second.id}']")).to_have_count(0)
    by_hand = page.locator(f"li[data-pair='{alone.id}+{chosen}'] .why")
    expect(by_hand).to_contain_text(f"{children[chosen].name} writes to two")
    # The server checks what the form says, whatever the page offered.
    csrf = page.locator("#proposal input[name=csrf]").get_attribute("value") or ""
    riverside = [p.id for p in children.values() if p.library == "riverside"]
    forged = {"partnership": partnership.id, "rows": "1", "keep-0": "yes", "action": "accept"}
    forged |= {"first-0": riverside[0], "second-0": riverside[1]}
    answer = page.request.post(f"{dashboard.url}/matching", form=forged | {"csrf": csrf})
    assert answer.ok and "not one from each library of the partnership" in answer.text()
    assert page.request.post(f"{dashboard.url}/matching", form=forged).status == 403
    # A moderator who is no coordinator sees the proposal but may not accept it.
    sam = Visitor(dashboard)
    sam.sign_in(MODERATOR_A2)
    assert "Only coordinators accept a proposal." in sam.request("/matching").text
    kept = {"partnership": partnership.id, "rows": "1", "keep-0": "yes", "action": "accept"}
    kept |= {"first-0": first.first.id, "second-0": first.second.id}
    assert sam.request("/matching", kept | {"csrf": sam.csrf("/matching")}).status == 403
    assert not any(p.pals for p in relay.context().store.participants())
    page.click("#accept")
    expect(page.locator("#made")).to_have_text("30 pairs were made.")
    expect(page.locator("#skipped")).to_have_count(0)

    store = relay.context().store
    pals = {p.id: p.pals for p in store.participants()}
    assert pals[alone.id] == (chosen,) and len(pals[chosen]) == 2
    assert len(pals[dropped.second.id]) == 1 and alone.id not in pals[dropped.second.id]
    assert all(pals[pid] for pid in children)
    paired = [e for e in store.audit_log() if e["event"] == "paired"]
    assert len(paired) == 30 and {(e["via"], e["by"]) for e in paired} == {
        ("dashboard", MODERATOR_A)
    }

    # 30 pairs: 60 welcomes to the 57 children (three write to two) and 60 guardians' copies.
    def welcomes() -> list[EmailMessage] | None:
        found = [
            m
            for m in relay.delivered()
            if str(m["Subject"]).startswith(tuple(WELCOME_SUBJECTS.values()))
        ]
        return found if len(found) >= 120 else None

    sent = wait_for(welcomes, 30, "120 welcome emails")
    assert len(sent) == 120
    by_child = {c.email: c for c in children.values()}
    by_guardian = {c.guardian: c for c in children.values()}
    to_children = [m for m in sent if m["Delivered-To"] in by_child]
    assert len(to_children) == 60 and len({m["Delivered-To"] for m in to_children}) == 57
    assert sorted(m["Delivered-To"] for m in sent if m["Delivered-To"] in by_guardian) == sorted(
        by_child[m["Delivered-To"]].guardian for m in to_children
    )
    real = [c.email for c in children.values()] + [c.guardian for c in children.values()]
    for message in sent:
        reader = by_child.get(message["Delivered-To"]) or by_guardian[message["Delivered-To"]]
        subject = str(message["Subject"])
        assert subject.startswith(WELCOME_SUBJECTS[reader.language])
        assert message["From"].addresses[0].addr_spec == f"program@{DOMAIN}"
        text = _text(message)
        their_pals = [children[pid] for pid in pals[reader.id]]
        (pal,) = [p for p in their_pals if subject.endswith(p.name)]
        assert pal.masked in text
        whole = message.as_string()
        assert [a for a in real if a in whole] == [message["Delivered-To"]]
    welcomed = [e for e in store.audit_log() if e["event"] == "welcomed"]
    assert len(welcomed) == 60 and {e["via"] for e in welcomed} == {"dashboard"}
