"""Recordings, videos, documents and text files leave without what they hide, and still play.

Files are made once per module by ffmpeg, mutagen and pikepdf (tests/support/media_files.py)
with a writer's name, a place and scripts in every spot their formats keep them; each
cleaned file is searched byte by byte (UTF-8 and UTF-16) and opened again as a player or
reader would.
"""

from __future__ import annotations

import io
import json
import subprocess
from email.message import EmailMessage
from pathlib import Path

import mutagen
import pikepdf
import pytest

from relay.scrub import ScrubPolicy, scrub_letter
from relay.scrub.media import Uncleanable
from relay.scrub.media.audio import clean_recording
from relay.scrub.media.documents import HAS_TEXT, clean_document
from relay.scrub.media.video import clean_video
from tests.support.media_files import (
    ARTIST,
    HTML_PLANTED,
    HTML_WITH_SCRIPT,
    PLACE,
    make_locked_pdf,
    make_pdf,
    make_recordings,
    make_videos,
    planted_in,
)

EVERY_KIND = ("image/*", "audio/*", "video/*", "application/pdf", "text/*", "application/msword")


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    made = make_recordings(tmp_path_factory.mktemp("recordings"))
    return {name: path.read_bytes() for name, path in made.items()}


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    made = make_videos(tmp_path_factory.mktemp("videos"))
    return {name: path.read_bytes() for name, path in made.items()}


@pytest.fixture(scope="module")
def pdf(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return make_pdf(tmp_path_factory.mktemp("pdf") / "letter.pdf").read_bytes()


def _probe(data: bytes, tmp_path: Path) -> dict[str, object]:
    path = tmp_path / "probed"
    path.write_bytes(data)
    shown = subprocess.run(
        ["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", str(path)],
        capture_output=True,
        check=True,
        timeout=30,
    )
    found: dict[str, object] = json.loads(shown.stdout)
    return found


def _duration(probed: dict[str, object]) -> float:
    form = probed["format"]
    assert isinstance(form, dict)
    return float(form["duration"])


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("mp3", "audio/mpeg"),
        ("ogg", "audio/ogg"),
        ("opus", "audio/ogg"),
        ("m4a", "audio/mp4"),
        ("flac", "audio/flac"),
        ("wav", "audio/wav"),
    ],
)
def test_a_recording_loses_every_tag_and_picture_and_still_plays(
    recordings: dict[str, bytes], tmp_path: Path, name: str, content_type: str
) -> None:
    original = recordings[name]
    assert ARTIST in planted_in(original) or name == "opus"  # opus: only Vorbis comments
    assert mutagen.File(io.BytesIO(original)).tags  # the tags are there to remove

    cleaned = clean_recording(original)

    assert planted_in(cleaned.data) == []
    assert cleaned.content_type == content_type and cleaned.extension == name
    assert cleaned.had_hidden_details
    again = mutagen.File(io.BytesIO(cleaned.data))
    assert type(again) is type(mutagen.File(io.BytesIO(original)))
    assert not again.tags and not getattr(again, "pictures", [])
    probed = _probe(cleaned.data, tmp_path)
    assert _duration(probed) > 0.9
    streams = probed["streams"]
    assert isinstance(streams, list) and [s["codec_type"] for s in streams] == ["audio"]


def test_a_recording_is_recognised_by_its_bytes_not_its_name() -> None:
    with pytest.raises(Uncleanable) as refused:
        clean_recording(b"ID3 but really nothing of the sort" * 20)
    assert "not a recording the relay can clean" in refused.value.reason


@pytest.mark.parametrize(("name", "content_type"), [("mp4", "video/mp4"),
                                                    ("mov", "video/quicktime"),
                                                    ("mkv", "video/x-matroska")])  # fmt: skip
def test_a_video_keeps_picture_and_sound_only_without_place_or_names(
    videos: dict[str, bytes], tmp_path: Path, name: str, content_type: str
) -> None:
    original = videos[name]
    assert planted_in(original)  # a place, a name or an attached file to remove

    cleaned = clean_video(original)

    assert planted_in(cleaned.data) == []
    assert PLACE.encode() not in cleaned.data and b"\xa9xyz" not in cleaned.data
    assert cleaned.content_type == content_type and cleaned.had_hidden_details
    probed = _probe(cleaned.data, tmp_path)
    assert _duration(probed) > 0.2
    streams = probed["streams"]
    assert isinstance(streams, list)
    assert {s["codec_type"] for s in streams} <= {"video", "audio"}
    assert "video" in {s["codec_type"] for s in streams}
    form = probed["format"]
    assert isinstance(form, dict)
    assert set(form.get("tags", {})) <= {
        "major_brand",
        "minor_version",
        "compatible_brands",
        "encoder",
    }


def test_a_video_that_is_not_one_is_not_cleaned() -> None:
    with pytest.raises(Uncleanable):
        clean_video(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 200)


def _every_stream(data: bytes) -> bytes:
    """All of a PDF's objects and decoded streams, as a reader would reach them."""
    pieces = [data]
    with pikepdf.open(io.BytesIO(data)) as pdf:
        for obj in pdf.objects:
            if isinstance(obj, pikepdf.Stream):
                pieces.append(obj.read_bytes())
    return b"\n".join(pieces)


def test_a_document_loses_author_scripts_links_and_embedded_files(pdf: bytes) -> None:
    assert len(planted_in(_every_stream(pdf))) >= 5

    cleaned = clean_document(pdf)

    assert planted_in(_every_stream(cleaned.data)) == []
    assert cleaned.had_hidden_details and cleaned.content_type == "application/pdf"
    assert cleaned.flags == (HAS_TEXT,)
    assert "Hello pen pal 1" in cleaned.text
    with pikepdf.open(io.BytesIO(cleaned.data)) as again:
        assert len(again.pages) == 2
        assert "/Info" not in again.trailer
        assert not {"/Metadata", "/OpenAction", "/Names", "/AA"} & set(again.Root.keys())
        for page in again.pages:
            assert all(a.Subtype != "/Link" for a in page.obj.get("/Annots", []))


def test_a_locked_or_broken_document_is_not_cleaned(tmp_path: Path) -> None:
    locked = make_locked_pdf(tmp_path / "locked.pdf").read_bytes()
    with pytest.raises(Uncleanable) as refused:
        clean_document(locked)
    assert "password" in refused.value.reason
    with pytest.raises(Uncleanable) as refused:
        clean_document(b"%PDF-1.7\n" + b"garbage" * 100)
    assert "could not be read" in refused.value.reason


def _letter(*files: tuple[bytes, str, str, str]) -> bytes:
    message = EmailMessage()
    message["From"] = "maya@family.example.net"
    message["Subject"] = "Things I made"
    message.set_content("Here are my things.")
    for data, maintype, subtype, filename in files:
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return bytes(message)


def test_a_letter_carries_each_kind_cleaned_under_a_neutral_name(
    recordings: dict[str, bytes], videos: dict[str, bytes], pdf: bytes
) -> None:
    raw = _letter(
        (recordings["mp3"], "audio", "mpeg", "Maya Castellanos - song.mp3"),
        (videos["mp4"], "video", "mp4", "maya at home.mp4"),
        (pdf, "application", "pdf", "maya homework.pdf"),
        (HTML_WITH_SCRIPT.encode(), "text", "html", "poem.html"),
        (b"\xd0\xcf\x11\xe0 a word file", "application", "msword", "story.doc"),
    )
    letter = scrub_letter(raw, ScrubPolicy(allowed_types=EVERY_KIND, max_attachment_bytes=10**7))

    names = [a.filename for a in letter.attachments]
    assert names == ["recording-1.mp3", "video-1.mp4", "document-1.pdf", "file-1.html"]
    for attachment in letter.attachments:
        assert planted_in(attachment.data) == [], attachment.filename
    html = letter.attachments[3].data.decode()
    assert "The sea is wide." in html
    assert not [value for value in HTML_PLANTED if value in html.lower()]
    assert letter.attachments[2].flags == (HAS_TEXT,)
    details = [r.detail for r in letter.removed]
    assert any("story.doc" in d and "no way to clean this kind of file yet" in d for d in details)
    assert "hidden details (names, tags, place) in recording-1.mp3" in details
    assert not [n for n in letter.notes if "delivered as sent" in n]


def test_a_document_naming_the_writer_is_removed(tmp_path: Path) -> None:
    private = make_pdf(tmp_path / "private.pdf", "Write to maya at 555 0142 9876").read_bytes()
    policy = ScrubPolicy(private_values=("+1 555 0142 9876",), allowed_types=("application/pdf",))
    letter = scrub_letter(_letter((private, "application", "pdf", "a.pdf")), policy)
    assert letter.attachments == ()
    (removal,) = [r for r in letter.removed if r.kind == "attachment"]
    assert "a private detail of the sender" in removal.detail


def test_each_kind_has_its_own_size_limit_and_the_letter_a_total(
    recordings: dict[str, bytes], pdf: bytes
) -> None:
    raw = _letter(
        (recordings["wav"], "audio", "wav", "a.wav"), (pdf, "application", "pdf", "b.pdf")
    )
    small_audio = ScrubPolicy(allowed_types=EVERY_KIND, max_bytes_by_kind=(("audio", 1000),))
    letter = scrub_letter(raw, small_audio)
    assert [a.filename for a in letter.attachments] == ["document-1.pdf"]
    assert any("a.wav" in r.detail and "larger than 1000 bytes" in r.detail for r in letter.removed)

    total = len(recordings["wav"]) + 10
    letter = scrub_letter(raw, ScrubPolicy(allowed_types=EVERY_KIND, max_total_bytes=total))
    assert [a.filename for a in letter.attachments] == ["recording-1.wav"]
    assert any("files together would be larger" in r.detail for r in letter.removed)


def test_a_file_that_cannot_be_cleaned_is_removed_never_sent_as_is() -> None:
    raw = _letter((b"\xff\xfb not really an mp3" * 50, "audio", "mpeg", "song.mp3"))
    letter = scrub_letter(raw, ScrubPolicy(allowed_types=("audio/*",)))
    assert letter.attachments == ()
    (removal,) = letter.removed
    assert "song.mp3" in removal.detail and "could not be cleaned" in removal.detail
