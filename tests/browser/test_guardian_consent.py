"""A guardian's consent, end to end: the request at the guardian's mailbox in the child's
language, letters held until consent, the link's page in Chromium (opening it changes
nothing; its button consents), a reply "sí" from the guardian's own address (and not from
another), consent on paper from the command line and its withdrawal on the participant page.
"""

from __future__ import annotations

import email.policy
import json
import re
import smtplib
import urllib.request
from datetime import UTC, datetime
from email.message import EmailMessage

import pytest
from playwright.sync_api import Page

from relay.consent import NO_CONSENT_NOTES
from relay.participants import Details, enroll, pair
from relay.store.records import Participant
from tests.browser.conftest import sign_in
from tests.browser.dashboard import Dashboard, start_dashboard
from tests.conftest import DOMAIN, FRONT_AUTHSERV_ID, MODERATOR_B, Relay, letter_bytes, wait_for

MAYA = "maya.smith@family-mail.example.net"
SOFIA = "sofia.rojas@correo.example.cl"
SOFIA_MOTHER = "paula.rojas@correo.example.cl"
PEDRO = "pedro.diaz@correo.example.cl"
PEDRO_FATHER = "juan.diaz@correo.example.cl"
LUCAS = "lucas.mena@correo.example.cl"
LUCAS_MOTHER = "rosa.mena@correo.example.cl"
GUARDIANS = (SOFIA_MOTHER, PEDRO_FATHER, LUCAS_MOTHER)
REPLY_TO = re.compile(r"consent\+([0-9a-f]{32})@" + re.escape(DOMAIN))


def _child(relay: Relay, name: str, email: str, guardian: str) -> Participant:
    nine_or_so = datetime.now(UTC).year - 10  # counted cautiously: 9 this year
    return enroll(
        relay.context(),
        "valparaiso",
        name,
        email,
        guardian=guardian,
        details=Details(birth_year=nine_or_so, guardian_name=f"Familia de {name}"),
    )


def _request(relay: Relay, guardian: str) -> EmailMessage:
    (found,) = wait_for(lambda: relay.delivered(guardian), 15, f"the request to {guardian}")
    return found


def _text(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def _reply(sender: str, request: EmailMessage, first_line: str) -> bytes:
    reply = EmailMessage()
    reply["Authentication-Results"] = (
        f"{FRONT_AUTHSERV_ID}; dmarc=pass header.from=correo.example.cl"
    )
    reply["From"] = sender
    reply["To"] = request["Reply-To"]
    reply["Subject"] = f"Re: {request['Subject']}"
    reply["In-Reply-To"] = request["Message-ID"]
    reply.set_content(f"{first_line}\n\n> {_text(request).splitlines()[0]}\n")
    return reply.as_bytes(policy=email.policy.SMTP)


def _consent(relay: Relay, participant: Participant) -> Participant:
    found = relay.context().store.participant(participant.id)
    assert found is not None
    return found


def _audit(relay: Relay, event: str) -> list[dict[str, object]]:
    return [e for e in relay.context().store.audit_log() if e["event"] == event]


@pytest.fixture
def dashboard(relay: Relay) -> Dashboard:
    """Participants enrolled before `serve` starts: their requests wait in the outbox."""
    ctx = relay.context()
    maya = enroll(ctx, "riverside", "Maya", MAYA)
    for name, address, guardian in (
        ("Sofía", SOFIA, SOFIA_MOTHER),
        ("Pedro", PEDRO, PEDRO_FATHER),
        ("Lucas", LUCAS, LUCAS_MOTHER),
    ):
        pair(ctx, maya, _child(relay, name, address, guardian))
    return start_dashboard(relay)


def test_a_guardian_consents_and_only_then_letters_go(
    relay: Relay, dashboard: Dashboard, page: Page
) -> None:
    store = relay.context().store
    sofia, pedro, lucas = (store.by_email(a)[0] for a in (SOFIA, PEDRO, LUCAS))
    maya = store.by_email(MAYA)[0]
    assert (sofia.consent, maya.consent) == ("pending", "")

    # The request reaches the guardian in Spanish, signed, from program@, with a link and
    # a single-use reply address.
    request = _request(relay, SOFIA_MOTHER)
    text = _text(request)
    assert request["Subject"] == "Su consentimiento para que Sofía participe en Test Pen Pals"
    assert request["From"].addresses[0].addr_spec == f"program@{DOMAIN}"
    assert f"d={DOMAIN};" in request["DKIM-Signature"]
    token = REPLY_TO.search(str(request["Reply-To"]))
    assert token is not None
    link = re.search(r"https?://\S+/consent/([0-9a-f]{32})", text)
    assert link is not None and link.group(1) == token.group(1)
    assert "Riverside Public Library" in text and "30 días" in text and '"sí"' in text
    assert "durante 12 meses" in text and "/privacy?lang=es" in text  # what is kept, how long

    # Sofía writes before consent: held with the note, and approving keeps it held.
    relay.send(SOFIA, [maya.masked], letter_bytes(SOFIA, maya.masked, subject="Hola Maya"))
    (held,) = wait_for(store.queue, 15, "Sofía's letter held")
    assert NO_CONSENT_NOTES["writer"] in held.notes
    refused = relay.cli("queue", "approve", str(held.id), "--by", MODERATOR_B, check=False)
    assert refused.returncode == 1 and "no guardian's consent yet" in refused.stderr
    assert [letter.id for letter in store.queue()] == [held.id]
    assert _audit(relay, "kept-on-hold")[-1]["not_sent"] == "writer-no-consent"

    # Opening the link (as a mail scanner would) changes nothing.
    path = f"/consent/{link.group(1)}"
    with urllib.request.urlopen(dashboard.url + path, timeout=10) as opened:  # noqa: S310
        assert opened.status == 200 and "Acepto" in opened.read().decode()
    assert _consent(relay, sofia).consent == "pending"

    # The guardian opens it in a browser and presses the button.
    page.goto(dashboard.url + path)
    assert page.get_attribute("html", "lang") == "es"
    page.click("#consent-yes")
    assert "Sofía ya puede escribir" in page.inner_text("#consent-given")
    assert page.is_visible("#consent-withdraw")
    given = _consent(relay, sofia)
    assert (given.consent, given.consent_method) == ("given", "link")
    (entry,) = _audit(relay, "consent-given")
    assert entry["method"] == "link" and entry["letters"] == [held.id]

    # Now the approval delivers the letter.
    relay.cli("queue", "approve", str(held.id), "--by", MODERATOR_B)

    def letters() -> list[EmailMessage]:  # Maya was also welcomed to Sofía at her consent
        return [m for m in relay.delivered(MAYA) if m["Subject"] == "Hola Maya"]

    (letter,) = wait_for(letters, 15, "Sofía's letter at Maya's")
    assert letter["Subject"] == "Hola Maya"
    told = wait_for(lambda: relay.delivered(MODERATOR_B), 15, "the moderator told")
    assert any(m["Subject"] == "Consentimiento dado para Sofía" for m in told)

    # Pedro's father answers by email; the same answer from another address counts for nothing.
    pedro_request = _request(relay, PEDRO_FATHER)
    reply_to = pedro_request["Reply-To"].addresses[0].addr_spec
    relay.send(SOFIA_MOTHER, [reply_to], _reply(SOFIA_MOTHER, pedro_request, "Sí"))
    wait_for(lambda: _audit(relay, "consent-reply-refused"), 15, "the other address refused")
    assert _audit(relay, "consent-reply-refused")[0]["reason"] == "not-the-guardian"
    assert _consent(relay, pedro).consent == "pending"
    relay.send(PEDRO_FATHER, [reply_to], _reply(PEDRO_FATHER, pedro_request, "Sí, acepto."))
    wait_for(lambda: _consent(relay, pedro).consent == "given", 15, "Pedro's consent")
    assert _consent(relay, pedro).consent_method == "reply"
    with pytest.raises(smtplib.SMTPRecipientsRefused):  # the address was good once
        relay.send(PEDRO_FATHER, [reply_to], _reply(PEDRO_FATHER, pedro_request, "Sí"))

    # Lucas's mother signed on paper; later she withdraws (staff record it on Lucas's page),
    # and Lucas is paused at once.
    relay.cli("participants", "consent", lucas.id, "--paper", "--by", MODERATOR_B)
    on_paper = _consent(relay, lucas)
    assert (on_paper.consent, on_paper.consent_method) == ("given", "paper")
    sign_in(page, dashboard, MODERATOR_B)
    page.goto(f"{dashboard.url}/participants/{lucas.id}")
    assert page.inner_text("#consent").endswith("en papel")
    page.click("#consent-withdraw")
    assert "en pausa" in page.inner_text("#done")
    assert page.inner_text("#consent").startswith("consentimiento retirado")
    assert page.locator("input[name=status][value=active]").count() == 0  # no plain resume
    withdrawn = _consent(relay, lucas)
    assert (withdrawn.consent, withdrawn.status) == ("withdrawn", "paused")
    assert withdrawn.pause_reason == "consent-withdrawn"
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        relay.send(LUCAS, [maya.masked], letter_bytes(LUCAS, maya.masked))

    # The audit log and the log name ids and methods, never a guardian's address.
    events = [e["event"] for e in store.audit_log()]
    assert events.count("consent-requested") == 3
    assert {"consent-given", "consent-withdrawn"} <= set(events)
    kept = json.dumps(store.audit_log()) + relay.log()
    assert not any(address in kept for address in GUARDIANS)
