"""Moderators see every file a letter will deliver: in `queue show` and in the notice."""

from __future__ import annotations

import email
import email.policy
import io
import re
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

from PIL import Image

from tests.conftest import MODERATOR_A, Relay, enroll_pals
from tests.support.letter_files import ALLOW_FILES, letter_with_files
from tests.support.waiting import wait_for


def _notice(relay: Relay, letter_id: int) -> tuple[EmailMessage, bytes]:
    def found() -> tuple[EmailMessage, bytes] | None:
        for path in sorted((relay.maildir / "new").glob("*")):
            data = path.read_bytes()
            message = read_maildir_one(data)
            if f"<notice-{letter_id}." in str(message["Message-ID"]) and (
                MODERATOR_A in str(message["To"])
            ):
                return message, data
        return None

    found_notice: tuple[EmailMessage, bytes] = wait_for(found, 15, "the held-letter notice")
    return found_notice


def read_maildir_one(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def test_a_held_letter_lists_its_picture_recording_and_pdf_in_queue_show_and_the_notice(
    relay_factory: Callable[..., Relay], tmp_path: Path
) -> None:
    relay = relay_factory(extra_sections=ALLOW_FILES)
    pals = enroll_pals(relay)
    relay.start()
    try:
        relay.send(
            pals.maya.email,
            [pals.tomas.masked],
            letter_with_files(pals.maya.email, pals.tomas.masked, tmp_path),
        )
        letter_id = relay.wait_held(1)[0]["id"]

        shown = relay.letter(letter_id)
        files = shown["files"]
        assert [f["kind"] for f in files] == ["picture", "audio", "document"]
        assert [f["number"] for f in files] == [1, 2, 3]
        assert all(f["size"] > 0 for f in files)
        names = [f["name"] for f in files]
        assert not {"drawing.jpg", "song.mp3", "worksheet.pdf"} & set(names)  # neutral names

        listing = relay.cli("queue", "show", str(letter_id)).stdout
        lines = [line for line in listing.splitlines() if line.startswith("file:")]
        assert len(lines) == 3
        for line, name, kind in zip(
            lines, names, ("picture", "recording", "document"), strict=True
        ):
            assert name in line and kind in line
            assert re.search(r"\d+(\.\d)? (bytes|KB|MB)", line)

        notice, raw = _notice(relay, letter_id)
        text = notice.get_body(("plain",))
        assert text is not None
        for name in names:
            assert name in text.get_content()
        related = next(p for p in notice.walk() if p.get_content_type() == "multipart/related")
        html_part, *pictures = related.iter_parts()
        html = html_part.get_content()
        cids = re.findall(r'src="cid:([^"]+)"', html)
        assert len(cids) == 2  # the drawing and the PDF's first page; a recording has none
        by_cid = {str(p["Content-ID"]).strip("<>"): p for p in pictures}
        assert set(cids) == set(by_cid)
        for part in by_cid.values():
            assert part.get_content_type() in ("image/jpeg", "image/png")
            with Image.open(io.BytesIO(part.get_content())) as thumb:
                assert max(thumb.size) <= 480
        assert all(name in html for name in names)  # the recording listed, not pictured
        assert len(raw) < 300_000  # thumbnails only, never the files themselves
        assert pals.tomas.email not in raw.decode("latin-1")
    finally:
        relay.stop()
