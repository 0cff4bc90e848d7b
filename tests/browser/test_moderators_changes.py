"""A moderator takes a picture out, approves with the flagged parts removed, and edits a
letter, seeing it as it will be sent before approving."""

from __future__ import annotations

from email.message import EmailMessage

from playwright.sync_api import Page, expect

from relay import participants
from tests.browser.conftest import sign_in
from tests.browser.dashboard import Dashboard
from tests.conftest import MODERATOR_A, Pals
from tests.support.letters import html_letter
from tests.support.waiting import wait_for


def _html(message: EmailMessage) -> str:
    part = message.get_body(("html",))
    assert part is not None
    return str(part.get_content())


def test_remove_a_picture_redact_and_approve_and_preview_an_edit(
    page: Page, dashboard: Dashboard, pals: Pals
) -> None:
    relay = dashboard.relay
    for subject, text, pictures in (
        ("Cats", "My cats! Call me at (555) 201-3344.", ("orange", "black")),
        ("Dog", "My dog lives at 12 Elm Street.", ("brown",)),
    ):
        markup = "".join(f'<img src="cid:pic-{i}@mail.example.net">' for i in range(len(pictures)))
        raw = html_letter(
            pals.maya.email,
            pals.tomas.masked,
            text,
            f"<p>{text}</p><p>{markup}</p>",
            pictures,
            subject=subject,
        )
        relay.send(pals.maya.email, [pals.tomas.masked], raw)
    relay.wait_held(2)
    sign_in(page, dashboard, MODERATOR_A)

    page.click("#letter-1 .file-actions summary")  # on the queue card, tucked away
    page.click("#letter-1 button.remove-file[data-file^='drawing-1.']")
    expect(page.locator("#done")).to_contain_text("A file was removed from letter 1")
    expect(page.locator("#letter-1 button.remove-file")).to_have_count(1)
    page.click("#letter-1 button.redact")
    expect(page.locator("#done")).to_contain_text("Letter 1 approved with the flagged details")

    page.click("#letter-2 a.edit")
    page.wait_for_url("**/letters/2/edit")
    page.fill("#edited_text", "My dog, look:\n[drawing-1]\n\nWrite soon!")
    page.click("#preview-edited")
    expect(page.locator("#preview-text")).to_contain_text("Write soon!")
    picture = page.frame_locator("#preview-html").locator("img")
    expect(picture).to_have_count(1)
    assert (picture.get_attribute("src") or "").startswith("data:image/png;base64,")
    page.click("#edit-again")
    expect(page.locator("#edited_text")).to_have_value("My dog, look:\n[drawing-1]\n\nWrite soon!")
    page.click("#preview-edited")
    page.click("#approve-edited")
    expect(page.locator("#done")).to_contain_text("Letter 2 approved with your edits")

    def both() -> dict[str, EmailMessage] | None:
        found = {str(m["Subject"]): m for m in relay.delivered(pals.tomas.email)}
        return found if {"Cats", "Dog"} <= set(found) else None

    page.goto(dashboard.url + "/letters/1")
    timeline = page.locator(".timeline")
    expect(timeline).to_contain_text("file removed")
    expect(timeline).to_contain_text("flagged details removed: phone numbers 1")

    # Delivered before the pal is paused below: a letter approved but not yet sent to a pal
    # paused since would be held again.
    letters = wait_for(both, what="both letters delivered")

    # A pal paused since the letter was held: approving says why nothing was sent.
    relay.send(
        pals.maya.email,
        [pals.tomas.masked],
        html_letter(pals.maya.email, pals.tomas.masked, "Hello", "<p>Hello</p>", subject="Third"),
    )
    wait_for(lambda: relay.context().store.queue(), what="the third letter held")
    participants.pause(relay.context(), pals.tomas, by=MODERATOR_A)
    page.goto(dashboard.url + "/queue")
    page.click("#letter-3 button.approve")
    expect(page.locator("h1")).to_have_text("Not done")
    expect(page.locator(".detail")).to_contain_text(
        "not sent: the pal is paused. It stays held: approve it again once Tomás can write"
    )

    cats, dog = letters["Cats"], letters["Dog"]
    assert [p.get_filename() for p in cats.iter_attachments()] == ["drawing-2.png"]
    assert "201-3344" not in cats.as_string() and "cid:drawing-1@" not in _html(cats)
    assert "Elm Street" not in dog.as_string()
    assert "Write soon!" in _html(dog) and 'src="cid:drawing-1@letter.invalid"' in _html(dog)
    assert "Third" not in {str(m["Subject"]) for m in relay.delivered(pals.tomas.email)}
