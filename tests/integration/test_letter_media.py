"""A letter carrying a recording, a video, a document and a web page, through a running relay:
what the pal receives hides no name, place or script, and staff see what could not go."""

from __future__ import annotations

import email.policy
from collections.abc import Callable
from email.message import EmailMessage, Message
from pathlib import Path

from tests.conftest import MODERATOR_A, Pals, Relay, enroll_pals, letter_bytes
from tests.support.media_files import (
    HTML_PLANTED,
    HTML_WITH_SCRIPT,
    PLANTED,
    make_pdf,
    make_recordings,
    make_videos,
    planted_in,
)
from tests.support.waiting import wait_for

ALLOWED = """
[attachments]
allowed_types = ["image/*", "audio/*", "video/*", "application/pdf", "text/html"]
"""


def _decoded(part: Message) -> bytes:
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""


def _letter(pals: Pals, folder: Path) -> bytes:
    recordings = make_recordings(folder, ("mp3",))
    videos = make_videos(folder, ("mp4",))
    message = email.message_from_bytes(
        letter_bytes(pals.maya.email, pals.tomas.masked, body="Listen to my song!"),
        policy=email.policy.default,
    )
    assert isinstance(message, EmailMessage)
    files = [
        (recordings["mp3"].read_bytes(), "audio", "mpeg", "Maya Castellanos - song.mp3"),
        (videos["mp4"].read_bytes(), "video", "mp4", "our garden.mp4"),
        (make_pdf(folder / "h.pdf").read_bytes(), "application", "pdf", "homework.pdf"),
        (HTML_WITH_SCRIPT.encode(), "text", "html", "poem.html"),
        (b"\xff\xfb" + b"not a song" * 100, "audio", "mpeg", "broken.mp3"),
    ]
    for data, maintype, subtype, filename in files:
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return message.as_bytes(policy=email.policy.SMTP)


def test_a_letter_with_media_arrives_without_hidden_details(
    relay_factory: Callable[..., Relay], tmp_path: Path
) -> None:
    relay = relay_factory(extra_sections=ALLOWED)
    pals = enroll_pals(relay)
    raw = _letter(pals, tmp_path)
    sent = email.message_from_bytes(raw, policy=email.policy.default)
    originals = b"".join(_decoded(part) for part in sent.walk())
    assert len(planted_in(originals)) >= 5  # what must not reach the pal was sent
    relay.start()
    relay.send(pals.maya.email, [pals.tomas.masked], raw)
    (held,) = relay.wait_held(1)
    shown = relay.letter(held["id"])
    removed = [r["detail"] for r in shown["removed"]]
    assert any("broken.mp3" in d and "could not be cleaned" in d for d in removed), removed

    relay.cli("queue", "approve", str(held["id"]), "--by", MODERATOR_A)
    (delivered,) = wait_for(lambda: relay.delivered(pals.tomas.email), what="delivery")

    names = [part.get_filename() for part in delivered.iter_attachments()]
    assert names == ["recording-1.mp3", "video-1.mp4", "document-1.pdf", "file-1.html"]
    decoded = b"\n".join([delivered.as_bytes(), *(_decoded(part) for part in delivered.walk())])
    assert planted_in(decoded) == []
    assert planted_in(decoded, HTML_PLANTED) == []
    assert planted_in(decoded, (pals.maya.email, "broken.mp3", "homework.pdf")) == []
    assert [value for value in PLANTED if value in str(shown)] == []
