"""Letters with an HTML part and inline pictures, as a mail client writes them."""

from __future__ import annotations

import email.policy
import io
from email.message import EmailMessage

from PIL import Image

from tests.conftest import FRONT_AUTHSERV_ID


def _picture(colour: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), colour).save(out, "PNG")
    return out.getvalue()


def html_letter(
    sender: str,
    to: str,
    text: str,
    html: str,
    pictures: tuple[str, ...] = (),
    *,
    subject: str = "My drawings",
) -> bytes:
    """A letter as a mail client writes it: text and HTML, the HTML's pictures inline
    (`pictures` are colours; the HTML shows them as cid:pic-0, cid:pic-1, ...)."""
    message = EmailMessage()
    message["Authentication-Results"] = (
        f"{FRONT_AUTHSERV_ID}; dmarc=pass header.from={sender.rpartition('@')[2]}"
    )
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    html_part = message.get_body(("html",))
    assert isinstance(html_part, EmailMessage)
    for index, colour in enumerate(pictures):
        html_part.add_related(
            _picture(colour), "image", "png", cid=f"<pic-{index}@mail.example.net>"
        )
    return message.as_bytes(policy=email.policy.SMTP)
