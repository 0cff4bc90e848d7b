"""What staff are shown of a letter's files: each file as delivered, and a small picture of it.

Previews are made from the cleaned files that will be delivered, never from the original:
a picture is shrunk and re-encoded with Pillow; a PDF's first page is drawn by pdfium; a
video's first frame is taken by ffmpeg. A recording has no picture (the dashboard plays
it). Every preview is bounded: pictures and pages by their pixels, the PDF and the video
by a separate process with a time and memory limit, so a hostile file costs a few seconds
at most and never takes the relay with it. Making a preview never raises: a file whose
preview cannot be made is still listed, shown with "no preview".

Previews are kept in a small in-memory cache keyed by the file's digest, so a queue page
shown again does not draw them again.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import subprocess
import sys
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from relay.scrub.media.runner import limits
from relay.scrub.model import Attachment, AttachmentKind, ScrubbedLetter

log = logging.getLogger("relay")

__all__ = ["DeliveredFile", "Preview", "delivered_files", "human_size", "preview_of"]

MAX_SIDE = 480  # the longest side of a preview, in pixels
MAX_SOURCE_PIXELS = 40_000_000  # a picture larger than this is not decoded for a preview
SECONDS = 10  # for one PDF page or one video frame, in its own process
_CACHE_SIZE = 128
# Demuxers ffmpeg may use on a video: ordinary containers only, so a "video" that is in
# fact a playlist cannot make ffmpeg open other files.
_VIDEO_FORMATS = "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi,mpeg,mpegts,ogg,flv,asf"


@dataclass(frozen=True)
class Preview:
    """A small picture of a file: JPEG (or PNG for pictures with transparency)."""

    data: bytes
    content_type: str
    width: int
    height: int


@dataclass(frozen=True)
class DeliveredFile:
    """One file of a letter as it will be delivered, as staff see it listed.

    `number` counts from 1 in the order of the letter's attachments (the dashboard's
    `/letters/<id>/files/<number>`); `name` is the neutral name the pal will see.
    """

    number: int
    name: str
    kind: AttachmentKind
    content_type: str
    size: int
    flags: tuple[str, ...]
    preview: Preview | None = None

    @property
    def size_text(self) -> str:
        return human_size(self.size)

    @property
    def playable(self) -> bool:
        """Played in the dashboard rather than pictured (recordings)."""
        return self.kind == "audio"


def human_size(size: int) -> str:
    """A file size as people say it: 812 bytes, 14 KB, 1.2 MB."""
    if size < 1000:
        return f"{size} bytes"
    if size < 1000 * 1000:
        return f"{size / 1000:.0f} KB"
    return f"{size / 1000 / 1000:.1f} MB"


def delivered_files(clean: ScrubbedLetter, *, previews: bool = True) -> list[DeliveredFile]:
    """Every file of `clean`, numbered, with its preview when one can be made."""
    return [
        DeliveredFile(
            number=number,
            name=attachment.filename,
            kind=attachment.kind,
            content_type=attachment.content_type,
            size=len(attachment.data),
            flags=attachment.flags,
            preview=preview_of(attachment) if previews else None,
        )
        for number, attachment in enumerate(clean.attachments, start=1)
    ]


# --- making one preview --------------------------------------------------------------------


_cache: OrderedDict[bytes, Preview | None] = OrderedDict()
_cache_lock = threading.Lock()


def preview_of(attachment: Attachment) -> Preview | None:
    """A preview of the file, or None when it has none or it cannot be made (never raises)."""
    maker = _MAKERS.get(attachment.kind)
    if maker is None or (attachment.kind == "document" and not _is_pdf(attachment)):
        return None
    key = hashlib.sha256(attachment.kind.encode() + b"\0" + attachment.data).digest()
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    try:
        made = maker(attachment.data)
    except Exception as error:  # a broken or hostile file: listed without a preview
        log.info("no preview for %s (%s: %s)", attachment.filename, type(error).__name__, error)
        made = None
    with _cache_lock:
        _cache[key] = made
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return made


def _is_pdf(attachment: Attachment) -> bool:
    return (
        attachment.content_type == "application/pdf" and attachment.data[:1024].find(b"%PDF") >= 0
    )


def _picture(data: bytes) -> Preview:
    with Image.open(io.BytesIO(data)) as image:
        width, height = image.size
        if width * height > MAX_SOURCE_PIXELS or width <= 0 or height <= 0:
            raise ValueError(f"{width}x{height} is too many pixels for a preview")
        image.draft("RGB", (MAX_SIDE, MAX_SIDE))  # JPEG: decode at a smaller scale
        image.seek(0)  # the first frame of an animation
        image.thumbnail((MAX_SIDE, MAX_SIDE))
        return _encoded(image)


def _encoded(image: Image.Image) -> Preview:
    """Re-encoded from pixels only: nothing of the file's own metadata is carried over."""
    out = io.BytesIO()
    if image.mode in ("RGBA", "LA", "P") and _has_transparency(image):
        image = image.convert("RGBA")
        image.save(out, "PNG", optimize=True)
        content_type = "image/png"
    else:
        image = image.convert("RGB")
        image.save(out, "JPEG", quality=80, optimize=True)
        content_type = "image/jpeg"
    return Preview(out.getvalue(), content_type, image.width, image.height)


def _has_transparency(image: Image.Image) -> bool:
    if image.mode == "P":
        return "transparency" in image.info
    low = image.getchannel("A").getextrema()[0]
    return isinstance(low, (int, float)) and low < 255


# Reads the PDF on stdin, writes its first page as PNG on stdout.
_DRAW_PDF_PAGE = """
import io, sys
import pypdfium2
side = int(sys.argv[1])
document = pypdfium2.PdfDocument(sys.stdin.buffer.read())
page = document[0]
width, height = page.get_size()
scale = min(side / max(width, height, 1.0), 4.0)
image = page.render(scale=scale).to_pil()
out = io.BytesIO()
image.save(out, "PNG")
sys.stdout.buffer.write(out.getvalue())
"""
# What a child may write to files (ffmpeg's one frame); the PDF page goes to a pipe.
_MAX_FRAME_BYTES = 64 * 1024 * 1024


def _pdf_page(data: bytes) -> Preview:
    """pdfium draws the first page in a child process: a PDF that makes it loop or grow
    is stopped by the time and memory limit instead of stalling the relay."""
    done = subprocess.run(
        [
            *limits(_MAX_FRAME_BYTES, SECONDS),
            sys.executable,
            "-I",
            "-c",
            _DRAW_PDF_PAGE,
            str(MAX_SIDE),
        ],
        input=data,
        capture_output=True,
        timeout=SECONDS,
        check=False,
    )
    if done.returncode != 0 or not done.stdout:
        raise ValueError(f"the first page could not be drawn ({done.returncode})")
    return _picture(done.stdout)


def _video_frame(data: bytes) -> Preview:
    """ffmpeg reads the video from a temporary file of its own and writes one frame."""
    with tempfile.TemporaryDirectory(prefix="relay-preview-") as folder:
        source = Path(folder) / "video"
        frame = Path(folder) / "frame.png"
        source.write_bytes(data)
        os.chmod(source, 0o600)
        subprocess.run(
            [
                *limits(_MAX_FRAME_BYTES, SECONDS),
                "ffmpeg",
                "-nostdin",
                "-hide_banner",
                "-loglevel",
                "error",
                "-threads",
                "1",
                "-protocol_whitelist",
                "file",
                "-format_whitelist",
                _VIDEO_FORMATS,
                "-ss",
                "0",
                "-i",
                str(source),
                "-frames:v",
                "1",
                "-vf",
                f"scale='min({MAX_SIDE},iw)':-2",
                "-f",
                "image2",
                str(frame),
            ],
            capture_output=True,
            timeout=SECONDS,
            cwd=folder,
            check=True,
        )
        return _picture(frame.read_bytes())


_MAKERS = {"picture": _picture, "document": _pdf_page, "video": _video_frame}
