"""Outgoing messages, built fresh: delivered letters and notices from the program.

Nothing of an incoming header block is copied: a delivered letter has exactly the headers
written here (`From` with the sender's masked address and enrolled display name, `To` with
the pal's real address, a new `Message-ID` on the relay domain, mapped threading headers,
`Date`, `Subject`, `MIME-Version`) and the scrubbed text and HTML bodies with a footer from
the templates, in the reader's language. Pure: no I/O; the caller supplies every value.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.charset import QP, Charset
from email.header import Header
from email.headerregistry import Address
from email.message import EmailMessage, Message
from email.mime.image import MIMEImage
from email.mime.multipart import MIMEMultipart
from email.policy import SMTP, compat32
from email.utils import format_datetime, formataddr, make_msgid
from typing import cast

import nh3

from relay.addresses import on_the_wire
from relay.scrub import ScrubbedLetter
from relay.wording import Templates

# A teammate's copy adds `.team-<participant>` (relay.letters.delivering): their reply threads
# under the letter like the pal's.
_RELAY_ID = re.compile(r"^<letter-(\d+)\.([0-9a-f]{12})(?:\.team-p\d+)?@([^>]+)>$")


@dataclass(frozen=True)
class Party:
    """One side of a letter as the other side may see it (plus the real address for To)."""

    name: str
    library_name: str
    masked: str
    email: str
    language: str


def _sign(secret: bytes, text: str) -> str:
    return hmac.new(secret, text.encode(), hashlib.sha256).hexdigest()[:12]


def letter_message_id(secret: bytes, letter_id: int, domain: str) -> str:
    """Deterministic, so composing again after a crash gives the same Message-ID."""
    return f"<letter-{letter_id}.{_sign(secret, f'letter-{letter_id}')}@{domain}>"


def letter_of_message_id(secret: bytes, message_id: str, domain: str) -> int | None:
    """The letter behind one of our own Message-IDs; None for anything forged or foreign."""
    match = _RELAY_ID.match(message_id.strip())
    if not match or match.group(3).lower() != domain:
        return None
    letter_id = int(match.group(1))
    expected = _sign(secret, f"letter-{letter_id}")
    return letter_id if hmac.compare_digest(expected, match.group(2)) else None


def unsubscribe_token(secret: bytes, participant_id: str) -> str:
    """The signed part of a participant's `unsubscribe+<token>@` address (prompts' footer)."""
    signature = hmac.new(secret, f"unsubscribe:{participant_id}".encode(), hashlib.sha256)
    return f"{participant_id}-{signature.hexdigest()[:20]}"


def participant_of_unsubscribe(secret: bytes, token: str) -> str | None:
    """The participant an unsubscribe token was made for; None when it is not signed by us."""
    participant_id = token.rpartition("-")[0]
    expected = unsubscribe_token(secret, participant_id)
    return participant_id if participant_id and hmac.compare_digest(expected, token) else None


def html_to_text(html: str) -> str:
    text = re.sub(r"(?i)<br\s*/?>|</p>|</div>|</li>|</h\d>", "\n", html)
    text = nh3.clean(text, tags=set())
    text = re.sub(r"&nbsp;", " ", text)
    text = re.sub(r"[ \t]+", " ", text)
    return re.sub(r"\n\s*\n\s*\n+", "\n\n", text).strip()


def compose_letter(
    letter: ScrubbedLetter,
    *,
    sender: Party,
    recipient: Party,
    program_name: str,
    message_id: str,
    in_reply_to: str | None,
    references: tuple[str, ...],
    date: datetime,
    templates: Templates,
    copy_for: str | None = None,
    privacy_url: str = "",
    together_with: str | None = None,
    written_to: str | None = None,
) -> EmailMessage:
    """The letter for one reader: the pal, or (with `copy_for`) a participant's guardian;
    its footer links to the privacy notice at `privacy_url`. A reader who writes together
    with someone to the sender (`together_with`, their name) is told the letter reaches
    both; the teammate's copy of a letter to the other also says whom it was `written_to`."""
    message = EmailMessage(policy=SMTP)
    message["From"] = Address(f"{sender.name} ({sender.library_name})", addr_spec=sender.masked)
    message["To"] = Address(recipient.name, addr_spec=recipient.email)
    message["Subject"] = letter.subject or "(no subject)"
    message["Date"] = format_datetime(date)
    message["Message-ID"] = message_id
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
    if references:
        message["References"] = " ".join(references)
    footer_values = {
        "sender_name": sender.name,
        "sender_library": sender.library_name,
        "sender_masked": sender.masked,
        "program_name": program_name,
        "copy_for": copy_for,
        "privacy_url": privacy_url,
        "together_with": together_with,
        "written_to": written_to,
    }
    lang = recipient.language
    body = letter.text if letter.text is not None else html_to_text(letter.html or "")
    footer = templates.render("email", lang, "letter_footer.txt", **footer_values)
    message.set_content(f"{body.rstrip()}\n\n{footer}")
    if letter.html is not None:
        footer_html = templates.render("email", lang, "letter_footer.html", **footer_values)
        message.add_alternative(f"{letter.html}\n{footer_html}", subtype="html")
    for attachment in letter.attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        message.add_attachment(
            attachment.data,
            maintype=maintype,
            subtype=subtype or "octet-stream",
            filename=attachment.filename,
            cid=attachment.content_id,
            disposition="inline" if attachment.inline else "attachment",
        )
    return message


@dataclass(frozen=True)
class InlinePicture:
    """A small picture shown inside a notice's HTML part, which refers to it as `cid:<cid>`."""

    cid: str  # without angle brackets
    content_type: str  # image/jpeg or image/png
    data: bytes
    filename: str


def compose_notice(
    *,
    sender: Address,
    to: Address,
    subject: str,
    text: str,
    html: str | None = None,
    pictures: Sequence[InlinePicture] = (),
    domain: str,
    date: datetime,
    reply_to: Address | None = None,
    message_id: str | None = None,
    in_reply_to: str | None = None,
    auto: str = "auto-generated",
    extra: Sequence[tuple[str, str]] = (),
) -> bytes:
    """A message from the program itself, marked as automatic (RFC 3834): `auto-replied`
    when it answers someone's message, `auto-generated` otherwise. `extra` headers come last
    (a prompt's list headers). `pictures` go beside the HTML part (multipart/related)."""
    headers = [("From", address_header(sender)), ("To", address_header(to))]
    if reply_to is not None:
        headers.append(("Reply-To", address_header(reply_to)))
    headers += [
        ("Subject", text_header(subject)),
        ("Date", format_datetime(date)),
        ("Message-ID", message_id or make_msgid(domain=domain)),
    ]
    if in_reply_to:
        headers += [("In-Reply-To", in_reply_to), ("References", in_reply_to)]
    headers.append(("Auto-Submitted", auto))
    return program_bytes([*headers, *extra], text, html, pictures)


# The program's own messages (notices, prompts) are built with the standard library's compat32
# message classes: the modern API parses each header it is given back into objects, which was
# most of the cost of a month of prompts and of a held letter's notices.
_UTF8_QP = Charset("utf-8")
_UTF8_QP.body_encoding = QP
_WIRE = compat32.clone(linesep="\r\n")


def address_header(address: Address) -> str:
    """`Name <addr>`, the name RFC 2047 encoded when it is not ASCII, an internationalized
    domain in its ASCII form."""
    return formataddr((address.display_name, on_the_wire(address.addr_spec)), "utf-8")


def text_header(text: str) -> str:
    """An unstructured header value, RFC 2047 encoded when it is not ASCII. (The compat32
    API takes a `Header` for a value to encode; typeshed lists only str.)"""
    return text if text.isascii() else cast(str, Header(text, "utf-8"))


def _text_part(body: str, subtype: str) -> Message:
    part = Message()
    part.set_payload(body, _UTF8_QP)
    if subtype != "plain":
        part.set_type(f"text/{subtype}")
    return part


def program_bytes(
    headers: list[tuple[str, str]],
    text: str,
    html: str | None = None,
    pictures: Sequence[InlinePicture] = (),
) -> bytes:
    """A message of the program: the headers in order, the text as UTF-8 quoted-printable,
    and the HTML as its alternative when there is one, with the pictures it shows beside it
    (multipart/alternative of text and multipart/related of HTML and pictures)."""
    if html is None:
        message = _text_part(text, "plain")
    else:
        message = MIMEMultipart("alternative")
        shown = _text_part(html, "html")
        if pictures:
            shown = _related(shown, pictures)
        for part in (_text_part(text, "plain"), shown):
            del part["MIME-Version"]  # set by the charset; it belongs to the message only
            message.attach(part)
    for name, value in headers:
        message[name] = value
    if "MIME-Version" not in message:
        message["MIME-Version"] = "1.0"
    return message.as_bytes(policy=_WIRE)


def _related(html: Message, pictures: Sequence[InlinePicture]) -> Message:
    related = MIMEMultipart("related")
    del html["MIME-Version"]
    related.attach(html)
    for picture in pictures:
        part = MIMEImage(picture.data, picture.content_type.split("/", 1)[1])
        del part["MIME-Version"]
        part["Content-ID"] = f"<{picture.cid}>"
        part.add_header("Content-Disposition", "inline", filename=picture.filename)
        related.attach(part)
    return related


def forward_bytes(headers: list[tuple[str, str]], text: str, attached: bytes) -> bytes:
    """A program message with a received message attached as it arrived (message/rfc822).

    The attachment is not parsed: its bytes are put in place of a placeholder after the
    program's part is generated, so a message too odd to parse still reaches staff
    unchanged. The boundary is one the attached bytes do not contain."""
    message = MIMEMultipart("mixed")
    boundary = f"forwarded-{secrets.token_hex(16)}"
    while boundary.encode() in attached:  # pragma: no cover - 128 random bits
        boundary = f"forwarded-{secrets.token_hex(16)}"
    message.set_boundary(boundary)
    body = _text_part(text, "plain")
    del body["MIME-Version"]
    message.attach(body)
    original = Message()
    original["Content-Type"] = "message/rfc822"
    original["Content-Disposition"] = "attachment"
    original["Content-Transfer-Encoding"] = "7bit" if attached.isascii() else "8bit"
    placeholder = f"attached-{secrets.token_hex(16)}"
    original.set_payload(placeholder)
    message.attach(original)
    for name, value in headers:
        message[name] = value
    crlf = attached.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n").rstrip(b"\r\n")
    return message.as_bytes(policy=_WIRE).replace(placeholder.encode(), crlf, 1)
