"""Monthly prompts at each library's morning, exactly once; newsletter digests; staff list."""

from __future__ import annotations

import json
import smtplib
import subprocess
import sys
import urllib.request
from collections import Counter
from collections.abc import Callable
from email.message import EmailMessage
from email.policy import SMTP

import pytest

from relay import replies
from relay.faults import ENV_VAR as CRASH_AT
from tests.conftest import (
    JANUARY,
    MODERATOR_A,
    MODERATOR_A2,
    MODERATOR_B,
    Relay,
    enroll_pals,
    wait_for,
)

TRUSTED = "mx.test.example.org"
WELLINGTON = """
[[libraries]]
id = "wellington"
name = "Wellington City Libraries"
country = "NZ"
language = "en"
timezone = "Pacific/Auckland"
staff = [{ email = "mere.smith@wcl.example.org", name = "Mere", roles = ["moderator"] }]

[[partnerships]]
libraries = ["riverside", "wellington"]
"""
FEBRUARY = """
[[prompts.topics]]
month = 2
subject = { en = "February: where you live", es = "Febrero: donde vives" }
body = { en = "Hello {{ name }}!", es = "¡Hola {{ name }}!" }
"""


def prompts_to(relay: Relay, address: str) -> list[EmailMessage]:
    return [m for m in relay.delivered(address) if m["Message-ID"].startswith("<prompt-")]


def test_prompts_arrive_at_each_librarys_own_morning(relay_factory: Callable[..., Relay]) -> None:
    relay = relay_factory(extra_sections=WELLINGTON + JANUARY)
    maya = relay.enroll("riverside", "Maya", "maya.smith@family-mail.example.net")
    aroha = relay.enroll("wellington", "Aroha", "aroha@whanau.example.nz")
    relay.pair(maya, aroha)
    relay.start()
    # 09:00 on 1 January in Wellington is 15:00 on 31 December in New York.
    relay.cli("schedule", "run", "--now", "2027-01-01T08:59+13:00")
    relay.cli("schedule", "run", "--now", "2027-01-01T09:00+13:00")
    (aroha_prompt,) = wait_for(lambda: prompts_to(relay, aroha.email), what="Aroha's prompt")
    assert aroha_prompt["Subject"] == "January: your school"
    assert prompts_to(relay, maya.email) == []
    relay.cli("schedule", "run", "--now", "2027-01-01T08:59-05:00")  # New York, not yet
    relay.cli("schedule", "run", "--now", "2027-01-01T09:00-05:00")
    (maya_prompt,) = wait_for(lambda: prompts_to(relay, maya.email), what="Maya's prompt")
    relay.cli("schedule", "run", "--now", "2027-01-02T10:00-05:00")  # later runs: nothing new
    relay.stop()
    assert len(prompts_to(relay, aroha.email)) == 1 and len(prompts_to(relay, maya.email)) == 1

    text = maya_prompt.get_body(("plain",)).get_content()
    assert "Hello Maya! Tell Aroha about school." in text
    assert aroha.masked in text and aroha.email not in maya_prompt.as_string()
    assert maya_prompt["Auto-Submitted"] == "auto-generated"
    assert maya_prompt["List-Id"].endswith(f"<prompts.{relay.context().config.relay.domain}>")
    assert "mailto:unsubscribe+" in maya_prompt["List-Unsubscribe"]
    assert "/unsubscribe/" in maya_prompt["List-Unsubscribe"]
    assert maya_prompt["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert maya_prompt["From"].addresses[0].addr_spec.startswith("program@")


def test_crash_in_the_middle_of_a_send_then_the_rest_and_nothing_twice(
    relay_factory: Callable[..., Relay],
) -> None:
    relay = relay_factory(extra_sections=JANUARY)
    pals = enroll_pals(relay)
    more = [relay.enroll("valparaiso", f"Kid{n}", f"kid{n}@correo.example.net") for n in range(4)]
    for kid in more:
        relay.pair(pals.maya, kid)
    relay.pair(pals.leo, more[0])
    lonely = relay.enroll("riverside", "Noah", "noah@family-mail.example.net")  # no pal yet
    relay.start()
    crashed = subprocess.run(
        [
            sys.executable,
            "-m",
            "relay",
            "--config",
            str(relay.config_path),
            "prompts",
            "send",
            "--month",
            "2027-01",
        ],
        env={**__import__("os").environ, CRASH_AT: "prompts-after-first-enqueue"},
        capture_output=True,
        timeout=60,
    )
    assert crashed.returncode == -9  # killed after the first prompt entered the outbox
    result = relay.cli("prompts", "send", "--month", "2027-01")
    assert "queued the 2027-01 prompt" in result.stdout
    everyone = [pals.maya, pals.tomas, pals.leo, *more]
    wait_for(lambda: all(prompts_to(relay, p.email) for p in everyone), what="every prompt")
    relay.cli("prompts", "send", "--month", "2027-01")  # once more: nobody gets it twice
    relay.stop()
    relay.start()
    relay.cli("schedule", "run", "--now", "2027-01-05T12:00+00:00")
    relay.stop()
    counts = Counter(
        m["To"].addresses[0].addr_spec
        for m in relay.delivered()
        if m["Message-ID"].startswith("<prompt-")
    )
    assert counts == {p.email: 1 for p in everyone}  # and nothing for Noah, who has no pal
    assert lonely.email not in counts
    spanish = prompts_to(relay, pals.tomas.email)[0]
    assert spanish["Subject"] == "Enero: tu escuela"


def test_one_click_unsubscribe_pauses_prompts_for_one_participant_only(
    relay_factory: Callable[..., Relay],
) -> None:
    relay = relay_factory(extra_sections=JANUARY + FEBRUARY)
    pals = enroll_pals(relay)
    relay.start()
    relay.cli("prompts", "send", "--month", "2027-01")
    prompt = wait_for(lambda: prompts_to(relay, pals.maya.email))[0]
    link = prompt["List-Unsubscribe"].split("<")[2].rstrip(">")
    info = json.loads((relay.data_dir / "run" / "serve.json").read_text())
    link = link.replace(link.split("/unsubscribe/")[0], f"http://{info['web']}")
    request = urllib.request.Request(  # noqa: S310 -- http on loopback
        link, data=b"List-Unsubscribe=One-Click", method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 -- loopback
        assert answer.status == 200
    relay.cli("prompts", "send", "--month", "2027-02")
    wait_for(lambda: len(prompts_to(relay, pals.tomas.email)) == 2, what="Tomás's February")
    relay.stop()
    assert [m["Subject"] for m in prompts_to(relay, pals.maya.email)] == ["January: your school"]
    assert [m["Subject"] for m in prompts_to(relay, pals.tomas.email)] == [
        "Enero: tu escuela",
        "Febrero: donde vives",
    ]  # everyone else still gets them
    ctx = relay.context()
    maya = ctx.store.participant(pals.maya.id)
    assert maya is not None and maya.prompts_paused and maya.status == "active"
    assert any(e["event"] == "prompts-paused" for e in ctx.store.audit_log())


def test_prompts_never_name_a_paused_or_departed_pal(relay_factory: Callable[..., Relay]) -> None:
    """Maya's only pal is paused: no prompt for her until he is back. Leo has two pals, one
    of whom has left: his prompt names only the other."""
    relay = relay_factory(extra_sections=JANUARY)
    pals = enroll_pals(relay)
    sofia = relay.enroll("valparaiso", "Sofía", "sofia@correo.example.net")
    nina = relay.enroll("valparaiso", "Nina", "nina@correo.example.net")
    relay.pair(pals.leo, sofia)
    relay.pair(pals.leo, nina)
    relay.cli("participants", "pause", pals.tomas.id)
    relay.cli("participants", "leave", sofia.id)
    relay.start()
    relay.cli("prompts", "send", "--month", "2027-01")
    (leos,) = wait_for(lambda: prompts_to(relay, pals.leo.email), what="Leo's prompt")
    text = leos.get_body(("plain",)).get_content()
    assert "Tell Nina about school." in text and nina.masked in text
    assert "Sofía" not in text and sofia.masked not in text
    assert prompts_to(relay, pals.maya.email) == []
    preview = relay.cli("prompts", "preview", "--month", "2027-01", "--participant", pals.maya.id)
    assert preview.stdout == f"=== {pals.maya.id} Maya: no active pal, so no prompt yet\n"
    said = (relay.data_dir / "relay.log").read_text()  # the command's own lines
    assert f"prompt not sent month=2027-01 participant={pals.maya.id} no-active-pal" in said

    relay.cli("participants", "resume", pals.tomas.id)
    relay.cli("prompts", "send", "--month", "2027-01")  # the same month, later
    (mayas,) = wait_for(lambda: prompts_to(relay, pals.maya.email), what="Maya's prompt")
    assert "Tell Tomás about school." in mayas.get_body(("plain",)).get_content()
    relay.stop()
    assert len(prompts_to(relay, pals.leo.email)) == 1  # nothing twice


def test_unsubscribe_by_email_pauses_prompts(relay_factory: Callable[..., Relay]) -> None:
    relay = relay_factory(extra_sections=JANUARY)
    pals = enroll_pals(relay)
    relay.start()
    relay.cli("prompts", "send", "--month", "2027-01")
    prompt = wait_for(lambda: prompts_to(relay, pals.tomas.email))[0]
    mailto = prompt["List-Unsubscribe"].split("<mailto:")[1].split(">")[0]
    relay.send(pals.tomas.email, [mailto], b"Subject: unsubscribe\r\n\r\nstop\r\n")
    wait_for(lambda: (p := relay.context().store.participant(pals.tomas.id)) and p.prompts_paused)


def _post(
    relay: Relay,
    sender: str,
    subject: str,
    *,
    authenticated: bool = True,
    attachment: bytes | None = None,
) -> None:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = f"newsletter@{relay.context().config.relay.domain}"
    message["Subject"] = subject
    if authenticated:
        message["Authentication-Results"] = (
            f"{TRUSTED}; dmarc=pass header.from={sender.split('@')[1]}"
        )
    message.set_content(f"News: {subject}. <b>not html here</b>")
    message.add_alternative(f"<p>News: {subject}<script>alert(1)</script></p>", subtype="html")
    if attachment is not None:
        message.add_attachment(
            attachment, maintype="application", subtype="pdf", filename="newsletter.pdf"
        )
    relay.send(sender, [message["To"]], message.as_bytes(policy=SMTP))


def test_newsletter_digests_in_mime_and_rfc1153_with_volume_and_issue(
    relay_factory: Callable[..., Relay],
) -> None:
    relay = relay_factory()
    text = relay.config_path.read_text().replace(
        'name = "Sam", roles = ["moderator"] }',
        'name = "Sam", roles = ["moderator"], digest = "text" }',
    )
    relay.config_path.write_text(text)
    relay.start()
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        relay.send(
            "stranger@elsewhere.example.net",
            [f"newsletter@{relay.context().config.relay.domain}"],
            b"Subject: hi\r\n\r\nx",
        )
    ((code, reply),) = refused.value.recipients.values()
    assert f"{code} {reply.decode()}" == replies.NOT_STAFF
    _post(relay, MODERATOR_B, "Book fair in March", attachment=b"%PDF-1.4 fake newsletter")
    _post(relay, MODERATOR_B, "Summer reading club")
    _post(relay, MODERATOR_B, "Forged?", authenticated=False)
    wait_for(
        lambda: (
            len(
                [
                    e
                    for e in relay.context().store.audit_log()
                    if e["event"].startswith("newsletter-")
                ]
            )
            == 3
        ),
        what="three posts seen",
    )
    result = relay.cli("digest", "send")
    assert "riverside+valparaiso/riverside: sent a digest of 2 post(s)" in result.stdout

    (mime,) = wait_for(lambda: relay.delivered(MODERATOR_A), what="Ana's MIME digest")
    assert mime["Subject"] == "Staff news Digest, Vol 1, Issue 1"
    contents, digest = mime.iter_parts()
    assert "Book fair in March" in contents.get_content()
    assert digest.get_content_type() == "multipart/digest"
    posts = [part.get_content() for part in digest.iter_parts()]
    assert [p["Subject"] for p in posts] == ["Book fair in March", "Summer reading club"]
    assert "Carmen" in str(posts[0]["From"])
    pdf = [a for a in posts[0].iter_attachments()]
    assert pdf and pdf[0].get_content() == b"%PDF-1.4 fake newsletter"
    assert "<script>" not in posts[0].as_string()

    (plain,) = wait_for(lambda: relay.delivered(MODERATOR_A2), what="Sam's RFC 1153 digest")
    body = plain.get_content()
    assert body.splitlines()[0].startswith("Staff news Digest")
    assert body.splitlines()[0].endswith("Volume 1 : Issue 1")
    assert "\n" + "-" * 70 + "\n" in body and "\n" + "-" * 30 + "\n" in body
    trailer = "End of Staff news Digest V1 #1"
    assert body.rstrip().endswith(trailer + "\n" + "*" * len(trailer))
    assert body.index("Book fair in March") < body.index("Summer reading club")
    # Carmen's own library gets no digest of its own news; she was told about the forged one.
    assert not [m for m in relay.delivered(MODERATOR_B) if "Digest" in m["Subject"]]
    assert [m for m in relay.delivered(MODERATOR_B) if "no se usó" in m["Subject"]]

    assert "no new posts" in relay.cli("digest", "send").stdout  # an empty period: nothing
    _post(relay, MODERATOR_B, "Autumn stories")
    wait_for(
        lambda: (
            len([e for e in relay.context().store.audit_log() if e["event"] == "newsletter-post"])
            == 3
        )
    )
    relay.cli("digest", "send")
    second = wait_for(
        lambda: [m for m in relay.delivered(MODERATOR_A) if "Issue 2" in m["Subject"]]
    )
    assert second[0]["Subject"] == "Staff news Digest, Vol 1, Issue 2"
    archive = relay.data_dir / "newsletter" / "archive" / "riverside+valparaiso" / "riverside"
    assert sorted(p.name for p in archive.iterdir()) == [
        "v1-001.eml",
        "v1-001.txt",
        "v1-002.eml",
        "v1-002.txt",
    ]


def test_staff_list_reaches_partner_staff_with_list_headers(relay: Relay) -> None:
    relay.start()
    domain = relay.context().config.relay.domain
    message = EmailMessage()
    message["From"] = MODERATOR_A
    message["To"] = f"staff@{domain}"
    message["Subject"] = "Planning the spring exchange"
    message["Authentication-Results"] = (
        f"{TRUSTED}; dkim=pass header.d=riverside-library.example.org"
    )
    message.set_content("Shall we pick the March topic together?")
    relay.send(MODERATOR_A, [f"staff@{domain}"], message.as_bytes(policy=SMTP))
    (to_carmen,) = wait_for(lambda: relay.delivered(MODERATOR_B), what="the list message")
    wait_for(lambda: relay.delivered(MODERATOR_A2), what="Sam's copy")
    assert relay.delivered(MODERATOR_A) == []  # not back to the writer
    assert to_carmen["Subject"] == "[Staff] Planning the spring exchange"
    assert to_carmen["List-Id"].endswith(f"<staff.{domain}>")
    assert to_carmen["List-Post"] == f"<mailto:staff@{domain}>"
    assert to_carmen["From"].addresses[0].addr_spec == f"staff@{domain}"
    assert "Ana" in str(to_carmen["From"])
    # The list's own message coming back (a loop, say through a forwarding rule) is dropped.
    relay.send(MODERATOR_B, [f"staff@{domain}"], to_carmen.as_bytes(policy=SMTP))
    wait_for(lambda: any(e["event"] == "staff-ignored" for e in relay.context().store.audit_log()))
    assert len(relay.delivered(MODERATOR_A)) == 0
