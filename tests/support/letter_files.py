"""Real files a patron attaches to a letter, made afresh for a test: a drawing (Pillow), a
one-second recording (ffmpeg), a one-page PDF with text (pikepdf)."""

from __future__ import annotations

import email.policy
import io
import subprocess
from email.message import EmailMessage
from pathlib import Path

import pikepdf
from PIL import Image, ImageDraw

from tests.conftest import FRONT_AUTHSERV_ID
from tests.support.system import ensure_package

# What config_text needs for these files to be delivered (as sent, where not yet cleaned).
ALLOW_FILES = """
[attachments]
allowed_types = ["image/*", "audio/*", "video/*", "application/pdf"]
"""


def drawing() -> bytes:
    """A child's drawing: a house under a sun, 1200×900, as a JPEG."""
    picture = Image.new("RGB", (1200, 900), (250, 250, 240))
    pen = ImageDraw.Draw(picture)
    pen.rectangle((300, 400, 800, 800), fill=(200, 60, 40))
    pen.polygon([(250, 400), (550, 150), (850, 400)], fill=(90, 60, 30))
    pen.ellipse((950, 50, 1150, 250), fill=(250, 200, 0))
    out = io.BytesIO()
    picture.save(out, "JPEG", quality=90)
    return out.getvalue()


TONE = "sine=frequency=440:duration=1"


def recording(folder: Path) -> bytes:
    """One second of a 440 Hz tone as MP3."""
    ffmpeg = ensure_package("ffmpeg", "ffmpeg")
    target = folder / "tone.mp3"
    subprocess.run(
        [ffmpeg, "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i", TONE, str(target)],
        check=True,
        timeout=30,
    )
    return target.read_bytes()


def school_pdf() -> bytes:
    """One page with a line of text, as a school worksheet would be."""
    pdf = pikepdf.new()
    font = pdf.make_indirect(
        pikepdf.Dictionary(
            Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1, BaseFont=pikepdf.Name.Helvetica
        )
    )
    contents = pdf.make_stream(b"BT /F1 36 Tf 72 680 Td (My school in Riverside) Tj ET")
    page = pikepdf.Dictionary(
        Type=pikepdf.Name.Page,
        MediaBox=[0, 0, 612, 792],
        Resources=pikepdf.Dictionary(Font=pikepdf.Dictionary(F1=font)),
        Contents=contents,
    )
    pdf.pages.append(pikepdf.Page(page))
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def letter_with_files(sender: str, to: str, folder: Path, subject: str = "My drawing") -> bytes:
    """A letter carrying a drawing, a recording and a PDF, as a mail app attaches them."""
    message = EmailMessage()
    message["Authentication-Results"] = (
        f"{FRONT_AUTHSERV_ID}; dmarc=pass header.from={sender.rpartition('@')[2]}"
    )
    message["From"] = f"Maya Smith <{sender}>"
    message["To"] = to
    message["Subject"] = subject
    message.set_content("Here is my house, a song and my school worksheet!")
    message.add_attachment(drawing(), "image", "jpeg", filename="drawing.jpg")
    message.add_attachment(recording(folder), "audio", "mpeg", filename="song.mp3")
    message.add_attachment(school_pdf(), "application", "pdf", filename="worksheet.pdf")
    return message.as_bytes(policy=email.policy.SMTP)
