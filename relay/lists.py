"""The relay's own addresses for people rather than letters.

- `newsletter@`: a staff member's news, kept for the partner libraries' next digest.
- `staff@`: a small discussion list; a message from a listed staff member goes to every staff
  member of the partner libraries (and the writer's colleagues), with `List-*` headers. The
  sender's address stays visible (staff write as themselves), but `From` is the list's, so
  receiving servers' DMARC checks pass; replies go back to the list.
- `unsubscribe+<token>@`: the mailto half of a prompt's List-Unsubscribe; pauses the monthly
  topic emails of one participant and nothing else.

Both lists accept mail only from listed staff whose message's verdict vouches for them
(relay/authentication.py, the `[authentication]` policy). Automatic mail
and mail that already passed through the list are dropped, so two lists or an autoresponder
cannot loop through the relay.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid

from relay import notices, participants
from relay.authresults import Verdict
from relay.config import Library, Staff
from relay.context import Context
from relay.outbox import ListPost, door
from relay.route import is_automatic
from relay.schedule import digests, prompts
from relay.scrub import parse, scrub_letter

log = logging.getLogger("relay")

LOOP_HEADER = "X-Penpal-Relay-List"


def _author(ctx: Context, message: EmailMessage) -> tuple[Library, Staff] | None:
    try:
        addresses = list(message["From"].addresses) if message["From"] else []
    except (AttributeError, ValueError, IndexError):
        return None
    if len(addresses) != 1:
        return None
    hits = ctx.config.staff_libraries(str(addresses[0].addr_spec))
    return hits[0] if hits else None


def _accepted(
    ctx: Context, message: EmailMessage, envelope_from: str, list_name: str, verdict: Verdict
) -> tuple[Library, Staff] | None:
    domain = ctx.config.relay.domain
    if is_automatic(message, envelope_from) or message.get(LOOP_HEADER) == domain:
        ctx.store.audit(f"{list_name}-ignored", reason="automatic or looped")
        return None
    author = _author(ctx, message)
    if author is None or (list_name == "newsletter" and not author[1].may_post_news):
        ctx.store.audit(f"{list_name}-refused", reason="not-staff")
        log.info("%s refused reason=not-staff", list_name)
        return None
    if ctx.config.authentication.required and not verdict.vouches_for(author[1].email):
        ctx.store.audit(f"{list_name}-refused", reason="unauthenticated", by=author[1].email)
        log.info("%s refused reason=unauthenticated", list_name)
        notices.tell_staff(
            ctx, author[1], "reply_refused", in_reply_to=None, reason="unauthenticated"
        )
        return None
    return author


def handle_newsletter(
    ctx: Context, item_id: str, raw: bytes, envelope_from: str, verdict: Verdict
) -> None:
    message = parse(raw)
    author = _accepted(ctx, message, envelope_from, "newsletter", verdict)
    if author is not None:
        library, member = author
        digests.add_post(ctx, item_id, library, member, str(message.get("Subject", "") or ""))


def handle_staff_list(
    ctx: Context, item_id: str, raw: bytes, envelope_from: str, verdict: Verdict
) -> None:
    message = parse(raw)
    author = _accepted(ctx, message, envelope_from, "staff", verdict)
    if author is None:
        return
    library, member = author
    readers = _list_members(ctx, library, member)
    clean = scrub_letter(raw, digests.STAFF_POLICY)
    domain = ctx.config.relay.domain
    subject = clean.subject or "(no subject)"
    if not subject.startswith("[Staff]"):
        subject = f"[Staff] {subject}"
    for index, reader in enumerate(readers):
        message = EmailMessage(policy=SMTP)
        message["From"] = Address(
            f"{member.name} ({library.name}) via {ctx.config.relay.program_name}",
            addr_spec=f"staff@{domain}",
        )
        message["To"] = Address(reader.name, addr_spec=reader.email)
        message["Reply-To"] = Address(ctx.config.relay.program_name, addr_spec=f"staff@{domain}")
        message["Subject"] = subject
        message["Date"] = format_datetime(datetime.now(UTC))
        message["Message-ID"] = make_msgid(domain=domain)
        message["List-Id"] = f"{ctx.config.relay.program_name} staff <staff.{domain}>"
        message["List-Post"] = f"<mailto:staff@{domain}>"
        message["Precedence"] = "list"
        message[LOOP_HEADER] = domain
        message.set_content(
            f"{clean.text or ''}\n\n-- {member.name}, {library.name} <{member.email}>\n"
        )
        if clean.html:
            message.add_alternative(clean.html, subtype="html")
        door.queue(
            ctx,
            f"staff-{item_id}-{index}",
            message.as_bytes(),
            ListPost(),
            to=reader.email,
            what="a staff message",
        )
    ctx.store.audit("staff-list", by=member.email, readers=len(readers))
    log.info("staff list message from library=%s readers=%d", library.id, len(readers))


def _list_members(ctx: Context, library: Library, author: Staff) -> list[Staff]:
    libraries = {library.id, *ctx.config.partners_of(library.id)}
    members: dict[str, Staff] = {}
    for library_id in sorted(libraries):
        found = ctx.config.library(library_id)
        for member in found.staff if found else ():
            if member.email != author.email:
                members.setdefault(member.email, member)
    return list(members.values())


def handle_unsubscribe(ctx: Context, local: str) -> None:
    participant_id = prompts.participant_of_token(ctx, local.removeprefix("unsubscribe+"))
    if participant_id is not None:
        participants.pause_prompts(ctx, participant_id, via="email")
