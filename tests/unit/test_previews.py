"""Previews of a letter's files: made from the delivered bytes, small, and never an error."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

from PIL import Image

from relay.letters.previews import MAX_SIDE, delivered_files, human_size, preview_of
from relay.scrub.model import Attachment, ScrubbedLetter
from tests.support.letter_files import drawing, recording, school_pdf
from tests.support.system import ensure_package

TEST_PICTURE = "testsrc=duration=1"


def _size_of(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        return image.size


def test_a_picture_is_shrunk_and_re_encoded() -> None:
    made = preview_of(Attachment("drawing-1.jpg", "image/jpeg", drawing()))
    assert made is not None and made.content_type == "image/jpeg"
    assert max(_size_of(made.data)) == MAX_SIDE == max(made.width, made.height)


def test_a_pdf_shows_its_first_page_and_a_video_its_first_frame(tmp_path: Path) -> None:
    page = preview_of(Attachment("file-1.pdf", "application/pdf", school_pdf()))
    assert page is not None and max(_size_of(page.data)) <= MAX_SIDE
    ffmpeg = ensure_package("ffmpeg", "ffmpeg")
    video = tmp_path / "clip.mp4"
    subprocess.run(
        [ffmpeg, "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", TEST_PICTURE, str(video)],
        check=True,
        timeout=30,
    )
    frame = preview_of(Attachment("file-2.mp4", "video/mp4", video.read_bytes()))
    assert frame is not None and frame.content_type == "image/jpeg"


def test_broken_or_hostile_files_have_no_preview_but_are_still_listed(tmp_path: Path) -> None:
    huge = io.BytesIO()
    Image.new("1", (8_000, 6_000)).save(huge, "PNG")  # 48 million pixels in a few KB
    # A "video" that is a playlist of local files: ffmpeg must not follow it.
    playlist = b"#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:1,\n/etc/passwd\n#EXT-X-ENDLIST\n"
    files = (
        Attachment("file-1.png", "image/png", huge.getvalue()),
        Attachment("file-2.jpg", "image/jpeg", b"\xff\xd8\xff not really"),
        Attachment("file-3.pdf", "application/pdf", b"%PDF-1.7 broken"),
        Attachment("file-4.mp4", "video/mp4", playlist),
        Attachment("file-5.mp3", "audio/mpeg", recording(tmp_path)),
    )
    listed = delivered_files(ScrubbedLetter("Hi", "text", None, attachments=files))
    assert [f.number for f in listed] == [1, 2, 3, 4, 5]
    assert [f.name for f in listed] == [a.filename for a in files]
    assert [f.preview for f in listed] == [None] * 5
    assert listed[4].playable and listed[4].kind == "audio"


def test_sizes_read_as_people_say_them() -> None:
    assert [human_size(n) for n in (711, 32_400, 1_234_567)] == ["711 bytes", "32 KB", "1.2 MB"]
